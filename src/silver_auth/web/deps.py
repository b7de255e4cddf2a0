"""Request plumbing shared by every package: header reads, the client address, and the request's one
transaction (guards and the handler share it)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core.net import client_ip
from silver_auth.db.session import settle
from silver_auth.web.runtime import web_runtime

RESPONSE_HEADERS = "silver_auth.response_headers"
"""Key of the scope state where a middleware leaves headers for the answer (the limiter's RateLimit
fields); the app's before_send adds them to whatever answer goes out, errors included."""
REQUEST_DB = "silver_auth.db"
"""Key of the request's database session in the ASGI scope state, once a guard or handler opened it."""
ACTOR = "silver_auth.actor"
"""Key of the id the request acts as (key, account) in the ASGI scope state, for the access log."""


def set_actor(scope: Scope, actor_id: str) -> None:
    """Name who the request acts as (a key id, an account id) once the domain code has established it;
    the access log (web.access_log) writes it on the request's line. A plain dict write: hot path."""
    scope.setdefault("state", {})[ACTOR] = actor_id


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
    settings = web_runtime(connection).settings
    return client_ip(
        peer[0] if peer else None, connection.headers.get("x-forwarded-for"), tuple(settings.trusted_proxies)
    )


def request_db(connection: ASGIConnection[Any, Any, Any, Any]) -> AsyncSession:
    """The request's database session, opened on first use: a guard that reads the session row and the
    handler that then writes run in one transaction (and, on SQLite, take the write lock once)."""
    state = connection.scope.setdefault("state", {})
    db: AsyncSession | None = state.get(REQUEST_DB)
    if db is None:
        db = state[REQUEST_DB] = web_runtime(connection).sessionmaker()
    return db


async def provide_db(request: ASGIConnection[Any, Any, Any, Any]) -> AsyncGenerator[AsyncSession, None]:
    """The request's transaction: committed when the handler returns, rolled back when it raises."""
    db = request_db(request)
    async with settle(db):
        yield db
    request.scope["state"].pop(REQUEST_DB, None)


def request_db_middleware(app: ASGIApp) -> ASGIApp:
    """Close a session a guard opened when no handler settled it (the guard refused, or the handler takes
    no `db`): its transaction rolls back and, on SQLite, the write lock goes with it."""

    async def close_leftover(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        finally:
            state: dict[str, Any] = scope.get("state") or {}
            leftover: AsyncSession | None = state.pop(REQUEST_DB, None)
            if leftover is not None:
                await leftover.close()

    return close_leftover


DEPENDENCIES = {"db": Provide(provide_db)}
