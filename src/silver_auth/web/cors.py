"""CORS for the routes a customer's browser code calls with the publishable key: `/v1/client-config` and
`/v1/client/…` (code exchange, refresh). Pure ASGI, outermost, so the hot-path answers get it too.

A page may read an answer only when its Origin is one of the project's allowed origins (exact match),
the project being the one the presented publishable key belongs to. Preflights cannot say which project
they are for (browsers send no custom header values in them), so they only state the methods and headers
these routes take; the answer itself decides. No credentials: these routes take no cookies.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, cast

from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from silver_auth.web.deps import scope_header

BROWSER_PATHS = ("/v1/client-config", "/v1/client/")
ALLOWED_ORIGINS = "silver_auth.cors.allowed_origins"
PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", b"GET, POST"),
    (b"access-control-allow-headers", b"x-publishable-key, content-type"),
    (b"access-control-max-age", b"600"),
    (b"vary", b"Origin"),
]


def _browser_route(scope: Scope) -> bool:
    return str(scope["type"]) == "http" and str(scope["path"]).startswith(BROWSER_PATHS)


def cors_middleware(app: ASGIApp) -> ASGIApp:
    async def cors(scope: Scope, receive: Receive, send: Send) -> None:
        origin = scope_header(scope, b"origin") if _browser_route(scope) else None
        if origin is None:
            await app(scope, receive, send)
            return
        method = cast("HTTPScope", scope)["method"]
        if method == "OPTIONS" and scope_header(scope, b"access-control-request-method"):
            await _preflight(origin, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_headers(scope, cast("MutableMapping[str, Any]", message), origin)
            await send(message)

        await app(scope, receive, send_with_cors)

    return cors


def allow_origins(scope: Scope, origins: frozenset[str]) -> None:
    """Called by a route that verified the presented publishable key: pages on these origins (the key's
    project's allowed origins) may read this answer."""
    scope.setdefault("state", {})[ALLOWED_ORIGINS] = origins


def _add_headers(scope: Scope, message: MutableMapping[str, Any], origin: str) -> None:
    headers = list(message.get("headers", []))
    headers.append((b"vary", b"Origin"))
    # What the route verified, not a cache it may have warmed: with a key-cache TTL of 0 nothing stays.
    origins: frozenset[str] = (scope.get("state") or {}).get(ALLOWED_ORIGINS, frozenset())
    if origin in origins:
        headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
    message["headers"] = headers


async def _preflight(origin: str, send: Send) -> None:
    headers = [(b"access-control-allow-origin", origin.encode("latin-1")), *PREFLIGHT_HEADERS]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
