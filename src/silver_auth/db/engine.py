"""Engine and session factory for SQLite (WAL) and Postgres."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

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
        pool_pre_ping=True,
        connect_args={"timeout": 5, "command_timeout": 10},
    )
    track_writes(engine.sync_engine)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
