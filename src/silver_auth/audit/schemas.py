from __future__ import annotations

from datetime import datetime
from typing import Any

from silver_auth.core.schemas import Output


class AuditEventPublic(Output):
    id: str
    seq: int | None
    """Position in the sealed hash chain; null until the sealer links the event in, moments after commit."""
    action: str
    actor: str
    actor_ip: str | None
    target: str | None
    project_id: str | None
    at: datetime
    metadata: dict[str, Any]


class AuditPage(Output):
    items: list[AuditEventPublic]
    next: str | None
    """Pass as `cursor` for the next (older) page; null at the end."""
