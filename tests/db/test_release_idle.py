"""A session that has only read gives its connection back before a slow step (a password hash); one that
has written, locked or has pending changes keeps it, with its transaction intact."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from silver_auth.audit.models import AuditChainHead
from silver_auth.db.engine import create_engine, create_sessionmaker
from silver_auth.db.session import release_idle
from silver_auth.settings import Settings


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    try:
        yield engine
    finally:
        await engine.dispose()


def checked_out(engine: AsyncEngine) -> int:
    return engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined,no-any-return]


async def test_a_session_that_has_only_read_gives_its_connection_back(engine: AsyncEngine) -> None:
    async with create_sessionmaker(engine)() as db:
        assert await db.scalar(select(func.count()).select_from(AuditChainHead)) == 1
        assert checked_out(engine) == 1
        await release_idle(db)
        assert checked_out(engine) == 0
        # The session goes on: its next statement takes a connection again, and its writes commit.
        await db.execute(update(AuditChainHead).values(seq=AuditChainHead.seq))
        await db.commit()
    assert checked_out(engine) == 0


async def wrote(db: AsyncSession) -> None:
    await db.execute(update(AuditChainHead).values(seq=AuditChainHead.seq + 7))


async def locked(db: AsyncSession) -> None:
    await db.execute(select(AuditChainHead.seq).with_for_update())


async def locked_in_text(db: AsyncSession) -> None:
    await db.execute(text("SELECT seq FROM audit_chain_head FOR UPDATE"))


async def pending(db: AsyncSession) -> None:
    head = await db.scalar(select(AuditChainHead))
    assert head is not None
    head.seq += 7  # not flushed yet


@pytest.mark.parametrize("holds", [wrote, locked, pending])
async def test_a_session_that_holds_something_keeps_its_connection_and_transaction(
    engine: AsyncEngine, holds: Callable[[AsyncSession], Awaitable[None]]
) -> None:
    async with create_sessionmaker(engine)() as db:
        before = await db.scalar(select(AuditChainHead.seq))
        await holds(db)
        await release_idle(db)
        assert checked_out(engine) == 1 and db.in_transaction()
        await db.rollback()  # the transaction was still open: nothing of it was committed
        assert await db.scalar(select(AuditChainHead.seq)) == before


async def test_a_locking_read_written_as_text_counts_on_postgres(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no FOR UPDATE")
    async with create_sessionmaker(engine)() as db:
        await locked_in_text(db)
        await release_idle(db)
        assert checked_out(engine) == 1
