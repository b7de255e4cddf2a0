"""Migrations: a fresh database upgraded to head matches the models exactly."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import tempfile
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from silver_auth.audit.service import GENESIS_HASH
from silver_auth.db.engine import create_engine, create_private_sqlite_file
from silver_auth.db.migrate import alembic_config, drift, upgrade
from silver_auth.db.migrations.env import target_metadata
from silver_auth.settings import load_settings
from silver_auth.settings import normalize_database_url as settings_url
from tests.conftest import BACKEND, POSTGRES_URL


def _engine(url: str) -> AsyncEngine:
    return create_engine(
        load_settings(_env_file=None, DATABASE_URL=url, SILVER_DATA_DIR=tempfile.gettempdir())
    )


async def _inspect(engine: AsyncEngine) -> tuple[list[object], set[str], list[tuple[object, ...]], str]:
    await upgrade(engine)
    differences = await drift(engine)
    async with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            names = await connection.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
            )
        else:
            names = await connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
        tables = set(names.scalars())
        head_rows = [
            tuple(r) for r in await connection.execute(text("SELECT id, seq, hash FROM audit_chain_head"))
        ]
        version = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    # Upgrading again is a no-op.
    await upgrade(engine)
    assert await drift(engine) == []
    return differences, tables, head_rows, version


async def _inspect_fresh_postgres() -> tuple[list[object], set[str], list[tuple[object, ...]], str]:
    """Upgrade a new, empty schema of this run's Postgres database (its engine's default schema)."""
    schema = f"fresh_{secrets.token_hex(4)}"
    admin = _engine(POSTGRES_URL)
    try:
        async with admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = create_async_engine(
            settings_url(POSTGRES_URL), connect_args={"server_settings": {"search_path": schema}}
        )
        try:
            return await _inspect(engine)
        finally:
            await engine.dispose()
    finally:
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def _inspect_fresh_sqlite(path: Path) -> tuple[list[object], set[str], list[tuple[object, ...]], str]:
    engine = _engine(f"sqlite+aiosqlite:///{path}")
    try:
        return await _inspect(engine)
    finally:
        await engine.dispose()


def test_fresh_database_has_no_drift(tmp_path: Path) -> None:
    if BACKEND == "postgres":
        result = asyncio.run(_inspect_fresh_postgres())
    else:
        result = asyncio.run(_inspect_fresh_sqlite(tmp_path / "fresh.db"))
    differences, tables, head_rows, version = result
    assert differences == [], f"migrations and models differ: {differences}"
    model_tables = {table.name for table in target_metadata.sorted_tables}
    assert tables == model_tables | {"alembic_version"}
    # The audit chain starts at genesis in a fresh database.
    assert head_rows == [(1, 0, GENESIS_HASH)]
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads == [version], "a single migration head, and the database is at it"


def test_drift_is_detected(tmp_path: Path) -> None:
    """The drift check is not blind: a column the models lack shows up."""

    async def work() -> list[object]:
        engine = _engine(f"sqlite+aiosqlite:///{tmp_path / 'drifted.db'}")
        try:
            await upgrade(engine)
            async with engine.begin() as connection:
                await connection.execute(text("ALTER TABLE projects ADD COLUMN stray TEXT"))
            return await drift(engine)
        finally:
            await engine.dispose()

    differences = asyncio.run(work())
    assert any("stray" in repr(d) for d in differences), differences


def test_the_embedded_sqlite_database_and_its_wal_files_are_created_0600(tmp_path: Path) -> None:
    """Like secrets.json beside it: what create_engine (the server, every CLI command) and migrate make
    in the data dir is the owner's alone, whatever the umask lets through."""
    data = tmp_path / "data"
    settings = load_settings(_env_file=None, SILVER_DATA_DIR=str(data))
    previous = os.umask(0o022)
    try:

        async def work() -> dict[str, int]:
            engine = create_engine(settings)
            try:
                await upgrade(engine)
                async with engine.begin() as connection:  # a write while a connection is open: WAL files
                    await connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
                    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in data.glob("silver.db*")}
            finally:
                await engine.dispose()

        modes = asyncio.run(work())
    finally:
        os.umask(previous)
    assert modes == dict.fromkeys(["silver.db", "silver.db-shm", "silver.db-wal"], 0o600)


def test_a_postgres_url_creates_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    create_private_sqlite_file("postgresql+asyncpg://silver@127.0.0.1:5432/silver")
    create_private_sqlite_file("sqlite+aiosqlite:///:memory:")
    assert list(tmp_path.iterdir()) == []
