"""Engine and session factory for SQLite (WAL) and Postgres."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from silver_auth.db import sqlite
from silver_auth.db.locks import track_writes
from silver_auth.settings import Settings


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
        sqlite.install(engine.sync_engine)  # WAL, and one writer at a time in arrival order
        return engine
    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        connect_args={"timeout": 5, "command_timeout": 10},
    )
    ping_when_idle(engine, settings.db_ping_idle_seconds)
    track_writes(engine.sync_engine)
    return engine


RETURNED_AT = "silver_auth.returned_at"


def ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Check a pooled connection before use only when it has sat idle `idle_seconds` or more: one that
    was in use a moment ago is alive, and the asyncpg ping costs three round trips (BEGIN, a query,
    ROLLBACK), more than most requests' own queries. A dead one is replaced before the request sees it
    (the pool retries the checkout); one that dies while busy fails its request with a 503, and
    SQLAlchemy then drops every older connection of the pool (web.http)."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[RETURNED_AT] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _: PoolProxiedConnection) -> None:
        returned = record.info.get(RETURNED_AT)
        if returned is None or time.monotonic() - returned < idle_seconds:
            return  # just connected, or in use a moment ago
        try:
            dbapi_connection.ping()
        except Exception as failed:  # whatever the driver raises for a dead socket
            raise exc.DisconnectionError("idle connection closed by the database") from failed


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
