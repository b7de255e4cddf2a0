"""Webhook endpoints, the transactional outbox of events, and each endpoint's deliveries and attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base

UNSEQUENCED = text("position IS NULL")
PENDING = text("status = 'pending'")


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_project", "project_id", "environment"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(10))
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(300))
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Subscribed types; empty means every type."""
    enabled: Mapped[bool]
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    """Why the service disabled it (`410 Gone`, failing since …); null when a member turned it off."""
    signing: Mapped[str] = mapped_column(String(10))
    """`hmac` (`v1`, a `whsec_` secret) or `ed25519` (`v1a`, a `whpk_` public key for receivers)."""
    secret_sealed: Mapped[str] = mapped_column(String(400))
    """The `whsec_`/`whsk_` secret, sealed under the key ring (G17): shown once (G16)."""
    public_key: Mapped[str | None] = mapped_column(String(100))
    """`whpk_…` for ed25519 endpoints: public, shown whenever asked."""
    previous_secret_sealed: Mapped[str | None] = mapped_column(String(400))
    """The secret before the last rotation: deliveries carry its signature too until `previous_until`."""
    previous_public_key: Mapped[str | None] = mapped_column(String(100))
    previous_until: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    """First failed attempt of the current run of failures; null after a success."""
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookEvent(Base):
    """The outbox: written in the transaction of the change it describes, never edited after."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index(
            "ix_webhook_events_unsequenced", "row_id", sqlite_where=UNSEQUENCED, postgresql_where=UNSEQUENCED
        ),
        Index("ix_webhook_events_project_position", "project_id", "environment", "position"),
        Index("ix_webhook_events_org_position", "org_id", "position"),
        Index("ix_webhook_events_created", "created_at"),
    )

    # INTEGER on SQLite: only that spelling makes the column the table's rowid (assigned on insert).
    row_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    """Insertion order; not the public order (a later insert can commit first)."""
    id: Mapped[str] = mapped_column(String(40), unique=True)
    """`msg_…`: the `webhook-id` of every delivery and the id in the pull API."""
    type: Mapped[str] = mapped_column(String(60))
    org_id: Mapped[str | None] = mapped_column(String(40))
    """Set for org-wide events (members, projects): they go to every project's endpoints of the org."""
    project_id: Mapped[str | None] = mapped_column(String(40))
    environment: Mapped[str | None] = mapped_column(String(10))
    endpoint_id: Mapped[str | None] = mapped_column(String(40))
    """Set for an event meant for one endpoint only (`webhook.test`)."""
    payload: Mapped[str] = mapped_column(Text)
    """The exact JSON body every delivery sends and signs."""
    created_at: Mapped[datetime]
    position: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    """Public order and pull-API cursor, assigned after commit by one sequencer at a time: a position
    is never handed out before every event that precedes it is visible."""


class WebhookDelivery(Base):
    """One event for one endpoint (a "message" in the console): retried until it succeeds or fails."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "next_attempt_at", sqlite_where=PENDING, postgresql_where=PENDING),
        Index("ix_webhook_deliveries_endpoint_position", "endpoint_id", "position"),
        Index("ix_webhook_deliveries_event", "event_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(BigInteger)
    """The event's position: deliveries to one endpoint go in this order."""
    event_type: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(12))
    """`pending`, `succeeded` or `failed` (every scheduled attempt failed: a dead letter, replayable)."""
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    """When it is due; a worker that claims it moves this past its lease, so a crashed worker's claim
    comes due again on its own."""
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    created_at: Mapped[datetime]


class WebhookAttempt(Base):
    """One HTTP attempt: never the secret, never the whole response body (G34)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("ix_webhook_attempts_delivery", "delivery_id"),
        Index("ix_webhook_attempts_endpoint_at", "endpoint_id", "at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(20))
    """`succeeded`, `http_error`, `timeout`, `network_error`, `refused_address`, `gone`."""
    status_code: Mapped[int | None]
    duration_ms: Mapped[int]
    error_class: Mapped[str | None] = mapped_column(String(80))
    response_excerpt: Mapped[str | None] = mapped_column(String(300))
    """The first bytes of the answer, redacted."""
