"""Webhook endpoints of a project environment: create (secret shown once, G16), change, rotate, delete,
test; their messages, attempts and replays. The outbox itself is `outbox.py`; delivery is `delivery.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.crypto import Sealer
from silver_auth.core.errors import InvalidInput, NotFound
from silver_auth.core.ids import looks_like, new_id
from silver_auth.core.text import has_control_characters
from silver_auth.db.session import write_lock
from silver_auth.orgs.models import Org
from silver_auth.plans.service import check_quota, plan_for, webhook_endpoints_used
from silver_auth.projects.models import Project
from silver_auth.projects.service import org_of_project
from silver_auth.settings import Settings
from silver_auth.webhooks.events import EventType
from silver_auth.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from silver_auth.webhooks.outbox import emit, worker_wakers
from silver_auth.webhooks.signer import new_secret
from silver_auth.webhooks.targets import Resolver, checked_addresses, parse_target

SIGNING_SCHEMES = ("hmac", "ed25519")
ENVIRONMENTS = ("test", "live")
MESSAGE_STATUSES = ("pending", "succeeded", "failed")
PAGE_SIZE_MAX = 100
MAX_DESCRIPTION = 300


def secret_context(endpoint_id: str) -> str:
    """Binds a sealed secret to its endpoint (AES-GCM associated data): copied elsewhere, it won't open."""
    return f"webhook_endpoint:{endpoint_id}"


