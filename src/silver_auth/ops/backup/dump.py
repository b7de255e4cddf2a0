"""A consistent dump of the live database and the manifest that describes it, from the same snapshot.

Postgres: a REPEATABLE READ, read-only transaction exports its snapshot (`pg_export_snapshot()`); `pg_dump
--snapshot` dumps exactly that snapshot while the transaction counts and checksums every table, so the
manifest and the dump agree row for row however busy the service is. SQLite: the online backup API copies
the database in one step (writers carry on), and the manifest is computed from the copy itself."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import msgspec
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from silver_auth import __version__
from silver_auth.core import clock
from silver_auth.ops.backup.errors import BackupError
from silver_auth.ops.backup.manifest import (
    DumpFile,
    Manifest,
    chain_head,
    file_sha256,
    schema_revision,
    table_digests,
)
from silver_auth.ops.backup.postgres import PgServer, pg_dump
from silver_auth.settings import Settings

Step = Callable[[str], None]
POSTGRES_DUMP = "database.pgdump"
SQLITE_DUMP = "database.sqlite3"
SQLITE_BUSY_SECONDS = 30.0


def private_file(path: Path) -> int:
    """A new file only its owner may read (the dump holds every password hash and sealed secret)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


async def _describe(connection: AsyncConnection, backup_id: str, database: str, dump: DumpFile) -> Manifest:
    version = None
    if database == "postgresql":
        version = str(await connection.scalar(text("SHOW server_version")))
    return Manifest(
        backup_id=backup_id,
        created_at=clock.now(),
        database=database,
        server_version=version,
        schema_revision=await schema_revision(connection),
        software_version=__version__,
        dump=dump,
        tables=await table_digests(connection),
        audit_chain=await chain_head(connection),
    )


async def dump_postgres(settings: Settings, backup_id: str, directory: Path, step: Step) -> Manifest:
    server = PgServer.from_settings(settings)
    target = directory / POSTGRES_DUMP
    engine = create_async_engine(server.url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            snapshot_connection = await connection.execution_options(isolation_level="REPEATABLE READ")
            async with snapshot_connection.begin():
                await snapshot_connection.execute(text("SET TRANSACTION READ ONLY"))
                snapshot = str(await snapshot_connection.scalar(text("SELECT pg_export_snapshot()")))
                step("dumping the database (pg_dump) and checksumming every table")
                with os.fdopen(private_file(target), "wb") as handle:
                    dumping = asyncio.create_task(pg_dump(server, snapshot, handle))
                    # The snapshot lives as long as this transaction: it stays open until pg_dump is done.
                    placeholder = DumpFile(POSTGRES_DUMP, "pg_dump-custom", 0, "")
                    described = await asyncio.gather(
                        _describe(snapshot_connection, backup_id, "postgresql", placeholder),
                        dumping,
                        return_exceptions=True,
                    )
    finally:
        await engine.dispose()
    for outcome in reversed(described):  # pg_dump's failure first: it is the likelier cause
        if isinstance(outcome, BaseException):
            raise outcome
    manifest = described[0]
    assert isinstance(manifest, Manifest)
    step("digesting the dump")
    dump = DumpFile(POSTGRES_DUMP, "pg_dump-custom", target.stat().st_size, file_sha256(target))
    return msgspec.structs.replace(manifest, dump=dump)


def sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.sqlalchemy_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError("the SQLite database is not a plain file: nothing to back up")
    return Path(database)


def _copy_sqlite(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    os.close(private_file(target))
    live = sqlite3.connect(source, timeout=SQLITE_BUSY_SECONDS)
    try:
        copy = sqlite3.connect(target)
        try:
            live.backup(copy)  # one step: a consistent copy, and writers are not held up (WAL)
            # A plain rollback-journal file: the copy is one self-contained file whose digest stays put.
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
    finally:
        live.close()


async def dump_sqlite(settings: Settings, backup_id: str, directory: Path, step: Step) -> Manifest:
    target = directory / SQLITE_DUMP
    step("copying the SQLite database (online backup)")
    await asyncio.to_thread(_copy_sqlite, sqlite_path(settings), target)
    step("checksumming every table of the copy")
    manifest = await describe_sqlite_copy(target, backup_id, DumpFile(SQLITE_DUMP, "sqlite", 0, ""))
    dump = DumpFile(SQLITE_DUMP, "sqlite", target.stat().st_size, file_sha256(target))
    return msgspec.structs.replace(manifest, dump=dump)


async def describe_sqlite_copy(path: Path, backup_id: str, dump: DumpFile) -> Manifest:
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await _describe(connection, backup_id, "sqlite", dump)
    finally:
        await engine.dispose()


async def dump_database(settings: Settings, backup_id: str, directory: Path, step: Step) -> Manifest:
    """Dump the live database into `directory` and describe it (the manifest, not sealed yet)."""
    if settings.is_sqlite:
        return await dump_sqlite(settings, backup_id, directory, step)
    return await dump_postgres(settings, backup_id, directory, step)
