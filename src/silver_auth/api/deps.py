"""Shared dependencies: the runtime, a per-request transaction, the console context, the caller's key."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.types import Scope
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.api.state import Runtime
from silver_auth.audit.service import Actor
from silver_auth.core.errors import Unauthorized
from silver_auth.core.net import client_ip
from silver_auth.db.session import transaction
from silver_auth.identity.models import Account
from silver_auth.keys.verifier import KeyPrincipal
from silver_auth.orgs.models import Role
from silver_auth.sessions.models import ConsoleSession


def runtime_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    runtime: Runtime = connection.app.state.runtime
    return runtime


def scope_header(scope: Scope, name: bytes) -> str | None:
    """The first value of one request header, read from the scope without building `Headers` (hot path)."""
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def bearer_token(scope: Scope) -> str | None:
    """The token of `Authorization: Bearer <token>` (scheme case-insensitive), else None."""
    scheme, _sep, token = (scope_header(scope, b"authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def request_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    peer = connection.scope.get("client")
    settings = runtime_of(connection).settings
    return client_ip(
        peer[0] if peer else None, connection.headers.get("x-forwarded-for"), tuple(settings.trusted_proxies)
    )


@dataclass(frozen=True, slots=True)
class ConsoleContext:
    """The signed-in account behind a console request, and its role in the org the route touches."""

    account: Account
    session: ConsoleSession
    csrf_token: str
    actor: Actor
    org_id: str | None = None
    role: Role | None = None

    @property
    def member_role(self) -> Role:
        if self.role is None:
            raise RuntimeError("route has no org scope")
        return self.role


async def provide_db(request: ASGIConnection[Any, Any, Any, Any]) -> AsyncGenerator[AsyncSession, None]:
    async with transaction(runtime_of(request).sessionmaker) as db:
        yield db


def provide_runtime(request: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    return runtime_of(request)


def provide_console(request: ASGIConnection[Any, Any, Any, Any]) -> ConsoleContext:
    context: ConsoleContext = request.state.console
    return context


async def require_secret_key(request: ASGIConnection[Any, Any, Any, Any]) -> KeyPrincipal:
    """The backend-key check: `Authorization: Bearer sk_…`, else 401 (missing, malformed, unknown, revoked,
    expired). A backend route calls it first thing; it is not a guard or a dependency because on this hot
    path Litestar's per-guard handler copy and its DI machinery cost more than the check itself.
    """
    raw = bearer_token(request.scope)
    principal = None if raw is None else await runtime_of(request).keys.verify(raw, "secret")
    if principal is None:
        raise Unauthorized(
            "a valid secret key is required: Authorization: Bearer sk_…",
            headers={"WWW-Authenticate": 'Bearer realm="silver-auth"'},
        )
    return principal


DEPENDENCIES = {
    "db": Provide(provide_db),
    "runtime": Provide(provide_runtime, sync_to_thread=False),
    "console": Provide(provide_console, sync_to_thread=False),
}
