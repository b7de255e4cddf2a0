"""Console authentication: the session behind the cookie, Origin and CSRF on unsafe methods.

Every console route declares `opt={"access": …}`; a route without one is refused. access: "public"
(sign-in), "account" (any signed-in account), or an org role (checked after this guard by
`orgs.guards.org_role_guard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.models import Account
from silver_auth.accounts.sessions import ConsoleSession, resolve_session
from silver_auth.audit.service import Actor
from silver_auth.core import urls
from silver_auth.core.errors import CsrfFailed, Forbidden, NotFound, ProblemError, Unauthorized
from silver_auth.runtime import runtime_of
from silver_auth.web.deps import request_db, request_ip, set_actor
from silver_auth.web.http import refuse_options
from silver_auth.web.openapi import CSRF_SCHEME, SESSION_SCHEME, AccessRule, documents_access

PUBLIC = {"access": "public"}
ACCOUNT = {"access": "account"}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "x-csrf-token"

CONSOLE_ACCESS = AccessRule(
    security=((SESSION_SCHEME,),),
    errors=((401, "no console session, or it has ended (`unauthorized`)"),),
    unsafe_security=((SESSION_SCHEME, CSRF_SCHEME),),
    unsafe_errors=((403, "no or a wrong `X-CSRF-Token`, or a foreign `Origin` (`csrf-failed`)"),),
)
"""What console_guard answers for a signed-in route (docs: web.openapi)."""
documents_access(ACCOUNT["access"], CONSOLE_ACCESS)


@dataclass(frozen=True, slots=True)
class ConsoleContext:
    """The signed-in account behind a console request."""

    account: Account
    session: ConsoleSession
    csrf_token: str
    actor: Actor


def allowed_origins(connection: ASGIConnection[Any, Any, Any, Any]) -> set[str]:
    settings = runtime_of(connection).settings
    return {settings.accounts_url.rstrip("/")}


def check_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A browser's Origin must be the console's own (the cookie is SameSite=Lax; this is the second lock)."""
    origin = connection.headers.get("origin")
    if origin is not None and origin.rstrip("/") not in allowed_origins(connection):
        raise CsrfFailed("cross-site request refused")


async def console_context(
    connection: ASGIConnection[Any, Any, Any, Any], db: AsyncSession, *, form_csrf: str | None = None
) -> ConsoleContext:
    """The live console session behind the request's cookie (else 401); path ids must be printable
    (else 404); unsafe methods also pass the Origin and CSRF checks (else 403): the token comes in the
    header, or, from a console page's form, as `form_csrf`. Shared by the console, its pages and the
    platform-admin guards."""
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
    set_actor(connection.scope, account.id)  # the access log's actor, refused or not below
    if not all(str(value).isprintable() for value in connection.path_params.values()):
        raise NotFound("not found")  # NUL and friends would reach the database (Postgres: an error)
    if connection.scope.get("method") in UNSAFE_METHODS:
        check_origin(connection)
        presented = connection.headers.get(CSRF_HEADER) or form_csrf
        if not runtime.sessions.csrf_valid(session.id, presented):
            raise CsrfFailed(f"send the session's csrf_token in the {CSRF_HEADER} header")
    return ConsoleContext(
        account=account,
        session=session,
        csrf_token=runtime.sessions.csrf_token(session.id),
        actor=Actor(account.id, request_ip(connection)),
    )


async def console_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Authenticate every console route but the public ones, in the request's own transaction."""
    access = handler.opt.get("access")
    if access is None:  # fail closed: a new route must say who may call it
        refuse_options(connection)  # Litestar's own OPTIONS handler: 405
        raise Forbidden("this route has no access rule")
    if access == "public":
        return
    connection.state.console = await console_context(connection, request_db(connection))


class UseSingleSignOn(ProblemError):
    status, slug, title = 403, "sso-required", "Sign in through Authentik"


SSO_REQUIRED = "with Authentik as the identity backend, passwords and MFA live there (`sso-required`)"


def builtin_identity_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """With Authentik as the identity engine, console passwords and second factors live there: a device
    bound here would not be Authentik's confirmed device that admin MFA rests on (G6)."""
    if runtime_of(connection).settings.identity != "builtin":
        raise UseSingleSignOn(
            "passwords and MFA devices are managed in Authentik for this console: "
            f"sign in with GET {urls.CONSOLE_OIDC}/start",
            sso=f"{urls.CONSOLE_OIDC}/start",
        )


def provide_console(request: ASGIConnection[Any, Any, Any, Any]) -> ConsoleContext:
    context: ConsoleContext = request.state.console
    return context
