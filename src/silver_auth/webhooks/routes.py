"""Webhook endpoints, messages and replays in the console; the pull API for backends."""

from __future__ import annotations

import json
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.core.errors import InvalidInput, SecretShownOnce
from silver_auth.keys.guards import SECRET_KEY_ACCESS, require_secret_key
from silver_auth.orgs.guards import DEVELOPER, VIEWER, resolves_org
from silver_auth.projects.service import get_project
from silver_auth.web.http import problem_response
from silver_auth.web.openapi import OVER_QUOTA, problem
from silver_auth.webhooks import service
from silver_auth.webhooks.metrics import delivery_metrics
from silver_auth.webhooks.models import WebhookEndpoint
from silver_auth.webhooks.schemas import (
    EndpointHealthPublic,
    EventItem,
    EventPage,
    WebhookAttemptPublic,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointPage,
    WebhookEndpointPublic,
    WebhookEndpointUpdate,
    WebhookMessagePage,
    WebhookMessagePublic,
    WebhookMetricsPublic,
    WebhookQueued,
    WebhookReplay,
    WebhookSecretRotate,
    WebhookTestSent,
)
from silver_auth.webhooks.service import EndpointChanges, EndpointCreate, EndpointService, MessageFilter

URL_REFUSED = problem("the URL is malformed, not https in live (G30), or its host is not public")


