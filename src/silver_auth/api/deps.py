"""Shared dependencies: the runtime, a per-request transaction, the console context, the caller's key."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.api.state import Runtime
from silver_auth.audit.service import Actor
from silver_auth.core.net import client_ip
from silver_auth.db.session import transaction
from silver_auth.identity.models import Account
from silver_auth.keys.verifier import KeyPrincipal
from silver_auth.orgs.models import Role
from silver_auth.sessions.models import ConsoleSession


def runtime_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    runtime: Runtime = connection.app.state.runtime
    return runtime


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


def provide_key(request: ASGIConnection[Any, Any, Any, Any]) -> KeyPrincipal:
    principal: KeyPrincipal = request.state.key
    return principal


DEPENDENCIES = {
    "db": Provide(provide_db),
    "runtime": Provide(provide_runtime, sync_to_thread=False),
    "console": Provide(provide_console, sync_to_thread=False),
    "key": Provide(provide_key, sync_to_thread=False),
}
