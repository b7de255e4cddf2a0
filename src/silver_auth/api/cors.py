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

from silver_auth.api.deps import scope_header

BROWSER_PATHS = ("/v1/client-config", "/v1/client/")
PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", b"GET, POST"),
    (b"access-control-allow-headers", b"x-publishable-key, content-type"),
    (b"access-control-max-age", b"600"),
    (b"vary", b"Origin"),
]


def _browser_route(scope: Scope) -> bool:
    return str(scope["type"]) == "http" and str(scope["path"]).startswith(BROWSER_PATHS)


def _publishable_key(scope: Scope) -> str | None:
    header = scope_header(scope, b"x-publishable-key")
    if header:
        return header
    for part in bytes(scope.get("query_string", b"")).decode("latin-1").split("&"):
        name, _, value = part.partition("=")
        if name == "publishable_key" and value:
            return value
    return None


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


def _add_headers(scope: Scope, message: MutableMapping[str, Any], origin: str) -> None:
    headers = list(message.get("headers", []))
    headers.append((b"vary", b"Origin"))
    raw = _publishable_key(scope)
    # The route already verified the key, so it is in the cache now if it is valid: no I/O here.
    principal = None if raw is None else scope["litestar_app"].state.runtime.keys.cached(raw, "publishable")
    if principal is not None and origin in principal.allowed_origins:
        headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
    message["headers"] = headers


async def _preflight(origin: str, send: Send) -> None:
    headers = [(b"access-control-allow-origin", origin.encode("latin-1")), *PREFLIGHT_HEADERS]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
