"""Org roles on console routes: `opt=ADMIN` and friends, checked by `org_role_guard` after the console
guard has authenticated the caller (G25: org mutations need admin or owner).

A route's org is found through its path: each domain registers how its path id maps to an org
(`resolves_org("project_id", org_of_project)`). A role-scoped route whose path carries no registered id
is refused (403), never a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import CONSOLE_ACCESS, ConsoleContext
from silver_auth.core.errors import Forbidden, NotFound
from silver_auth.orgs.models import Invitation, Membership, Role
from silver_auth.web.deps import request_db
from silver_auth.web.openapi import documents_access

OrgResolver = Callable[[AsyncSession, str], Awaitable[str | None]]
ORG_RESOLVERS: dict[str, OrgResolver] = {}


def resolves_org(path_param: str, resolver: OrgResolver) -> None:
    """Register how a path id (`project_id`, `key_id`, …) leads to the org whose roles apply."""
    ORG_RESOLVERS[path_param] = resolver


def role_at_least(role: Role) -> dict[str, str]:
    return {"access": role.value}


VIEWER, DEVELOPER, ADMIN, OWNER = (
    role_at_least(r) for r in (Role.VIEWER, Role.DEVELOPER, Role.ADMIN, Role.OWNER)
)
ROLE_ACCESS = frozenset(role.value for role in Role)
_NOT_YOURS = (404, "no such org, or not one you belong to (`not-found`)")
documents_access(Role.VIEWER.value, CONSOLE_ACCESS.refusing(_NOT_YOURS))  # every member is a viewer
for _role in (Role.DEVELOPER, Role.ADMIN, Role.OWNER):
    documents_access(
        _role.value,
        CONSOLE_ACCESS.refusing(
            _NOT_YOURS, (403, f"your role in the org is below {_role.value} (`forbidden`)")
        ),
    )


@dataclass(frozen=True, slots=True)
class OrgAccess:
    """The org a console route touches and the caller's role in it."""

    org_id: str
    role: Role


async def _org_id(db: AsyncSession, path_params: dict[str, Any]) -> str | None:
    if "org_id" in path_params:
        return str(path_params["org_id"])
    for name, resolver in ORG_RESOLVERS.items():
        if name in path_params:
            return await resolver(db, str(path_params[name]))
    raise Forbidden("this route has no org scope")


async def org_role_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    access = handler.opt.get("access")
    if access not in ROLE_ACCESS:
        return
    required = Role(access)
    console: ConsoleContext = connection.state.console
    db = request_db(connection)
    org_id = await _org_id(db, connection.path_params)
    membership = await db.get(Membership, (org_id, console.account.id)) if org_id else None
    if org_id is None or membership is None:  # unknown and foreign ids look the same: no existence leak
        raise NotFound("not found")
    if not membership.role.at_least(required):
        raise Forbidden(f"this needs the {required.value} role or higher; you are {membership.role.value}")
    connection.state.org_access = OrgAccess(org_id, membership.role)


def provide_org_access(request: ASGIConnection[Any, Any, Any, Any]) -> OrgAccess:
    access: OrgAccess = request.state.org_access
    return access


async def _org_of_invitation(db: AsyncSession, invitation_id: str) -> str | None:
    invitation = await db.get(Invitation, invitation_id)
    return invitation.org_id if invitation else None


resolves_org("invitation_id", _org_of_invitation)