def url_for_records(url: str) -> str:
    """Scheme, host and path only: a query string may carry a receiver's token, which audit records and
    alerts must not hold (G28)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _event_types(values: list[str] | None) -> list[str]:
    if values is None:
        return []
    known = {str(kind) for kind in EventType}
    unknown = sorted({v for v in values if v not in known})
    if unknown:
        raise InvalidInput(
            f"event_types: unknown type {unknown[0]!r}; GET /v1/config lists them (an empty list means all)"
        )
    return sorted(set(values))


def _description(value: str | None) -> str | None:
    if value is None:
        return None
    if has_control_characters(value):
        raise InvalidInput("description must not contain control characters")
    cleaned = " ".join(value.split())
    if len(cleaned) > MAX_DESCRIPTION:
        raise InvalidInput(f"description: at most {MAX_DESCRIPTION} characters")
    return cleaned or None


@dataclass(frozen=True, slots=True)
class EndpointCreate:
    url: str
    environment: str
    event_types: list[str] | None = None
    description: str | None = None
    signing: str = "hmac"


@dataclass(frozen=True, slots=True)
class EndpointChanges:
    url: str | None = None
    event_types: list[str] | None = None
    description: str | None = None
    enabled: bool | None = None


@dataclass(frozen=True, slots=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str
    """Returned in this one answer (G16); stored only sealed (G17)."""


@dataclass(frozen=True, slots=True)
class Message:
    delivery: WebhookDelivery
    event: WebhookEvent
    attempts: list[WebhookAttempt]


async def get_endpoint(db: AsyncSession, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await db.get(WebhookEndpoint, endpoint_id) if looks_like("whep", endpoint_id) else None
    if endpoint is None:
        raise NotFound("no such webhook endpoint")
    return endpoint


async def org_of_endpoint(db: AsyncSession, endpoint_id: str) -> str | None:
    if not looks_like("whep", endpoint_id):
        return None
    org_id: str | None = await db.scalar(
        select(Project.org_id)
        .join(WebhookEndpoint, WebhookEndpoint.project_id == Project.id)
        .where(WebhookEndpoint.id == endpoint_id)
    )
    return org_id


async def list_endpoints(db: AsyncSession, project_id: str) -> list[WebhookEndpoint]:
    rows = await db.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.project_id == project_id).order_by(WebhookEndpoint.id)
    )
    return list(rows.all())


class EndpointService:
    """Endpoint operations that seal secrets or check receiver addresses."""

    def __init__(self, db: AsyncSession, sealer: Sealer, resolver: Resolver, settings: Settings) -> None:
        self.db, self.sealer, self.resolver, self.settings = db, sealer, resolver, settings

    async def _checked_url(self, url: str, environment: str) -> str:
        target = parse_target(url, environment)
        await checked_addresses(target, self.resolver)  # G30: refused before anything is stored
        return target.url

    async def create(self, project: Project, data: EndpointCreate, *, actor: Actor) -> EndpointWithSecret:
        if data.environment not in ENVIRONMENTS:
            raise InvalidInput("environment: `test` or `live`")
        if data.signing not in SIGNING_SCHEMES:
            raise InvalidInput("signing: `hmac` (a whsec_ secret) or `ed25519` (a whpk_ public key)")
        event_types = _event_types(data.event_types)
        description = _description(data.description)
        url = await self._checked_url(data.url, data.environment)
        await write_lock(self.db)
        org = await self.db.scalar(select(Org).where(Org.id == project.org_id).with_for_update())
        used = await webhook_endpoints_used(self.db, project.id)
        check_quota(plan_for(org.plan if org else ""), "webhook_endpoints", used)
        now = clock.now()
        endpoint_id = new_id("whep")
        minted = new_secret(data.signing)
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            project_id=project.id,
            environment=data.environment,
            url=url,
            description=description,
            event_types=event_types,
            enabled=True,
            disabled_reason=None,
            signing=data.signing,
            secret_sealed=self.sealer.seal(minted.secret, secret_context(endpoint_id)),
            public_key=minted.public_key,
            previous_secret_sealed=None,
            previous_public_key=None,
            previous_until=None,
            failing_since=None,
            created_by=actor.id,
            created_at=now,
            updated_at=now,
        )
        self.db.add(endpoint)
        await record(
            self.db,
            AuditAction.WEBHOOK_ENDPOINT_CREATED,
            actor=actor,
            org_id=project.org_id,
            project_id=project.id,
            target=endpoint_id,
            metadata={
                "environment": data.environment,
                "url": url_for_records(url),
                "signing": data.signing,
                "event_types": event_types or "all",
            },
        )
        return EndpointWithSecret(endpoint, minted.secret)

    async def update(
        self, endpoint: WebhookEndpoint, changes: EndpointChanges, *, actor: Actor
    ) -> WebhookEndpoint:
        changed: list[str] = []
        if changes.url is not None and changes.url != endpoint.url:
            endpoint.url = await self._checked_url(changes.url, endpoint.environment)
            changed.append("url")
        if changes.event_types is not None:
            event_types = _event_types(changes.event_types)
            if event_types != endpoint.event_types:
                endpoint.event_types = event_types
                changed.append("event_types")
        if changes.description is not None:
            description = _description(changes.description)
            if description != endpoint.description:
                endpoint.description = description
                changed.append("description")
        if changes.enabled is not None and changes.enabled != endpoint.enabled:
            endpoint.enabled = changes.enabled
            endpoint.disabled_reason = None
            endpoint.failing_since = None
            changed.append("enabled")
        if not changed:
            return endpoint
        endpoint.updated_at = clock.now()
        await record_endpoint_event(
            self.db,
            AuditAction.WEBHOOK_ENDPOINT_UPDATED,
            endpoint,
            actor=actor,
            metadata={"changed": changed, "url": url_for_records(endpoint.url), "enabled": endpoint.enabled},
        )
        return endpoint

    async def rotate(
        self, endpoint: WebhookEndpoint, *, overlap_hours: float | None, actor: Actor
    ) -> EndpointWithSecret:
        """A new secret now; deliveries carry the old one's signature too until the overlap ends, so
        receivers can switch without a gap (G19)."""
        overlap = self.settings.webhook_secret_overlap_hours if overlap_hours is None else overlap_hours
        if not 0 <= overlap <= 168:
            raise InvalidInput("overlap_hours: from 0 (the old secret stops at once) to 168 (a week)")
        now = clock.now()
        minted = new_secret(endpoint.signing)
        endpoint.previous_secret_sealed = endpoint.secret_sealed if overlap else None
        endpoint.previous_public_key = endpoint.public_key if overlap else None
        endpoint.previous_until = now + timedelta(hours=overlap) if overlap else None
        endpoint.secret_sealed = self.sealer.seal(minted.secret, secret_context(endpoint.id))
        endpoint.public_key = minted.public_key
        endpoint.updated_at = now
        await record_endpoint_event(
            self.db,
            AuditAction.WEBHOOK_SECRET_ROTATED,
            endpoint,
            actor=actor,
            metadata={"overlap_hours": overlap, "signing": endpoint.signing},
        )
        return EndpointWithSecret(endpoint, minted.secret)


async def record_endpoint_event(
    db: AsyncSession,
    action: AuditAction,
    endpoint: WebhookEndpoint,
    *,
    actor: Actor,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Audit an action on an endpoint, in the org and project it belongs to (G27)."""
    await record(
        db,
        action,
        actor=actor,
        org_id=await org_of_project(db, endpoint.project_id),
        project_id=endpoint.project_id,
        target=endpoint.id,
        metadata=metadata,
    )


async def refuse_reveal(db: AsyncSession, endpoint: WebhookEndpoint, *, actor: Actor) -> None:
    """Someone asked to see a secret again: never shown twice (G16); the attempt is audited (G27)."""
    await record_endpoint_event(db, AuditAction.WEBHOOK_SECRET_REVEAL_REFUSED, endpoint, actor=actor)


async def delete_endpoint(db: AsyncSession, endpoint: WebhookEndpoint, *, actor: Actor) -> None:
    """The endpoint goes with its sealed secrets, pending deliveries and attempt log."""
    await record_endpoint_event(
        db,
        AuditAction.WEBHOOK_ENDPOINT_DELETED,
        endpoint,
        actor=actor,
        metadata={"url": url_for_records(endpoint.url), "environment": endpoint.environment},
    )
    await db.delete(endpoint)


