"""Console pages of a project's webhook endpoints: the list with a create form (the secret shown once,
in the create's own answer), one endpoint's settings, secret rotation, test events, and its deliveries
with their attempts and replays. The same services as /console/api/projects/{id}/webhooks and
/console/api/webhooks/{id}."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.console.pages import PAGE_HANDLERS, Frame, PageError, frame, page_opt
from silver_auth.console.render import PREFIX, Req, html, page, pager, see_other
from silver_auth.core import clock
from silver_auth.core.errors import InvalidInput, NotFound, ProblemError
from silver_auth.orgs import service as orgs
from silver_auth.orgs.guards import OrgAccess
from silver_auth.orgs.models import Org, Role
from silver_auth.projects.models import Project
from silver_auth.projects.service import get_project
from silver_auth.settings import Settings
from silver_auth.webhooks import service
from silver_auth.webhooks.events import catalogue
from silver_auth.webhooks.models import WebhookEndpoint
from silver_auth.webhooks.service import (
    ENVIRONMENTS,
    EndpointChanges,
    EndpointCreate,
    EndpointService,
    Message,
    MessageFilter,
)

DELIVERIES_PAGE_SIZE = 20
STATUS_FILTERS = {"pending": "Pending", "succeeded": "Delivered", "failed": "Failed"}
REPLAY_WINDOWS = {"1": 1, "24": 24, "168": 168}
"""How far back "replay every failed message" reaches, in hours, by the choice the form offers."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message as the deliveries table shows it: the service's `pending` split by whether an
    attempt already failed (retrying) or none was made yet (sending)."""

    message: Message

    @property
    def state(self) -> str:
        status = self.message.delivery.status
        if status == "succeeded":
            return "delivered"
        if status == "failed":
            return "failed"
        return "retrying" if self.message.attempts else "sending"

    @property
    def pending(self) -> bool:
        return self.message.delivery.status == "pending"


def _text(form: FormMultiDict, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _event_types(form: FormMultiDict) -> list[str]:
    return [value for value in form.getall("event_types", []) if isinstance(value, str)]


def _endpoint_path(endpoint_id: str) -> str:
    return f"{PREFIX}/webhooks/{endpoint_id}"


def _list_path(project_id: str) -> str:
    return f"{PREFIX}/projects/{project_id}/webhooks"


async def _last_states(db: AsyncSession, endpoints: list[WebhookEndpoint]) -> dict[str, str]:
    """Each endpoint's newest delivery state ("" when nothing was sent to it yet)."""
    states: dict[str, str] = {}
    for endpoint in endpoints:
        newest, _ = await service.list_messages(db, endpoint, MessageFilter(), limit=1)
        states[endpoint.id] = Delivery(newest[0]).state if newest else ""
    return states


async def _awaited_pending(db: AsyncSession, endpoint: WebhookEndpoint, message_id: str) -> bool:
    """Whether the message a form just sent (`?awaiting=`) is still on its way: its delivery row
    appears only once the worker has put the event in order, so the list keeps asking until then."""
    if not message_id or len(message_id) > 60:
        return False
    try:
        return (await service.get_message(db, endpoint, message_id)).delivery.status == "pending"
    except NotFound:
        return True


