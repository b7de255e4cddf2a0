"""Named access checks. Every console route declares `opt={"access": …}`; a route without one is refused.

access: "public" (sign-in), "account" (any signed-in account), or a role name: the caller must hold
at least that role in the org the path points at (G25: org mutations need admin or owner).
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.api.deps import ConsoleContext, request_ip, runtime_of
from silver_auth.audit.service import Actor
from silver_auth.core.errors import CsrfFailed, Forbidden, NotFound, Unauthorized
from silver_auth.db.session import transaction
from silver_auth.keys.models import ApiKey
from silver_auth.orgs.models import Invitation, Membership, Role
from silver_auth.projects.models import Project
from silver_auth.sessions.service import resolve_session

PUBLIC = {"access": "public"}
ACCOUNT = {"access": "account"}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "x-csrf-token"


def role_at_least(role: Role) -> dict[str, str]:
    return {"access": role.value}


VIEWER, DEVELOPER, ADMIN, OWNER = (
    role_at_least(r) for r in (Role.VIEWER, Role.DEVELOPER, Role.ADMIN, Role.OWNER)
)


async def _org_of(db: AsyncSession, params: dict[str, Any]) -> str | None:
    """The org a path points at, through whichever id it carries."""
    if "org_id" in params:
        return str(params["org_id"])
    if "project_id" in params:
        return await db.scalar(select(Project.org_id).where(Project.id == params["project_id"]))
    if "key_id" in params:
        return await db.scalar(
            select(Project.org_id)
            .join(ApiKey, ApiKey.project_id == Project.id)
            .where(ApiKey.id == params["key_id"])
        )
    if "invitation_id" in params:
        return await db.scalar(select(Invitation.org_id).where(Invitation.id == params["invitation_id"]))
    raise RuntimeError("role-scoped route without an org, project, key or invitation id in its path")


def allowed_origins(connection: ASGIConnection[Any, Any, Any, Any]) -> set[str]:
    settings = runtime_of(connection).settings
    return {settings.accounts_url.rstrip("/")}


def check_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A browser's Origin must be the console's own (the cookie is SameSite=Lax; this is the second lock)."""
    origin = connection.headers.get("origin")
    if origin is not None and origin.rstrip("/") not in allowed_origins(connection):
        raise CsrfFailed("cross-site request refused")


async def console_context(connection: ASGIConnection[Any, Any, Any, Any], db: AsyncSession) -> ConsoleContext:
    """The live console session behind the request's cookie (else 401); path ids must be printable
    (else 404); unsafe methods also pass the Origin and CSRF checks (else 403). Shared by the console
    and platform-admin guards."""
    runtime = runtime_of(connection)
    resolved = await resolve_session(
        db,
        runtime.sessions,
        runtime.settings,
        connection.cookies.get(runtime.settings.session_cookie_name),
    )
    if resolved is None:
        raise Unauthorized("sign in to the console first")
    session, account = resolved
    if not all(str(value).isprintable() for value in connection.path_params.values()):
        raise NotFound("not found")  # NUL and friends would reach the database (Postgres: an error)
    if connection.scope.get("method") in UNSAFE_METHODS:
        check_origin(connection)
        if not runtime.sessions.csrf_valid(session.id, connection.headers.get(CSRF_HEADER)):
            raise CsrfFailed(f"send the session's csrf_token in the {CSRF_HEADER} header")
    return ConsoleContext(
        account=account,
        session=session,
        csrf_token=runtime.sessions.csrf_token(session.id),
        actor=Actor(account.id, request_ip(connection)),
    )


async def console_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    access = handler.opt.get("access")
    if access is None:  # fail closed: a new route must say who may call it
        raise Forbidden("this route has no access rule")
    if access == "public":
        return
    runtime = runtime_of(connection)
    async with transaction(runtime.sessionmaker) as db:
        context = await console_context(connection, db)
        account, session = context.account, context.session
        if access != "account":
            required = Role(access)
            org_id = await _org_of(db, connection.path_params)
            membership = await db.get(Membership, (org_id, account.id)) if org_id else None
            if membership is None:  # unknown and foreign ids look the same: no existence leak
                raise NotFound("not found")
            if not membership.role.at_least(required):
                raise Forbidden(
                    f"this needs the {required.value} role or higher; you are {membership.role.value}"
                )
            context = ConsoleContext(
                account=account,
                session=session,
                csrf_token=context.csrf_token,
                actor=context.actor,
                org_id=org_id,
                role=membership.role,
            )
    connection.state.console = context
