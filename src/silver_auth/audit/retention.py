"""Audit retention (L7): events older than their org's plan keeps them leave the log, and the chain
stays verifiable.

The chain is one for the whole service (docs/audit.md says why), so an org's old events sit between
other orgs' events that stay: a purge cuts runs out of the middle of the chain, not just its start.
Each removed run leaves an `AuditChainGap` with the hash before it and the hash of its last event;
`verify_chain` steps over the run by those links, so every event left is still checked for edits,
deletions and reordering. Runs that touch are merged, so the gaps shrink to one (the chain's new start)
as the oldest events of every org go. Each purge writes one platform event (`audit.events_purged`,
no org: it is never purged) counting what it removed; `verify` fails when the gaps and those counts
disagree, so a deletion cannot simply be dressed up as a purge after the fact.

Events of no org (console accounts, platform operations, these records) have no plan and are kept.
Events of an org that no longer exists are kept as long as the longest plan keeps any.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.chain import HEAD_ID, ChainHeadMissingError
from silver_auth.audit.models import RETENTION_PURGE, AuditChainGap, AuditChainHead, AuditEvent
from silver_auth.audit.service import SYSTEM_ACTOR, AuditAction, record
from silver_auth.core import clock
from silver_auth.orgs.models import Org
from silver_auth.plans.service import DEFAULT_PLAN, PLANS

PURGE_BATCH = 1000
"""Events removed per statement (and per look-up of the runs they form)."""


def _past_retention(now: datetime) -> list[tuple[str, ColumnElement[bool]]]:
    """(label, condition) for each group of events whose retention is over."""
    groups: list[tuple[str, ColumnElement[bool]]] = []
    for plan in PLANS.values():
        on_plan = Org.plan == plan.id
        if plan.id == DEFAULT_PLAN:  # an org on an unknown plan gets the default plan's quotas
            on_plan = on_plan | Org.plan.not_in(list(PLANS))
        orgs = select(Org.id).where(on_plan, Org.id == AuditEvent.org_id).exists()
        groups.append((plan.id, orgs & (AuditEvent.at < now - timedelta(days=plan.audit_retention_days))))
    longest = max(plan.audit_retention_days for plan in PLANS.values())
    gone = AuditEvent.org_id.is_not(None) & ~select(Org.id).where(Org.id == AuditEvent.org_id).exists()
    groups.append(("deleted_orgs", gone & (AuditEvent.at < now - timedelta(days=longest))))
    return groups


async def purge_past_retention(db: AsyncSession, *, batch: int = PURGE_BATCH) -> int:
    """Remove the sealed events past their org's plan retention, in the caller's transaction; returns how
    many went. It takes the chain head's lock first, so sealers and other purges wait for it."""
    head = await db.scalar(select(AuditChainHead).where(AuditChainHead.id == HEAD_ID).with_for_update())
    if head is None:
        raise ChainHeadMissingError("the audit chain head row is missing")
    now = clock.now()
    removed: dict[str, int] = {}
    for label, condition in _past_retention(now):
        while True:
            # Sealed events only: an unsealed one has no place in the chain to leave a gap at.
            query = select(AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.hash).where(
                condition, AuditEvent.seq.is_not(None), AuditEvent.seq <= head.seq
            )
            links = [
                (seq, str(prev), str(hash_)) for seq, prev, hash_ in await db.execute(query.limit(batch))
            ]
            if links:
                await _cut(db, links)
                removed[label] = removed.get(label, 0) + len(links)
            if len(links) < batch:
                break
    total = sum(removed.values())
    if total:
        await record(
            db,
            AuditAction.AUDIT_EVENTS_PURGED,
            actor=SYSTEM_ACTOR,
            metadata={
                "events": total,
                "by_plan": removed,
                "retention_days": {plan.id: plan.audit_retention_days for plan in PLANS.values()},
            },
        )
    return total


@dataclass(slots=True)
class _Run:
    """Consecutive chain positions removed together, and the links on either side."""

    first_seq: int
    last_seq: int
    prev_hash: str
    last_hash: str


def _runs(links: list[tuple[int | None, str, str]]) -> list[_Run]:
    runs: list[_Run] = []
    for seq, prev_hash, hash_ in sorted((seq or 0, prev, hash_) for seq, prev, hash_ in links):
        if runs and runs[-1].last_seq == seq - 1:
            runs[-1].last_seq, runs[-1].last_hash = seq, hash_
        else:
            runs.append(_Run(seq, seq, prev_hash, hash_))
    return runs


async def _cut(db: AsyncSession, links: list[tuple[int | None, str, str]]) -> None:
    """Delete the events at these (seq, prev_hash, hash) and record the runs they leave, merged with the
    gaps they touch."""
    for run in _runs(links):
        before = await db.scalar(select(AuditChainGap).where(AuditChainGap.last_seq == run.first_seq - 1))
        after = await db.get(AuditChainGap, run.last_seq + 1)
        if after is not None:
            run.last_seq, run.last_hash = after.last_seq, after.last_hash
            await db.delete(after)
            await db.flush()  # its last_seq is unique: gone before another row takes it
        if before is not None:
            before.last_seq, before.last_hash = run.last_seq, run.last_hash
        else:
            db.add(
                AuditChainGap(
                    first_seq=run.first_seq,
                    last_seq=run.last_seq,
                    prev_hash=run.prev_hash,
                    last_hash=run.last_hash,
                )
            )
        await db.flush()
    await db.execute(
        delete(AuditEvent).where(AuditEvent.seq.in_([seq for seq, _, _ in links])),
        execution_options={RETENTION_PURGE: True, "synchronize_session": False},
    )
