"""Append audit events in the caller's transaction; list them; verify the hash chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.actions import AuditAction
from silver_auth.audit.models import AuditChainHead, AuditEvent
from silver_auth.core import clock
from silver_auth.core.ids import new_id
from silver_auth.core.redaction import redact

GENESIS_HASH = "0" * 64
HEAD_ID = 1

__all__ = [
    "CLI_ACTOR",
    "GENESIS_HASH",
    "Actor",
    "AuditAction",
    "AuditFilter",
    "ChainReport",
    "event_hash",
    "list_events",
    "record",
    "verify_chain",
]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it and from where: an account id, `cli` or `system`."""

    id: str
    ip: str | None = None


CLI_ACTOR = Actor("cli")


def _canonical(event: AuditEvent) -> bytes:
    fields = {
        "seq": event.seq,
        "id": event.id,
        "at": event.at.isoformat(timespec="microseconds"),
        "org_id": event.org_id,
        "project_id": event.project_id,
        "actor": event.actor,
        "actor_ip": event.actor_ip,
        "action": event.action,
        "target": event.target,
        "metadata": event.metadata_,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def event_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


async def record(
    db: AsyncSession,
    action: AuditAction,
    *,
    actor: Actor,
    org_id: str | None = None,
    project_id: str | None = None,
    target: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction (G27)."""
    # Updating the head first takes its row lock (Postgres) or the write lock (SQLite), so
    # concurrent appends queue here instead of forking the chain.
    bumped = await db.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(seq=AuditChainHead.seq + 1)
        .returning(AuditChainHead.seq, AuditChainHead.hash)
    )
    seq, prev_hash = bumped.one()
    event = AuditEvent(
        seq=seq,
        id=new_id("evt"),
        at=clock.now(),
        org_id=org_id,
        project_id=project_id,
        actor=actor.id,
        actor_ip=actor.ip,
        action=str(action),
        target=target,
        metadata_=redact(json.loads(json.dumps(metadata or {}, default=str))),
        prev_hash=prev_hash,
    )
    event.hash = event_hash(event)
    db.add(event)
    await db.execute(update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(hash=event.hash))
    return event


@dataclass(frozen=True, slots=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_events(
    db: AsyncSession, org_id: str, filters: AuditFilter, *, before_seq: int | None, limit: int
) -> tuple[list[AuditEvent], int | None]:
    """Newest first; returns the page and the cursor for the next one (None at the end)."""
    query = select(AuditEvent).where(AuditEvent.org_id == org_id)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.actor:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.since:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.at < filters.until)
    if before_seq is not None:
        query = query.where(AuditEvent.seq < before_seq)
    rows = list((await db.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit + 1))).all())
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].seq
    return rows, None


@dataclass(frozen=True, slots=True)
class ChainReport:
    checked: int
    broken: str | None
    """The first broken link, described; None when the chain is whole."""


async def _events_in_order(db: AsyncSession, batch: int = 1000) -> AsyncIterator[AuditEvent]:
    after = 0
    while True:
        rows = (
            await db.scalars(
                select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(batch)
            )
        ).all()
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].seq


async def verify_chain(db: AsyncSession) -> ChainReport:
    """Walk the chain from genesis; name the first event that was edited, deleted or reordered."""
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    async for event in _events_in_order(db):
        if event.seq != expected_seq:
            return ChainReport(
                checked, f"event #{expected_seq} is missing (deleted); the chain resumes at #{event.seq}"
            )
        if event.prev_hash != prev_hash:
            return ChainReport(
                checked,
                f"event #{event.seq} ({event.id}) does not follow #{event.seq - 1}: "
                "its previous-hash link is broken",
            )
        if event_hash(event) != event.hash:
            return ChainReport(
                checked,
                f"event #{event.seq} ({event.id}, {event.action}) was edited: "
                "its content no longer matches its hash",
            )
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    head = await db.get(AuditChainHead, HEAD_ID)
    if head is None:
        return ChainReport(checked, "the chain head row is missing")
    if head.seq > checked:
        return ChainReport(
            checked,
            f"the chain ends at #{checked} but the head records #{head.seq}: the newest events were deleted",
        )
    if head.seq < checked:
        return ChainReport(
            head.seq,
            f"events #{head.seq + 1} to #{checked} were added outside the service: "
            f"the head records #{head.seq}",
        )
    if head.hash != prev_hash:
        if checked == 0:
            return ChainReport(
                0, "the chain head was edited: the log is empty but the head is not at genesis"
            )
        return ChainReport(
            checked - 1,
            f"the newest event #{checked} does not match the hash the head records: "
            "it was rewritten (or the head was edited)",
        )
    return ChainReport(checked, None)