async def send_test(db: AsyncSession, endpoint: WebhookEndpoint, *, actor: Actor) -> WebhookEvent:
    """A `webhook.test` event for this endpoint alone, delivered like any other."""
    event = emit(
        db,
        EventType.WEBHOOK_TEST,
        {"endpoint_id": endpoint.id, "message": "a test event from SEQN Auth"},
        project_id=endpoint.project_id,
        environment=endpoint.environment,
        endpoint_id=endpoint.id,
    )
    await record_endpoint_event(
        db, AuditAction.WEBHOOK_TEST_SENT, endpoint, actor=actor, metadata={"message_id": event.id}
    )
    return event


@dataclass(frozen=True, slots=True)
class MessageFilter:
    status: str | None = None
    event_type: str | None = None
    before: int | None = None
    """A position: the page holds older messages than this (the previous page's `next`)."""


async def list_messages(
    db: AsyncSession, endpoint: WebhookEndpoint, filters: MessageFilter, *, limit: int
) -> tuple[list[Message], int | None]:
    """Newest first, each with every attempt (oldest first)."""
    if filters.status is not None and filters.status not in MESSAGE_STATUSES:
        raise InvalidInput("status: `pending`, `succeeded` or `failed`")
    limit = max(1, min(limit, PAGE_SIZE_MAX))
    query = (
        select(WebhookDelivery, WebhookEvent)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
    )
    if filters.status:
        query = query.where(WebhookDelivery.status == filters.status)
    if filters.event_type:
        query = query.where(WebhookDelivery.event_type == filters.event_type)
    if filters.before is not None:
        query = query.where(WebhookDelivery.position < filters.before)
    rows = (await db.execute(query.order_by(WebhookDelivery.position.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [delivery.id for delivery, _ in rows]
    attempts: dict[str, list[WebhookAttempt]] = {i: [] for i in ids}
    if ids:
        found = await db.scalars(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)).order_by(WebhookAttempt.at)
        )
        for attempt in found:
            attempts[attempt.delivery_id].append(attempt)
    messages = [Message(delivery, event, attempts[delivery.id]) for delivery, event in rows]
    return messages, rows[-1][0].position if more and rows else None


async def get_message(db: AsyncSession, endpoint: WebhookEndpoint, message_id: str) -> Message:
    row = (
        await db.execute(
            select(WebhookDelivery, WebhookEvent)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookEvent.id == message_id)
        )
    ).first()
    if row is None:
        raise NotFound("no such message for this endpoint")
    delivery, event = row
    attempts = await db.scalars(
        select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id).order_by(WebhookAttempt.at)
    )
    return Message(delivery, event, list(attempts.all()))


async def replay(
    db: AsyncSession,
    endpoint: WebhookEndpoint,
    *,
    message_id: str | None,
    failed_since: datetime | None,
    actor: Actor,
) -> int:
    """Send one message again (whatever became of it), or every failed one created since a time: each
    gets a fresh retry schedule and keeps its `webhook-id`. Answers how many were queued."""
    query = update(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if message_id is not None:
        await get_message(db, endpoint, message_id)
        query = query.where(WebhookDelivery.event_id == message_id)
    elif failed_since is not None:
        query = query.where(WebhookDelivery.status == "failed", WebhookDelivery.created_at >= failed_since)
    else:
        raise InvalidInput("name a message, or `since` to replay every failed message from then")
    result = await db.execute(query.values(status="pending", attempts=0, next_attempt_at=clock.now()))
    count = int(result.rowcount)  # type: ignore[attr-defined]
    await record_endpoint_event(
        db,
        AuditAction.WEBHOOK_MESSAGES_REPLAYED,
        endpoint,
        actor=actor,
        metadata={"message_id": message_id, "failed_since": failed_since, "count": count},
    )
    if count:
        worker_wakers.wake_after_commit(db)
    return count


async def events_after(
    db: AsyncSession,
    *,
    org_id: str,
    project_id: str,
    environment: str,
    after: int,
    limit: int,
) -> tuple[list[WebhookEvent], bool]:
    """The pull API: events of this project environment and its org, after a position, oldest first,
    as far back as the org's plan keeps them. Answers the page and whether more follow."""
    limit = max(1, min(limit, PAGE_SIZE_MAX))
    plan = plan_for(await db.scalar(select(Org.plan).where(Org.id == org_id)) or "")
    oldest = clock.now() - timedelta(days=plan.event_retention_days)
    query = (
        select(WebhookEvent)
        .where(
            WebhookEvent.position > after,
            WebhookEvent.endpoint_id.is_(None),
            WebhookEvent.created_at >= oldest,
            ((WebhookEvent.project_id == project_id) & (WebhookEvent.environment == environment))
            | ((WebhookEvent.org_id == org_id) & WebhookEvent.project_id.is_(None)),
        )
        .order_by(WebhookEvent.position)
        .limit(limit + 1)
    )
    rows = list((await db.scalars(query)).all())
    return rows[:limit], len(rows) > limit
