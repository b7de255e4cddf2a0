"""CORS for the routes a customer's browser code calls with the publishable key: `/v1/client-config`,
`/v1/client/…` (code exchange, refresh, sign-out), and the OpenID Provider's token and revocation
endpoints for a publishable-key client. Pure ASGI, outermost, so the hot-path answers get it too.

A page may read an answer only when its Origin is one of the project's allowed origins (exact match),
the project being the one the presented publishable key belongs to. Every answer of these routes says
`Vary: Origin`, with an Origin or without, so a shared cache never hands one origin's answer to another.
A preflight is approved only for an origin the app's `PreflightCheck` allows: browsers send no custom
header values in a preflight, so it sees the key only when the page put it in the query
(`?publishable_key=`); the check then holds the origin to that key's project. No credentials: these
routes take no cookies.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

from litestar.serialization import encode_json
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from silver_auth.core.errors import PROBLEM_CONTENT_TYPE, problem_body
from silver_auth.web.deps import scope_header

BROWSER_PATHS = ("/v1/client-config", "/v1/client/")
PROVIDER_BROWSER_ENDPOINTS = ("/oauth2/token", "/oauth2/revoke")
"""The OpenID Provider endpoints a single-page app calls as a public client: a form post without a
custom header, so a simple request (no preflight); `/p/{project}/{env}` before them."""
ALLOWED_ORIGINS = "silver_auth.cors.allowed_origins"
VARY_ORIGIN = (b"vary", b"Origin")
PREFLIGHT_HEADERS = [
    (b"access-control-allow-methods", b"GET, POST"),
    (b"access-control-allow-headers", b"x-publishable-key, content-type"),
    (b"access-control-max-age", b"600"),
    VARY_ORIGIN,
]
PreflightCheck = Callable[[Scope, str], Awaitable[bool]]
"""Whether a preflight from this origin (to this scope's path and query) may be approved."""


def _browser_route(scope: Scope) -> bool:
    if str(scope["type"]) != "http":
        return False
    path = str(scope["path"])
    return path.startswith(BROWSER_PATHS) or (
        path.startswith("/p/") and path.endswith(PROVIDER_BROWSER_ENDPOINTS)
    )


def cors_middleware(preflight_allows: PreflightCheck) -> Callable[[ASGIApp], ASGIApp]:
    def middleware(app: ASGIApp) -> ASGIApp:
        async def cors(scope: Scope, receive: Receive, send: Send) -> None:
            if not _browser_route(scope):
                await app(scope, receive, send)
                return
            origin = scope_header(scope, b"origin")
            method = cast("HTTPScope", scope)["method"]
            if (
                origin is not None
                and method == "OPTIONS"
                and scope_header(scope, b"access-control-request-method")
            ):
                await _preflight(origin, await preflight_allows(scope, origin), send)
                return

            async def send_with_cors(message: Message) -> None:
                if message["type"] == "http.response.start":
                    _add_headers(scope, cast("MutableMapping[str, Any]", message), origin)
                await send(message)

            await app(scope, receive, send_with_cors)

        return cors

    return middleware


def allow_origins(scope: Scope, origins: frozenset[str]) -> None:
    """Called by a route that verified the presented publishable key: pages on these origins (the key's
    project's allowed origins) may read this answer."""
    scope.setdefault("state", {})[ALLOWED_ORIGINS] = origins


def _add_headers(scope: Scope, message: MutableMapping[str, Any], origin: str | None) -> None:
    headers = list(message.get("headers", []))
    headers.append(VARY_ORIGIN)
    # What the route verified, not a cache it may have warmed: with a key-cache TTL of 0 nothing stays.
    origins: frozenset[str] = (scope.get("state") or {}).get(ALLOWED_ORIGINS, frozenset())
    if origin is not None and origin in origins:
        headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
    message["headers"] = headers


async def _preflight(origin: str, allowed: bool, send: Send) -> None:
    if allowed:
        status, body = 204, b""
        headers = [(b"access-control-allow-origin", origin.encode("latin-1")), *PREFLIGHT_HEADERS]
    else:  # no Access-Control-Allow-Origin: the browser does not send the request
        status = 403
        body = encode_json(problem_body(403, "this origin is not an allowed origin of the project"))
        headers = [
            (b"content-type", PROBLEM_CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            VARY_ORIGIN,
        ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
