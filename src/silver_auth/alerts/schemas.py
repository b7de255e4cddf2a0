"""Alerts as the platform-admin API shows them: redacted when they were recorded (G28), channels as
`scheme://host` only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from silver_auth.core.schemas import Output


class AlertDeliveryPublic(Output):
    event: Annotated[str, msgspec.Meta(examples=["raised"])]
    """`raised`, `resolved` or `test`."""
    channel_index: int
    """The channel's place in SILVER_ALERT_URLS, from 1."""
    channel: Annotated[str, msgspec.Meta(examples=["https://hooks.slack.com"])]
    service: str | None
    status: Annotated[str, msgspec.Meta(examples=["sent"])]
    """`sent` or `failed`."""
    error: str | None
    at: datetime


class AlertPublic(Output):
    id: Annotated[str, msgspec.Meta(examples=["alr_01jd8z3v4w5x6y7z8a9b0c1d2e"])]
    kind: Annotated[str, msgspec.Meta(examples=["webhook_backlog"])]
    subject: Annotated[str, msgspec.Meta(examples=["service"])]
    message: str
    context: dict[str, Any]
    state: Annotated[str, msgspec.Meta(examples=["raised"])]
    """`raised` (standing, channels told), `held` (standing again within the dedupe window: not sent
    again yet), `cleared`."""
    raised_at: datetime
    last_seen_at: datetime
    occurrences: int
    """Raises folded into this alert (every process's, the first included)."""
    notified_at: datetime | None
    cleared_at: datetime | None
    clear_message: str | None
    deliveries: list[AlertDeliveryPublic]


class AlertPage(Output):
    items: list[AlertPublic]
    """Newest first."""
    next_offset: int | None
    """Pass as `offset` for the next page; null at the end."""
