"""Append audit events in the caller's transaction; list them. The chain lives in `chain.py`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.actions import AuditAction
from silver_auth.audit.chain import GENESIS_HASH, ChainReport, event_hash, seal_pending, verify_chain
from silver_auth.audit.models import AuditEvent
from silver_auth.audit.sealer import wake_after_commit
from silver_auth.core import clock
from silver_auth.core.ids import new_id
from silver_auth.core.redaction import redact
from silver_auth.orgs.models import Org
from silver_auth.plans.service import plan_for

__all__ = [
    "CLI_ACTOR",
    "GENESIS_HASH",
    "SYSTEM_ACTOR",
    "Actor",
    "AuditAction",
    "AuditFilter",
    "ChainReport",
    "event_hash",
    "list_events",
    "record",
    "retained_since",
    "seal_pending",
    "verify_chain",
]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it and from where: an account id, `cli` or `system`."""

    id: str
    ip: str | None = None


CLI_ACTOR = Actor("cli")
SYSTEM_ACTOR = Actor("system")


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
    """Append one event in the caller's transaction (G27). It takes no shared lock: the sealer links it
    into the hash chain once the transaction has committed."""
    event = AuditEvent(
        id=new_id("evt"),
        at=clock.now(),
        org_id=org_id,
        project_id=project_id,
        actor=actor.id,
        actor_ip=actor.ip,
        action=str(action),
        target=target,
        metadata_=redact(json.loads(json.dumps(metadata or {}, default=str))),
    )
    db.add(event)
    wake_after_commit(db)
    return event


@dataclass(frozen=True, slots=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def retained_since(db: AsyncSession, org_id: str) -> datetime:
    """The oldest moment the org's plan keeps audit events for (L7): older ones are not listed, and the
    retention purge removes them."""
    plan = plan_for(await db.scalar(select(Org.plan).where(Org.id == org_id)) or "")
    return clock.now() - timedelta(days=plan.audit_retention_days)


async def list_events(
    db: AsyncSession, org_id: str, filters: AuditFilter, *, before: int | None, limit: int
) -> tuple[list[AuditEvent], int | None]:
    """Newest insertion first, sealed or not, as far back as the org's plan keeps them; returns the page
    and the cursor for the next one (None at the end). The cursor is an insertion id, which never
    changes, so pages stay put while sealing runs."""
    query = select(AuditEvent).where(
        AuditEvent.org_id == org_id, AuditEvent.at >= await retained_since(db, org_id)
    )
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.actor:
        query = query.where(AuditEvent.actor == filters.actor)
    if filters.since:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.at < filters.until)
    if before is not None:
        query = query.where(AuditEvent.row_id < before)
    rows = list((await db.scalars(query.order_by(AuditEvent.row_id.desc()).limit(limit + 1))).all())
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].row_id
    return rows, None
