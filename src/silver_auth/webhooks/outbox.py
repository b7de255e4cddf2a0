"""The transactional outbox: a service writes its event in the transaction of its change (never the route)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core import clock
from silver_auth.core.ids import new_id
from silver_auth.db.wakeup import CommitWakers
from silver_auth.webhooks.events import ORG_WIDE, PAYLOAD_VERSION, EventType
from silver_auth.webhooks.models import WebhookEvent

worker_wakers = CommitWakers()
"""Wakes this process's webhook worker when a transaction that gave it work commits."""


def _iso(value: Any) -> Any:
    isoformat = getattr(value, "isoformat", None)
    if isoformat is None:
        raise TypeError(f"not JSON: {type(value).__name__}")
    return isoformat().replace("+00:00", "Z")


def emit(
    db: AsyncSession,
    kind: EventType,
    data: dict[str, Any],
    *,
    project_id: str | None = None,
    environment: str | None = None,
    org_id: str | None = None,
    endpoint_id: str | None = None,
) -> WebhookEvent:
    """Add one event to the caller's transaction: it exists exactly when the change commits. Org-wide
    types name the org; the others the project environment. `data` never holds a secret (G18)."""
    if kind in ORG_WIDE:
        if org_id is None:
            raise ValueError(f"{kind} is org-wide: name the org")
        project_id = environment = None
    elif project_id is None or environment is None:
        raise ValueError(f"{kind} belongs to a project environment: name both")
    now = clock.now()
    body = {"type": str(kind), "version": PAYLOAD_VERSION, "timestamp": _iso(now), "data": data}
    event = WebhookEvent(
        id=new_id("msg"),
        type=str(kind),
        org_id=org_id,
        project_id=project_id,
        environment=environment,
        endpoint_id=endpoint_id,
        payload=json.dumps(body, default=_iso, separators=(",", ":"), ensure_ascii=False),
        created_at=now,
        position=None,
    )
    db.add(event)
    worker_wakers.wake_after_commit(db)
    return event
