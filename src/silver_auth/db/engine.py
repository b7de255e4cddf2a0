"""Engine and session factory for SQLite (WAL) and Postgres."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from silver_auth.settings import Settings

WRITING = "silver_auth.sqlite_writing"
READ_ONLY = ("SELECT", "PRAGMA")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver: SQLAlchemy's begin sends nothing, and _take_write_lock decides when the
    # transaction starts.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _writes(statement: str, context: Any) -> bool:
    if not statement.lstrip().upper().startswith(READ_ONLY):
        return True
    compiled = getattr(getattr(context, "compiled", None), "statement", None)
    return getattr(compiled, "_for_update_arg", None) is not None  # SQLite drops FOR UPDATE: lock here


def _take_write_lock(
    connection: Any, cursor: Any, statement: str, _parameters: Any, context: Any, _executemany: bool
) -> None:
    """Start the transaction (BEGIN IMMEDIATE: SQLite's one write lock) at its first write or locking
    read. Reads before it run on committed data without the lock, so a request that only read so far
    (a console guard, say) lets another connection write: the throttle books attempts on its own.
    Taking the lock at BEGIN, not at the first write, matters: a deferred transaction that reads, then
    writes, fails with SQLITE_BUSY when another writer committed in between."""
    if connection.info.get(WRITING) or not _writes(statement, context):
        return
    cursor.execute("BEGIN IMMEDIATE")
    connection.info[WRITING] = True


def _transaction_over(connection: Any) -> None:
    connection.info[WRITING] = False


def create_private_sqlite_file(url: str) -> None:
    """Create a SQLite database file 0600 (the owner's alone, like secrets.json) before SQLite would
    create it 0644 less the umask. SQLite gives its -wal and -shm files the database file's mode."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):  # a URI filename (`?uri=true`): left to SQLite
        return
    try:
        os.close(os.open(Path(database), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except (FileExistsError, FileNotFoundError):  # there already; or no directory, which SQLite reports
        return


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        create_private_sqlite_file(url)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "before_cursor_execute", _take_write_lock)
        for over in ("begin", "commit", "rollback"):
            event.listen(engine.sync_engine, over, _transaction_over)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        connect_args={"timeout": 5, "command_timeout": 10},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
