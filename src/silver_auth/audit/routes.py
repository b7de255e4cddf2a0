"""The org's audit log in the console."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.spec.enums import OpenAPIFormat
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit import service
from silver_auth.audit.models import AuditEvent
from silver_auth.audit.schemas import AuditEventPublic, AuditPage
from silver_auth.core.errors import InvalidInput
from silver_auth.orgs.guards import ADMIN

MAX_CURSOR = 2**63 - 1
Moment = Annotated[str | None, QueryParameter(format=OpenAPIFormat.DATE_TIME, max_length=40)]
"""An RFC 3339 time with its zone; read as text, so a bare number is refused, not taken for a timestamp."""


def _moment(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = msgspec.convert(value, datetime)
    except msgspec.ValidationError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidInput(f"{name} is an RFC 3339 time with a time zone, e.g. 2026-01-01T00:00:00Z")
    return moment


def event_public(event: AuditEvent) -> AuditEventPublic:
    """One event as the API answers it (and the console's export writes it)."""
    return AuditEventPublic(
        id=event.id,
        seq=event.seq,
        action=event.action,
        actor=event.actor,
        actor_ip=event.actor_ip,
        target=event.target,
        project_id=event.project_id,
        at=event.at,
        metadata=event.metadata_,
    )


class AuditController(Controller):
    path = "/console/api"
    tags = ["console: audit"]

    @get("/orgs/{org_id:str}/audit", opt=ADMIN, summary="The org's audit log, newest first")
    async def list_audit(
        self,
        *,
        org_id: FromPath[str],
        db: NamedDependency[AsyncSession],
        action: Annotated[str | None, QueryParameter(max_length=60)] = None,
        actor: Annotated[str | None, QueryParameter(max_length=100)] = None,
        since: Moment = None,
        until: Moment = None,
        cursor: Annotated[str | None, QueryParameter(max_length=20)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> AuditPage:
        # ASCII digits within the BIGINT range only: str.isdigit() also accepts "²" and "٣", and a
        # larger number overflows the database driver (both were a 500, not a 422).
        if cursor is not None and not (cursor.isascii() and cursor.isdigit() and int(cursor) <= MAX_CURSOR):
            raise InvalidInput("cursor is not valid")
        window = {"since": _moment("since", since), "until": _moment("until", until)}
        events, next_row = await service.list_events(
            db,
            org_id,
            service.AuditFilter(action=action, actor=actor, **window),
            before=int(cursor) if cursor else None,
            limit=limit,
        )
        return AuditPage(
            items=[event_public(e) for e in events], next=str(next_row) if next_row is not None else None
        )
