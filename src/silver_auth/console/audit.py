"""The org's audit log in the console (admins, as `GET /console/api/orgs/{id}/audit`): the filters the
API offers (action, actor, time range), newest first, keyset pages; and an export of every matching
event as CSV or a JSON array, read through the same `list_events` one page after another.

The times of the form are `datetime-local` values, read as UTC when they carry no zone.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.audit.actions import AuditAction
from silver_auth.audit.routes import MAX_CURSOR, event_public
from silver_auth.audit.schemas import AuditEventPublic
from silver_auth.audit.service import AuditFilter, list_events
from silver_auth.console.pages import PAGE_HANDLERS, PageError, frame, page_opt
from silver_auth.console.render import PAGE_SIZE, PREFIX, Req, page, pager
from silver_auth.core import clock
from silver_auth.orgs import service as orgs
from silver_auth.orgs.models import Role
from silver_auth.projects.service import list_projects
from silver_auth.settings import Settings

EXPORT_BATCH = 200  # the API's largest page
EXPORT_MAX = 50_000
"""An export holds every matching event in memory once; past this many the admin narrows the range."""
CSV_COLUMNS = (
    "id",
    "seq",
    "at",
    "action",
    "actor",
    "actor_email",
    "actor_ip",
    "target",
    "project_id",
    "metadata",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet runs a cell beginning with one of these as a formula (CSV injection)."""

Text = Annotated[str | None, QueryParameter(required=False, max_length=100)]
Moment = Annotated[str | None, QueryParameter(required=False, max_length=40)]


@dataclass(frozen=True, slots=True)
class Filters:
    """The query the page and the export share: what the form shows again, what the service reads."""

    action: str
    actor: str
    since: str
    until: str

    def service_filter(self) -> AuditFilter:
        return AuditFilter(
            action=self.action or None,
            actor=self.actor or None,
            since=_moment("From", self.since),
            until=_moment("Until", self.until),
        )

    def query(self, **more: str) -> str:
        values = {"action": self.action, "actor": self.actor, "since": self.since, "until": self.until}
        return urlencode({k: v for k, v in {**values, **more}.items() if v})

    @property
    def any(self) -> bool:
        return bool(self.action or self.actor or self.since or self.until)


def provide_filters(
    action: Text = None, actor: Text = None, since: Moment = None, until: Moment = None
) -> Filters:
    """The filters of the query, for the page and the export alike."""
    return Filters(*((value or "").strip() for value in (action, actor, since, until)))


def _moment(label: str, value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise AuditFilterError(f"{label}: give a date and time, e.g. 2026-01-01T00:00 (UTC)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AuditFilterError(ValueError):
    """A filter the form cannot read; the page says which."""


def _cursor(after: str | None) -> int | None:
    # A cursor by the API's rule (ASCII digits within the BIGINT range); the page reads anything else,
    # a hand-edited link say, as the first page.
    if after and after.isascii() and after.isdigit() and int(after) <= MAX_CURSOR:
        return int(after)
    return None


async def _actor_emails(db: AsyncSession, org_id: str) -> dict[str, str]:
    """Account id -> email of the org's members: the accounts the log can name (others show their id)."""
    return {membership.account_id: email for membership, email in await orgs.list_members(db, org_id)}


def csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _csv(events: list[AuditEventPublic], emails: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in events:
        metadata = msgspec.json.encode(e.metadata).decode()
        row = (e.id, e.seq, e.at.isoformat(), e.action, e.actor, emails.get(e.actor), e.actor_ip, e.target,
               e.project_id, metadata)  # fmt: skip
        writer.writerow([csv_cell(value) for value in row])
    return out.getvalue()


class AuditPages(Controller):
    path = PREFIX
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS
    dependencies = {"filters": Provide(provide_filters, sync_to_thread=False)}

    @get("/orgs/{org_id:str}/audit", opt=page_opt(Role.ADMIN.value))
    async def audit_log(
        self,
        *,
        org_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        filters: NamedDependency[Filters],
        after: Annotated[str | None, QueryParameter(required=False, max_length=20)] = None,
    ) -> Response[Any]:
        shown = await frame(db, console)
        context = shown.context(
            await orgs.get_org(db, org_id),
            title="Audit log",
            section="audit",
            filters=filters,
            audit_path=f"{PREFIX}/orgs/{org_id}/audit",
            actions=sorted(a.value for a in AuditAction),
            emails=await _actor_emails(db, org_id),
            projects={p.id: p.name for p in await list_projects(db, org_id)},
            export_csv=f"{PREFIX}/orgs/{org_id}/audit/export?{filters.query(format='csv')}",
            export_json=f"{PREFIX}/orgs/{org_id}/audit/export?{filters.query(format='json')}",
        )
        try:
            events, next_row = await list_events(
                db, org_id, filters.service_filter(), before=_cursor(after), limit=PAGE_SIZE
            )
        except AuditFilterError as exc:
            raise PageError(
                422, str(exc), "audit.html", **context, events=[], pager=pager(request, None)
            ) from None
        return page(request, settings, "audit.html", **context, events=events, pager=pager(request, next_row))

    @get("/orgs/{org_id:str}/audit/export", opt=page_opt(Role.ADMIN.value))
    async def export(
        self,
        *,
        org_id: FromPath[str],
        db: NamedDependency[AsyncSession],
        filters: NamedDependency[Filters],
        format: Annotated[Literal["csv", "json"], QueryParameter()] = "csv",
    ) -> Response[Any]:
        try:
            wanted = filters.service_filter()
        except AuditFilterError as exc:
            raise PageError(
                422, str(exc), "message.html", title="The export did not start", message=str(exc)
            ) from None
        events: list[AuditEventPublic] = []
        cursor: int | None = None
        while True:
            batch, cursor = await list_events(db, org_id, wanted, before=cursor, limit=EXPORT_BATCH)
            events.extend(event_public(event) for event in batch)
            if len(events) > EXPORT_MAX:
                message = (
                    f"More than {EXPORT_MAX:,} events match. Narrow the time range (From, Until) and export "
                    "each part."
                )
                raise PageError(
                    422, message, "message.html", title="The export is too large", message=message
                )
            if cursor is None:
                break
        stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
        if format == "csv":
            body = _csv(events, await _actor_emails(db, org_id)).encode()
            media_type = "text/csv; charset=utf-8"
        else:
            body = msgspec.json.encode(events)
            media_type = "application/json"
        return Response(
            body,
            media_type=media_type,
            headers={
                "Content-Disposition": f'attachment; filename="audit-{org_id}-{stamp}.{format}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
