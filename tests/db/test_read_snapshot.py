"""`read_snapshot`: a read-only transaction sees one moment of the database while another connection
commits, on both backends. Without it SQLite's reads each see the latest commit, and a walk of the audit
chain racing the sealer would report events as deleted that were only sealed meanwhile."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from silver_auth.audit.models import AuditChainHead
from silver_auth.db.engine import create_engine, create_sessionmaker
from silver_auth.db.session import read_snapshot, transaction
from silver_auth.settings import Settings


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _bump(engine: AsyncEngine) -> None:
    async with transaction(create_sessionmaker(engine)) as writer:
        await writer.execute(update(AuditChainHead).values(seq=AuditChainHead.seq + 1))


@pytest.mark.parametrize("snapshot", [True, False], ids=["snapshot", "plain-reads"])
async def test_reads_after_read_snapshot_ignore_a_commit_made_meanwhile(
    engine: AsyncEngine, snapshot: bool
) -> None:
    async with create_sessionmaker(engine)() as reader:
        if snapshot:
            await read_snapshot(reader)
        before = await reader.scalar(select(AuditChainHead.seq))
        assert before is not None
        await _bump(engine)  # another connection commits while the reader's transaction is open
        after = await reader.scalar(select(AuditChainHead.seq))
        await reader.rollback()
    if snapshot:
        assert after == before
    elif engine.dialect.name == "sqlite":
        assert after == before + 1  # each plain read sees the latest commit: why the snapshot is needed
    async with create_sessionmaker(engine)() as later:  # the snapshot ended with its transaction
        assert await later.scalar(select(AuditChainHead.seq)) == before + 1
