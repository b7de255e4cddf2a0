"""A pure-ASGI short cut for the hot public reads: `/v1/client-config` and `/v1/backend/project`.

Litestar's per-request pipeline (Request, parameters, Response) costs several times the work these two
routes do. Each of them therefore carries this route middleware: when the presented key is already in
the verifier's cache and valid, it writes the 200 answer itself, built by the same function the route
handler uses. Anything else (a cache miss, an unknown, revoked or expired key, a query string, another
method) goes on to the route handler, which stays the one authoritative implementation, errors included.

It runs inside the Litestar app, after routing: the security headers (before_send) and the exception
handlers still apply. Route-level middleware that Litestar would place inside it (allowed hosts, CSRF,
compression, response cache) is not configured; tests/web/test_hot_path.py fails if one is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from litestar.serialization import encode_json
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send

HotAnswer = Callable[[Scope], object | None]
"""Builds the 200 answer from the cache alone (no I/O), or returns None to let the route handler run."""


def hot_answer(answer: HotAnswer) -> Callable[[ASGIApp], ASGIApp]:
    """Route middleware serving `answer`'s 200 answer directly when it has one."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def hot(scope: Scope, receive: Receive, send: Send) -> None:
            body = None
            http = cast("HTTPScope", scope)  # the middleware of a GET route sees HTTP scopes only
            if http["method"] == "GET" and not http["query_string"]:
                data = answer(http)
                body = None if data is None else encode_json(data)
            if body is None:
                await app(scope, receive, send)
                return
            # The same status and headers Litestar sends for these routes; before_send adds the rest.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body, "more_body": False})

        return hot

    return middleware
