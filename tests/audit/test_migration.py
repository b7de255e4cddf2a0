"""The migration to sealing after commit (G27) carries an existing chain over: events chained by the old
code, with the old code's hashes, verify unchanged afterwards and the sealer extends their chain."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from silver_auth.audit.chain import GENESIS_HASH, HEAD_ID, ChainReport, seal_pending
from silver_auth.audit.models import AuditEvent
from silver_auth.audit.service import Actor, AuditAction, AuditFilter, list_events, record
from silver_auth.core import clock
from silver_auth.db.base import UTCDateTime
from silver_auth.db.engine import create_engine, create_sessionmaker
from silver_auth.db.migrate import alembic_config
from silver_auth.db.session import transaction
from silver_auth.settings import load_settings
from silver_auth.settings import normalize_database_url as settings_url
from tests.audit.support import verify_with
from tests.conftest import BACKEND, POSTGRES_URL

BEFORE = "a8ac0c8f220e"  # the last revision with the chain head updated by every append
AFTER = "4476e5aacd83"
NEWEST = "head"
"""The code under test reads the newest schema: the chain is checked after upgrading past AFTER."""

# The table and the hash exactly as the code before this migration wrote them.
LEGACY = sa.Table(
    "audit_events",
    sa.MetaData(),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("id", sa.String(40)),
    sa.Column("at", UTCDateTime()),
    sa.Column("org_id", sa.String(40)),
    sa.Column("project_id", sa.String(40)),
    sa.Column("actor", sa.String(100)),
    sa.Column("actor_ip", sa.String(64)),
    sa.Column("action", sa.String(60)),
    sa.Column("target", sa.String(100)),
    sa.Column("metadata", sa.JSON),
    sa.Column("prev_hash", sa.String(64)),
    sa.Column("hash", sa.String(64)),
)


def legacy_hash(row: dict[str, Any]) -> str:
    fields = {name: row[name] for name in row if name != "hash"}
    fields["at"] = row["at"].isoformat(timespec="microseconds")
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    return hashlib.sha256(canonical).hexdigest()


def legacy_chain(count: int) -> list[dict[str, Any]]:
    # Old, but within the Free plan's audit retention (30 days), which bounds the listing (L7).
    rows, prev_hash, start = [], GENESIS_HASH, clock.now() - timedelta(days=20)
    for seq in range(1, count + 1):
        row: dict[str, Any] = {
            "seq": seq,
            "id": f"evt_legacy{seq}",
            "at": start + timedelta(minutes=seq, microseconds=seq * 7),
            "org_id": "org_old",
            "project_id": None,
            "actor": "acc_old" if seq % 2 else "cli",
            "actor_ip": "192.0.2.1",
            "action": "key.created",
            "target": f"key_{seq}",
            "metadata": {"kind": "secret", "n": seq},
            "prev_hash": prev_hash,
        }
        row["hash"] = prev_hash = legacy_hash(row)
        rows.append(row)
    return rows


def _migrate(connection: Connection, step: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, step)(config, revision)


async def migrate(engine: AsyncEngine, step: str, revision: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_migrate, step, revision)


@pytest.fixture
async def fresh(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty database of the run's backend (Postgres: a new schema of the test database)."""
    if BACKEND != "postgres":
        engine = create_engine(
            load_settings(
                _env_file=None,
                DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'old.db'}",
                SILVER_DATA_DIR=tmp_path,
            )
        )
        yield engine
        await engine.dispose()
        return
    schema = f"legacy_{secrets.token_hex(4)}"
    admin = create_async_engine(settings_url(POSTGRES_URL))
    async with admin.begin() as connection:
        await connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = create_async_engine(
        settings_url(POSTGRES_URL), connect_args={"server_settings": {"search_path": schema}}
    )
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as connection:
            await connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def test_g27_migration_carries_an_existing_chain_over(fresh: AsyncEngine) -> None:
    await migrate(fresh, "upgrade", BEFORE)
    old = legacy_chain(6)
    async with fresh.begin() as connection:
        await connection.execute(sa.insert(LEGACY), old)
        await connection.execute(
            sa.text("UPDATE audit_chain_head SET seq = :seq, hash = :hash WHERE id = :id"),
            {"seq": 6, "hash": old[-1]["hash"], "id": HEAD_ID},
        )

    await migrate(fresh, "upgrade", NEWEST)
    sessionmaker = create_sessionmaker(fresh)
    assert await verify_with(sessionmaker) == ChainReport(6, None)
    async with sessionmaker() as db:
        carried = list((await db.scalars(sa.select(AuditEvent).order_by(AuditEvent.row_id))).all())
    assert [(e.row_id, e.seq, e.id, e.hash) for e in carried] == [
        (r["seq"], r["seq"], r["id"], r["hash"]) for r in old
    ]

    # New events take insertion ids after the old ones and are chained onto them.
    for i in range(2):
        async with transaction(sessionmaker) as db:
            await record(
                db, AuditAction.KEY_REVOKED, actor=Actor("acc_new"), org_id="org_old", target=f"k{i}"
            )
    assert await seal_pending(sessionmaker) == 2
    assert await verify_with(sessionmaker) == ChainReport(8, None)
    async with sessionmaker() as db:
        page, cursor = await list_events(db, "org_old", AuditFilter(), before=None, limit=3)
        assert [(e.row_id, e.seq, e.target) for e in page] == [(8, 8, "k1"), (7, 7, "k0"), (6, 6, "key_6")]
        older, _ = await list_events(db, "org_old", AuditFilter(actor="cli"), before=cursor, limit=50)
        assert [e.id for e in older] == ["evt_legacy4", "evt_legacy2"]

    # A carried-over event is as tamper-evident as before.
    async with fresh.begin() as connection:
        await connection.execute(sa.text("UPDATE audit_events SET actor = 'acc_framed' WHERE seq = 3"))
    report = await verify_with(sessionmaker)
    assert (report.checked, "#3" in (report.broken or ""), "edited" in (report.broken or "")) == (
        2,
        True,
        True,
    )


async def test_migration_round_trip_keeps_a_chain_sealed_in_order(fresh: AsyncEngine) -> None:
    await migrate(fresh, "upgrade", NEWEST)
    sessionmaker = create_sessionmaker(fresh)
    for i in range(3):
        async with transaction(sessionmaker) as db:
            await record(db, AuditAction.ORG_UPDATED, actor=Actor("system"), org_id="org_x", target=str(i))
    async with transaction(sessionmaker) as db:
        await record(db, AuditAction.ORG_UPDATED, actor=Actor("system"), org_id="org_x", target="late")
    with pytest.raises(RuntimeError, match="not sealed"):
        await migrate(fresh, "downgrade", BEFORE)
    await seal_pending(sessionmaker)
    await migrate(fresh, "downgrade", BEFORE)
    async with fresh.connect() as connection:
        chained = (await connection.execute(sa.select(LEGACY).order_by(LEGACY.c.seq))).mappings().all()
    assert [legacy_hash(dict(row)) for row in chained] == [row["hash"] for row in chained]
    await migrate(fresh, "upgrade", NEWEST)
    assert await verify_with(sessionmaker) == ChainReport(4, None)
