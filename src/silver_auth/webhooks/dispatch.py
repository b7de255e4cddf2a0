"""Sequencing the outbox: committed events get their public position and a delivery per matching endpoint.

One sequencer at a time (a Postgres advisory lock, SQLite's write lock) hands out positions in the order
events became visible, so the pull API's cursor never skips an event that committed late.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from sqlalchemy import func, insert, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core.ids import new_id
from silver_auth.db.session import write_lock
from silver_auth.projects.models import Project
from silver_auth.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

BATCH = 500
SEQUENCER_LOCK = 0x5EC_0E7E  # pg_advisory_xact_lock key: one sequencer at a time across workers


async def _lock(db: AsyncSession) -> None:
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(select(func.pg_advisory_xact_lock(literal(SEQUENCER_LOCK))))
    else:
        await write_lock(db)


def _subscribed(endpoint: WebhookEndpoint, event: WebhookEvent) -> bool:
    if event.endpoint_id is not None:
        return endpoint.id == event.endpoint_id
    return endpoint.created_at <= event.created_at and (
        not endpoint.event_types or event.type in endpoint.event_types
    )


async def sequence_batch(db: AsyncSession, *, first_delay: float = 0.0) -> int:
    """Position up to BATCH committed events and fan each out to the endpoints subscribed when it happened
    (enabled, of its project environment, or of its org's projects for org-wide events). Answers how many
    were sequenced; the caller commits."""
    waiting = await db.scalar(select(WebhookEvent.row_id).where(text("position IS NULL")).limit(1))
    if waiting is None:  # the common case, read without any lock
        return 0
    await _lock(db)
    events = list(
        (
            await db.scalars(
                select(WebhookEvent)
                .where(text("position IS NULL"))
                .order_by(WebhookEvent.row_id)
                .limit(BATCH)
            )
        ).all()
    )
    if not events:
        return 0
    last = int(await db.scalar(select(func.coalesce(func.max(WebhookEvent.position), 0))) or 0)
    project_ids = {e.project_id for e in events if e.project_id}
    org_ids = {e.org_id for e in events if e.org_id}
    by_project: dict[tuple[str, str], list[WebhookEndpoint]] = defaultdict(list)
    by_org: dict[str, list[WebhookEndpoint]] = defaultdict(list)
    rows = (
        await db.execute(
            select(WebhookEndpoint, Project.org_id)
            .join(Project, Project.id == WebhookEndpoint.project_id)
            .where(
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.project_id.in_(project_ids) | Project.org_id.in_(org_ids),
            )
        )
    ).all()
    for endpoint, org_id in rows:
        by_project[(endpoint.project_id, endpoint.environment)].append(endpoint)
        by_org[org_id].append(endpoint)
    positions: list[dict[str, int]] = []
    deliveries: list[dict[str, object]] = []
    for offset, event in enumerate(events, start=1):
        position = last + offset
        positions.append({"row_id": event.row_id, "position": position})
        if event.org_id is not None:
            candidates = by_org.get(event.org_id, [])
        else:
            candidates = by_project.get((event.project_id or "", event.environment or ""), [])
        for endpoint in candidates:
            if _subscribed(endpoint, event):
                deliveries.append(
                    {
                        "id": new_id("whdl"),
                        "event_id": event.id,
                        "endpoint_id": endpoint.id,
                        "position": position,
                        "event_type": event.type,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": event.created_at + timedelta(seconds=first_delay),
                        "last_attempt_at": None,
                        "last_status_code": None,
                        "created_at": event.created_at,
                    }
                )
    await db.execute(update(WebhookEvent), positions)
    if deliveries:
        await db.execute(insert(WebhookDelivery), deliveries)
    return len(events)
