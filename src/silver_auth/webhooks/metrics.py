"""Delivery metrics (G34): outcomes, the retry backlog and its oldest age, failure rate per endpoint; and
the watch that turns a growing backlog or a failing endpoint into an alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.alerts.service import clear_alert, raise_alert
from silver_auth.core import clock
from silver_auth.core.metrics import set_webhook_backlog
from silver_auth.db.session import transaction
from silver_auth.settings import Settings
from silver_auth.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

FAILURE_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    endpoint_id: str
    project_id: str
    attempts: int
    failures: int

    @property
    def failure_rate(self) -> float:
        return self.failures / self.attempts if self.attempts else 0.0


@dataclass(frozen=True, slots=True)
class DeliveryMetrics:
    by_status: dict[str, int]
    """Deliveries by state: pending, succeeded, failed (dead letters)."""
    outcomes: dict[str, int]
    """Attempts over the last hour by outcome (succeeded, http_error, timeout, …)."""
    backlog: int
    """Pending deliveries: first attempts and retries."""
    retrying: int
    """Pending deliveries that have failed at least once."""
    oldest_pending_at: datetime | None
    endpoints: list[EndpointHealth]
    """Attempts and failures per endpoint over the last hour."""


async def delivery_metrics(db: AsyncSession, *, project_id: str | None = None) -> DeliveryMetrics:
    """For one project, or the whole service (`project_id=None`)."""
    statuses = select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
    pending = select(
        func.count(),
        func.coalesce(func.sum(case((WebhookDelivery.attempts > 0, 1), else_=0)), 0),
        func.min(WebhookDelivery.created_at),
    ).where(WebhookDelivery.status == "pending")
    since = clock.now() - FAILURE_WINDOW
    health = (
        select(
            WebhookAttempt.endpoint_id,
            WebhookEndpoint.project_id,
            func.count(),
            func.sum(case((WebhookAttempt.outcome == "succeeded", 0), else_=1)),
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookAttempt.endpoint_id)
        .where(WebhookAttempt.at >= since)
        .group_by(WebhookAttempt.endpoint_id, WebhookEndpoint.project_id)
    )
    outcomes = (
        select(WebhookAttempt.outcome, func.count())
        .where(WebhookAttempt.at >= since)
        .group_by(WebhookAttempt.outcome)
    )
    if project_id is not None:
        endpoints = select(WebhookEndpoint.id).where(WebhookEndpoint.project_id == project_id)
        statuses = statuses.where(WebhookDelivery.endpoint_id.in_(endpoints))
        pending = pending.where(WebhookDelivery.endpoint_id.in_(endpoints))
        health = health.where(WebhookAttempt.endpoint_id.in_(endpoints))
        outcomes = outcomes.where(WebhookAttempt.endpoint_id.in_(endpoints))
    by_status = {"pending": 0, "succeeded": 0, "failed": 0}
    by_status.update({status: int(count) for status, count in (await db.execute(statuses)).all()})
    backlog, retrying, oldest = (await db.execute(pending)).one()
    return DeliveryMetrics(
        by_status=by_status,
        outcomes={outcome: int(count) for outcome, count in (await db.execute(outcomes)).all()},
        backlog=int(backlog or 0),
        retrying=int(retrying or 0),
        oldest_pending_at=oldest,
        endpoints=[
            EndpointHealth(endpoint_id, project_id, int(attempts), int(failures or 0))
            for endpoint_id, project_id, attempts, failures in (await db.execute(health)).all()
        ],
    )


async def watch(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> DeliveryMetrics:
    """Raise (or clear) the backlog alert and each endpoint's failure-rate alert (G34)."""
    async with transaction(sessionmaker) as db:
        metrics = await delivery_metrics(db)
    now = clock.now()
    age_minutes = (now - metrics.oldest_pending_at).total_seconds() / 60 if metrics.oldest_pending_at else 0.0
    set_webhook_backlog(metrics.backlog, metrics.retrying, age_minutes * 60)
    if (
        metrics.backlog >= settings.webhook_backlog_alert_count
        or age_minutes >= settings.webhook_backlog_alert_minutes
    ):
        raise_alert(
            "webhook_backlog",
            "service",
            f"{metrics.backlog} webhook deliveries waiting, the oldest for {age_minutes:.0f} minutes",
            backlog=metrics.backlog,
            oldest_minutes=round(age_minutes, 1),
        )
    else:
        clear_alert("webhook_backlog", "service", "the webhook backlog is back under its thresholds")
    for endpoint in metrics.endpoints:
        if (
            endpoint.attempts >= settings.webhook_failure_alert_min_attempts
            and endpoint.failure_rate >= settings.webhook_failure_alert_rate
        ):
            raise_alert(
                "webhook_endpoint_failing",
                endpoint.endpoint_id,
                f"{endpoint.failures} of {endpoint.attempts} webhook attempts failed in the last hour",
                failure_rate=round(endpoint.failure_rate, 3),
                project_id=endpoint.project_id,
            )
        elif endpoint.failure_rate < settings.webhook_failure_alert_rate / 2:
            clear_alert(
                "webhook_endpoint_failing", endpoint.endpoint_id, "the endpoint's failures have eased"
            )
    return metrics
