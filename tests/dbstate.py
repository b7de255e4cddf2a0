"""Whole-database snapshots, to prove that a refused request wrote nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from silver_auth.alerts.dispatcher import drain
from silver_auth.audit.chain import seal_pending
from silver_auth.audit.models import AuditChainHead
from silver_auth.db.migrations.env import target_metadata
from silver_auth.db.session import transaction
from silver_auth.webhooks.dispatch import sequence_batch
from tests.factories import Harness


def snapshot(harness: Harness) -> dict[str, list[str]]:
    """Every row of every table, in a stable order, with every committed audit event sealed, every
    committed webhook event sequenced and every alert raised so far recorded first (the app's sealer,
    webhook worker and alert dispatcher run on their own time: without this their work would look like
    the request's)."""

    async def work() -> dict[str, list[str]]:
        await drain()
        await seal_pending(harness.runtime.sessionmaker)
        while True:
            async with transaction(harness.runtime.sessionmaker) as db:
                if not await sequence_batch(db):
                    break
        state: dict[str, list[str]] = {}
        async with harness.runtime.engine.connect() as connection:
            for table in target_metadata.sorted_tables:
                rows = (await connection.execute(select(table))).all()
                state[table.name] = sorted(repr(tuple(row)) for row in rows)
        return state

    return harness.run(work)


def chain_head_seq(harness: Harness) -> int:
    async def work() -> int:
        await seal_pending(harness.runtime.sessionmaker)
        async with harness.runtime.engine.connect() as connection:
            seq: Any = await connection.scalar(select(AuditChainHead.seq))
        return int(seq)

    return harness.run(work)


def row_count(harness: Harness, table: str) -> int:
    return len(snapshot(harness)[table])