def endpoint_public(endpoint: WebhookEndpoint) -> WebhookEndpointPublic:
    return WebhookEndpointPublic(
        id=endpoint.id,
        project_id=endpoint.project_id,
        environment=endpoint.environment,
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        signing=endpoint.signing,
        public_key=endpoint.public_key,
        previous_public_key=endpoint.previous_public_key,
        previous_secret_until=endpoint.previous_until,
        failing_since=endpoint.failing_since,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def _with_secret(made: service.EndpointWithSecret) -> WebhookEndpointCreated:
    public = endpoint_public(made.endpoint)
    return WebhookEndpointCreated(
        **{f: getattr(public, f) for f in public.__struct_fields__}, secret=made.secret
    )


def message_public(message: service.Message) -> WebhookMessagePublic:
    delivery = message.delivery
    return WebhookMessagePublic(
        id=message.event.id,
        event_type=message.event.type,
        status=delivery.status,
        attempt_count=len(message.attempts),
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        created_at=delivery.created_at,
        cursor=delivery.position,
        payload=json.loads(message.event.payload),
        attempts=[
            WebhookAttemptPublic(
                at=a.at,
                outcome=a.outcome,
                http_status=a.status_code,
                duration_ms=a.duration_ms,
                error_class=a.error_class,
                response_excerpt=a.response_excerpt,
            )
            for a in message.attempts
        ],
    )


class WebhookController(Controller):
    path = "/console/api"
    tags = ["console: webhooks"]

    @get("/projects/{project_id:str}/webhooks", opt=VIEWER, summary="Webhook endpoints of a project")
    async def list_endpoints(
        self, project_id: FromPath[str], db: NamedDependency[AsyncSession]
    ) -> WebhookEndpointPage:
        await get_project(db, project_id)
        return WebhookEndpointPage(
            items=[endpoint_public(e) for e in await service.list_endpoints(db, project_id)]
        )

    @post(
        "/projects/{project_id:str}/webhooks",
        opt=DEVELOPER,
        summary="Create a webhook endpoint (its secret is shown once)",
        responses={403: OVER_QUOTA, 422: URL_REFUSED},
    )
    async def create_endpoint(
        self,
        project_id: FromPath[str],
        data: JSONBody[WebhookEndpointCreate],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        webhook_endpoints: NamedDependency[EndpointService],
    ) -> WebhookEndpointCreated:
        project = await get_project(db, project_id)
        made = await webhook_endpoints.create(
            project,
            EndpointCreate(
                url=data.url,
                environment=data.environment,
                event_types=data.event_types,
                description=data.description,
                signing=data.signing,
            ),
            actor=console.actor,
        )
        return _with_secret(made)

    @get(
        "/projects/{project_id:str}/webhooks/metrics",
        opt=VIEWER,
        summary="Delivery outcomes, backlog and failure rate per endpoint (last hour)",
    )
    async def project_metrics(
        self, project_id: FromPath[str], db: NamedDependency[AsyncSession]
    ) -> WebhookMetricsPublic:
        await get_project(db, project_id)
        metrics = await delivery_metrics(db, project_id=project_id)
        return WebhookMetricsPublic(
            by_status=metrics.by_status,
            outcomes=metrics.outcomes,
            backlog=metrics.backlog,
            retrying=metrics.retrying,
            oldest_pending_at=metrics.oldest_pending_at,
            endpoints=[
                EndpointHealthPublic(
                    endpoint_id=e.endpoint_id,
                    attempts=e.attempts,
                    failures=e.failures,
                    failure_rate=e.failure_rate,
                )
                for e in metrics.endpoints
            ],
        )

    @get("/webhooks/{endpoint_id:str}", opt=VIEWER, summary="One webhook endpoint (never its secret)")
    async def get_endpoint(
        self, endpoint_id: FromPath[str], db: NamedDependency[AsyncSession]
    ) -> WebhookEndpointPublic:
        return endpoint_public(await service.get_endpoint(db, endpoint_id))

    @patch(
        "/webhooks/{endpoint_id:str}",
        opt=DEVELOPER,
        summary="Change an endpoint",
        responses={422: URL_REFUSED},
    )
    async def update_endpoint(
        self,
        endpoint_id: FromPath[str],
        data: JSONBody[WebhookEndpointUpdate],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        webhook_endpoints: NamedDependency[EndpointService],
    ) -> WebhookEndpointPublic:
        endpoint = await service.get_endpoint(db, endpoint_id)
        changes = EndpointChanges(
            url=data.url, event_types=data.event_types, description=data.description, enabled=data.enabled
        )
        return endpoint_public(await webhook_endpoints.update(endpoint, changes, actor=console.actor))

    @delete("/webhooks/{endpoint_id:str}", opt=DEVELOPER, status_code=204, summary="Delete an endpoint")
    async def delete_endpoint(
        self,
        endpoint_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
    ) -> None:
        await service.delete_endpoint(db, await service.get_endpoint(db, endpoint_id), actor=console.actor)

    @post(
        "/webhooks/{endpoint_id:str}/rotate-secret",
        opt=DEVELOPER,
        status_code=200,
        summary="A new secret (shown once); the old one also signs during the overlap",
    )
    async def rotate_secret(
        self,
        endpoint_id: FromPath[str],
        data: JSONBody[WebhookSecretRotate],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        webhook_endpoints: NamedDependency[EndpointService],
    ) -> WebhookEndpointCreated:
        endpoint = await service.get_endpoint(db, endpoint_id)
        made = await webhook_endpoints.rotate(endpoint, overlap_hours=data.overlap_hours, actor=console.actor)
        return _with_secret(made)

    @get(
        "/webhooks/{endpoint_id:str}/secret",
        opt=DEVELOPER,
        summary="Always refused: a secret is shown once (G16); the attempt is audited",
        responses={409: problem("the secret was shown when it was made (`secret-shown-once`)")},
    )
    async def reveal_secret(
        self,
        endpoint_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
    ) -> Response[Any]:
        endpoint = await service.get_endpoint(db, endpoint_id)
        await service.refuse_reveal(db, endpoint, actor=console.actor)
        refused = SecretShownOnce(
            "a webhook secret is shown once, when it is made; rotate the secret to get a new one"
        )
        return problem_response(refused.status, refused.body())  # not raised: the audit event must commit

    @post(
        "/webhooks/{endpoint_id:str}/test",
        opt=DEVELOPER,
        status_code=202,
        summary="Send a webhook.test event",
    )
    async def send_test(
        self,
        endpoint_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
    ) -> WebhookTestSent:
        event = await service.send_test(db, await service.get_endpoint(db, endpoint_id), actor=console.actor)
        return WebhookTestSent(id=event.id)

    @get(
        "/webhooks/{endpoint_id:str}/messages",
        opt=VIEWER,
        summary="Messages of an endpoint with their attempts",
    )
    async def list_messages(
        self,
        endpoint_id: FromPath[str],
        db: NamedDependency[AsyncSession],
        status: Annotated[str | None, QueryParameter(max_length=20)] = None,
        event_type: Annotated[str | None, QueryParameter(max_length=60)] = None,
        before: Annotated[int | None, QueryParameter(ge=0)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    ) -> WebhookMessagePage:
        endpoint = await service.get_endpoint(db, endpoint_id)
        messages, next_before = await service.list_messages(
            db, endpoint, MessageFilter(status=status, event_type=event_type, before=before), limit=limit
        )
        return WebhookMessagePage(items=[message_public(m) for m in messages], next=next_before)

    @get(
        "/webhooks/{endpoint_id:str}/messages/{message_id:str}",
        opt=VIEWER,
        summary="One message and its attempts",
    )
    async def get_message(
        self, endpoint_id: FromPath[str], message_id: FromPath[str], db: NamedDependency[AsyncSession]
    ) -> WebhookMessagePublic:
        endpoint = await service.get_endpoint(db, endpoint_id)
        return message_public(await service.get_message(db, endpoint, message_id))

    @post(
        "/webhooks/{endpoint_id:str}/messages/{message_id:str}/replay",
        opt=DEVELOPER,
        status_code=202,
        summary="Send one message again (same webhook-id, a fresh retry schedule)",
    )
    async def replay_message(
        self,
        endpoint_id: FromPath[str],
        message_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
    ) -> WebhookQueued:
        endpoint = await service.get_endpoint(db, endpoint_id)
        count = await service.replay(
            db, endpoint, message_id=message_id, failed_since=None, actor=console.actor
        )
        return WebhookQueued(queued=count)

    @post(
        "/webhooks/{endpoint_id:str}/replay",
        opt=DEVELOPER,
        status_code=202,
        summary="Send every failed message created since a time again",
    )
    async def replay_failed(
        self,
        endpoint_id: FromPath[str],
        data: JSONBody[WebhookReplay],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
    ) -> WebhookQueued:
        endpoint = await service.get_endpoint(db, endpoint_id)
        count = await service.replay(
            db, endpoint, message_id=None, failed_since=data.since, actor=console.actor
        )
        return WebhookQueued(queued=count)


resolves_org("endpoint_id", service.org_of_endpoint)


def _cursor(after: str | None) -> int:
    if after is None or after == "":
        return 0
    # ASCII digits only: str.isdigit() also takes "²" (int() then raises: a 500) and "٣" (read as 3).
    if not (after.isascii() and after.isdigit()) or len(after) > 18:
        raise InvalidInput("after: a cursor from a previous page's `next` (or omit it to start)")
    return int(after)


@get(
    "/v1/backend/events",
    tags=["backend: events"],
    opt=SECRET_KEY_ACCESS,
    summary="Events of this key's project environment after a cursor, oldest first (the pull API)",
)
async def backend_events(
    request: Request[Any, Any, Any],
    db: NamedDependency[AsyncSession],
    after: Annotated[str | None, QueryParameter(max_length=18)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 100,
) -> EventPage:
    principal = await require_secret_key(request)
    cursor = _cursor(after)
    events, more = await service.events_after(
        db,
        org_id=principal.org_id,
        project_id=principal.project_id,
        environment=principal.environment,
        after=cursor,
        limit=limit,
    )
    items = []
    for event in events:
        body = json.loads(event.payload)
        items.append(
            EventItem(
                id=event.id,
                type=event.type,
                version=body["version"],
                timestamp=body["timestamp"],
                data=body["data"],
                cursor=str(event.position),
            )
        )
    return EventPage(items=items, next=items[-1].cursor if items else str(cursor), has_more=more)
