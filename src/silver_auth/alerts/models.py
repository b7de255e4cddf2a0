"""Alerts and what each channel answered when told about one (L2). Everything here is redacted before it
is written (G28): no column holds a secret, nor a channel's apprise URL."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base

AlertState = Literal["raised", "held", "cleared"]
DeliveryEvent = Literal["raised", "resolved", "test"]
STANDING = text("state <> 'cleared'")


class Alert(Base):
    """One alert of a (kind, subject), from its raise to its clear; repeats meanwhile are folded in."""

    __tablename__ = "alerts"
    __table_args__ = (
        # At most one standing alert per (kind, subject), whichever process raises it: the database,
        # not process memory, decides which of two replicas sends it.
        Index(
            "ix_alerts_standing",
            "kind",
            "subject",
            unique=True,
            sqlite_where=STANDING,
            postgresql_where=STANDING,
        ),
        Index("ix_alerts_kind_subject_raised", "kind", "subject", "raised_at"),
        Index("ix_alerts_raised", "raised_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """`alr_…`."""
    kind: Mapped[str] = mapped_column(String(60))
    """What is wrong: `webhook_backlog`, `webhook_endpoint_failing`, `alert_test`…"""
    subject: Mapped[str] = mapped_column(String(200))
    """What it is wrong with: an endpoint id, a key prefix, `service`."""
    message: Mapped[str] = mapped_column(Text)
    """As sent at the raise, redacted."""
    context: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    """The raise's fields (project, org, figures), redacted."""
    state: Mapped[str] = mapped_column(String(10))
    """`raised` (standing, channels told), `held` (standing again within the dedupe window of its last
    notification: channels not told yet), `cleared`."""
    raised_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    """The latest raise folded into this alert (from any process)."""
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    """Raises folded into this alert, the first included."""
    notified_at: Mapped[datetime | None]
    """When the channels were last sent this alert's raise."""
    cleared_at: Mapped[datetime | None]
    clear_message: Mapped[str | None] = mapped_column(Text)


class AlertDelivery(Base):
    """One channel's outcome for one notification of an alert."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_alert", "alert_id", "at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """`alrd_…`."""
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(10))
    """`raised`, `resolved` or `test`."""
    channel_index: Mapped[int] = mapped_column(Integer)
    """The channel's place in SILVER_ALERT_URLS, from 1."""
    channel: Mapped[str] = mapped_column(String(300))
    """`scheme://host` only: never the URL, whose path, user part or query hold its tokens (G28)."""
    service: Mapped[str | None] = mapped_column(String(60))
    """apprise's name for the service (`Slack`, `JSON`); null for a URL apprise could not read."""
    status: Mapped[str] = mapped_column(String(10))
    """`sent` or `failed`."""
    error: Mapped[str | None] = mapped_column(String(300))
    """First line of why it failed, redacted and stripped of the channel's own URL parts."""
    at: Mapped[datetime]