class WebhookPages(Controller):
    path = PREFIX
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    async def _project_frame(
        self, db: AsyncSession, console: ConsoleContext, project: Project
    ) -> tuple[Frame, Org]:
        return await frame(db, console), await orgs.get_org(db, project.org_id)

    async def _list_context(
        self,
        db: AsyncSession,
        console: ConsoleContext,
        org_access: OrgAccess,
        project: Project,
        **more: Any,
    ) -> dict[str, Any]:
        shown, org = await self._project_frame(db, console, project)
        endpoints = await service.list_endpoints(db, project.id)
        return shown.context(
            org,
            title="Webhooks",
            section="webhooks",
            current_project=project,
            endpoints=endpoints,
            last_states=await _last_states(db, endpoints),
            event_catalogue=catalogue(),
            environments=ENVIRONMENTS,
            can_manage=org_access.role.at_least(Role.DEVELOPER),
            **more,
        )

    @get("/projects/{project_id:str}/webhooks", opt=page_opt(Role.VIEWER.value))
    async def list_endpoints(
        self,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        project = await get_project(db, project_id)
        context = await self._list_context(db, console, org_access, project, chosen=None)
        return page(request, settings, "webhooks.html", **context)

    @post("/projects/{project_id:str}/webhooks", opt=page_opt(Role.DEVELOPER.value))
    async def create_endpoint(
        self,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        webhook_endpoints: NamedDependency[EndpointService],
    ) -> Response[Any]:
        project = await get_project(db, project_id)
        form = await request.form()
        chosen = EndpointCreate(
            url=_text(form, "url"),
            environment=_text(form, "environment"),
            event_types=_event_types(form),
            description=_text(form, "description") or None,
        )
        try:
            made = await webhook_endpoints.create(project, chosen, actor=console.actor)
        except ProblemError as exc:
            context = await self._list_context(db, console, org_access, project, chosen=chosen)
            raise PageError(exc.status, exc.detail, "webhooks.html", **context) from None
        shown, org = await self._project_frame(db, console, project)
        # The secret is in this answer alone (G16): a redirect would have to carry it somewhere.
        return html(
            "webhook_secret.html",
            201,
            **shown.context(
                org,
                title="Webhook endpoint created",
                section="webhooks",
                current_project=project,
                endpoint=made.endpoint,
                secret=made.secret,
                rotated=False,
            ),
        )

    async def _endpoint_context(
        self,
        request: Req,
        db: AsyncSession,
        console: ConsoleContext,
        org_access: OrgAccess,
        endpoint: WebhookEndpoint,
    ) -> dict[str, Any]:
        project = await get_project(db, endpoint.project_id)
        shown, org = await self._project_frame(db, console, project)
        status = request.query_params.get("status") or None
        before = request.query_params.get("after", "")
        filters = MessageFilter(
            status=status,
            before=int(before) if before.isascii() and before.isdigit() and len(before) < 19 else None,
        )
        messages, next_before = await service.list_messages(db, endpoint, filters, limit=DELIVERIES_PAGE_SIZE)
        deliveries = [Delivery(message) for message in messages]
        awaited = await _awaited_pending(db, endpoint, request.query_params.get("awaiting", ""))
        return shown.context(
            org,
            title="Webhook endpoint",
            section="webhooks",
            current_project=project,
            endpoint=endpoint,
            deliveries=deliveries,
            polling=awaited or any(delivery.pending for delivery in deliveries),
            any_failed=any(delivery.state == "failed" for delivery in deliveries),
            pager=pager(request, next_before),
            this_url=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            status_filter=status or "",
            status_filters=STATUS_FILTERS,
            event_catalogue=catalogue(),
            can_manage=org_access.role.at_least(Role.DEVELOPER),
        )

    @get("/webhooks/{endpoint_id:str}", opt=page_opt(Role.VIEWER.value))
    async def show_endpoint(
        self,
        endpoint_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        endpoint = await service.get_endpoint(db, endpoint_id)
        try:
            context = await self._endpoint_context(request, db, console, org_access, endpoint)
        except ProblemError as exc:  # a status filter the service does not know
            raise PageError(
                exc.status, exc.detail, "message.html", title="The filter is not valid", message=exc.detail
            ) from None
        return page(request, settings, "webhook.html", **context)

    @post("/webhooks/{endpoint_id:str}", opt=page_opt(Role.DEVELOPER.value))
    async def update_endpoint(
        self,
        *,
        endpoint_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        webhook_endpoints: NamedDependency[EndpointService],
    ) -> Response[Any]:
        endpoint = await service.get_endpoint(db, endpoint_id)
        form = await request.form()
        # The form always sends the whole setting: unchecked boxes are absent, so absent means off.
        changes = EndpointChanges(
            url=_text(form, "url"),
            event_types=_event_types(form),
            description=_text(form, "description"),
            enabled=form.get("enabled") == "on",
        )
        try:
            if not changes.url:
                raise InvalidInput("url: give the URL the events are sent to")
            await webhook_endpoints.update(endpoint, changes, actor=console.actor)
        except ProblemError as exc:
            # Nothing is stored: the PageError rolls the request's transaction back.
            context = await self._endpoint_context(request, db, console, org_access, endpoint)
            raise PageError(exc.status, exc.detail, "webhook.html", **context) from None
        return see_other(
            _endpoint_path(endpoint_id),
            flash="Saved the endpoint. New events are sent by these settings.",
            settings=settings,
        )

    @post("/webhooks/{endpoint_id:str}/delete", opt=page_opt(Role.DEVELOPER.value))
    async def delete_endpoint(
        self,
        endpoint_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        endpoint = await service.get_endpoint(db, endpoint_id)
        project_id = endpoint.project_id
        await service.delete_endpoint(db, endpoint, actor=console.actor)
        return see_other(
            _list_path(project_id),
            flash="Deleted the endpoint with its deliveries. Nothing more is sent to it.",
            settings=settings,
        )

    @post("/webhooks/{endpoint_id:str}/rotate-secret", opt=page_opt(Role.DEVELOPER.value))
    async def rotate_secret(
        self,
        endpoint_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        webhook_endpoints: NamedDependency[EndpointService],
    ) -> Response[Any]:
        endpoint = await service.get_endpoint(db, endpoint_id)
        overlap = _text(await request.form(), "overlap_hours")
        try:
            try:
                hours = float(overlap) if overlap else None
            except ValueError:
                raise InvalidInput("overlap_hours: a number of hours, from 0 to 168") from None
            made = await webhook_endpoints.rotate(endpoint, overlap_hours=hours, actor=console.actor)
        except ProblemError as exc:
            context = await self._endpoint_context(request, db, console, org_access, endpoint)
            raise PageError(exc.status, exc.detail, "webhook.html", **context) from None
        project = await get_project(db, endpoint.project_id)
        shown, org = await self._project_frame(db, console, project)
        return html(
            "webhook_secret.html",
            200,
            **shown.context(
                org,
                title="New signing secret",
                section="webhooks",
                current_project=project,
                endpoint=made.endpoint,
                secret=made.secret,
                rotated=True,
            ),
        )

    @post("/webhooks/{endpoint_id:str}/test", opt=page_opt(Role.DEVELOPER.value))
    async def send_test(
        self,
        endpoint_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        endpoint = await service.get_endpoint(db, endpoint_id)
        event = await service.send_test(db, endpoint, actor=console.actor)
        if not endpoint.enabled:  # a disabled endpoint gets no delivery: nothing to wait for
            return see_other(
                _endpoint_path(endpoint_id),
                flash=(
                    "Sent a webhook.test event, but this endpoint is disabled: enable it below to "
                    "receive events."
                ),
                settings=settings,
            )
        return see_other(
            f"{_endpoint_path(endpoint_id)}?awaiting={event.id}",
            flash="Sent a webhook.test event; it appears below within seconds.",
            settings=settings,
        )

    @get("/webhooks/{endpoint_id:str}/messages/{message_id:str}", opt=page_opt(Role.VIEWER.value))
    async def show_message(
        self,
        *,
        endpoint_id: FromPath[str],
        message_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        endpoint = await service.get_endpoint(db, endpoint_id)
        message = await service.get_message(db, endpoint, message_id)
        project = await get_project(db, endpoint.project_id)
        shown, org = await self._project_frame(db, console, project)
        return page(
            request,
            settings,
            "webhook_message.html",
            **shown.context(
                org,
                title=f"Message {message.event.type}",
                section="webhooks",
                current_project=project,
                endpoint=endpoint,
                delivery=Delivery(message),
                can_manage=org_access.role.at_least(Role.DEVELOPER),
            ),
        )

    @post("/webhooks/{endpoint_id:str}/messages/{message_id:str}/replay", opt=page_opt(Role.DEVELOPER.value))
    async def replay_message(
        self,
        endpoint_id: FromPath[str],
        message_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        endpoint = await service.get_endpoint(db, endpoint_id)
        await service.replay(db, endpoint, message_id=message_id, failed_since=None, actor=console.actor)
        return see_other(
            _endpoint_path(endpoint_id),
            flash=f"Sending {message_id} again, with a fresh retry schedule; its new attempts appear below.",
            settings=settings,
        )

    @post("/webhooks/{endpoint_id:str}/replay", opt=page_opt(Role.DEVELOPER.value))
    async def replay_failed(
        self,
        endpoint_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        endpoint = await service.get_endpoint(db, endpoint_id)
        hours = REPLAY_WINDOWS.get(_text(await request.form(), "since_hours"))
        if hours is None:
            raise PageError(
                422,
                "Choose how far back to replay from the list.",
                "message.html",
                title="Nothing was replayed",
                message="Go back to the endpoint and choose how far back to replay.",
            )
        since = clock.now() - timedelta(hours=hours)
        count = await service.replay(db, endpoint, message_id=None, failed_since=since, actor=console.actor)
        messages = f"{count} failed message{'' if count == 1 else 's'}"
        flash = (
            f"Sending {messages} again; their new attempts appear below."
            if count
            else "No failed message in that time: nothing to send again."
        )
        return see_other(_endpoint_path(endpoint_id), flash=flash, settings=settings)
