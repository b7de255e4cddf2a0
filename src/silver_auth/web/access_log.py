"""The access log and the request metrics: one `request` log event and one observation per request,
404, 405 and errors included.

Litestar's app-level middleware runs inside a matched route, so a request no route matched would pass
unseen. This wraps the app's whole ASGI handler instead (routing and exception handlers inside it), and
reads the route template Litestar leaves in the scope. Labels and log fields name the template, never
the raw path, and never the query string: paths and queries can carry tokens (G18, G28), and raw paths
would make the metrics unbounded.

The request id is the client's `X-Request-Id` when it is short and plain (at most 64 of
`A-Z a-z 0-9 . _ -`), else a new random one; the answer echoes it, and every log line of the request
carries it (structlog context variables). Who the request acts as is set by the domain code that
establishes it (`web.deps.set_actor`).
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import Any

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from litestar.utils import normalize_path

from silver_auth.core import metrics
from silver_auth.core.logging import REQUEST_ID, access_log
from silver_auth.core.net import client_ip
from silver_auth.settings import Settings
from silver_auth.web.deps import ACTOR

REQUEST_ID_HEADER = b"x-request-id"
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TYPED_PARAMETER = re.compile(r"\{([^}:]+):[^}]+\}")


def _route_label(template: str) -> str:
    """`/v1/backend/users/{user_id:str}` → `/v1/backend/users/{user_id}`."""
    return _TYPED_PARAMETER.sub(r"{\1}", template) or "/"


def _request_id(presented: str | None) -> str:
    if presented is not None and SAFE_REQUEST_ID.fullmatch(presented):
        return presented
    # Unique, not secret: 96 random bits without a system call (random reseeds in a forked worker).
    return f"{random.getrandbits(96):024x}"


def _level(status: int) -> int:
    return logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO


def observe_requests(app: Litestar, settings: Settings) -> None:
    """Wrap `app`'s ASGI handler (inside Litestar's own entry point: the scope's state exists, the
    security headers' before_send still runs after it) with the access log and the request metrics."""
    app.asgi_handler = AccessLog(app.asgi_handler, app, settings)


class _Answer:
    """The send of one request: echoes the request id, notes the status (and a 405's Allow)."""

    __slots__ = ("allow", "echoed", "send", "status")

    def __init__(self, send: Send, request_id: str) -> None:
        self.send = send
        self.echoed = (REQUEST_ID_HEADER, request_id.encode("latin-1"))
        self.status = 500  # what is recorded when no answer started (an error escaped)
        self.allow: bytes | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = list(message.get("headers") or ())
            if self.status == 405:
                self.allow = next((v for n, v in headers if n.lower() == b"allow"), None)
            headers.append(self.echoed)
            message["headers"] = headers
        await self.send(message)


class AccessLog:
    """The ASGI middleware: see the module docstring."""

    def __init__(self, handler: ASGIApp, app: Litestar, settings: Settings) -> None:
        self.handler, self.app = handler, app
        self.trusted = tuple(settings.trusted_proxies)
        self.log_requests = settings.access_log
        self.labels: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.handler(scope, receive, send)
            return
        started = time.perf_counter()
        presented = forwarded = None
        for name, value in scope["headers"]:
            lowered = name.lower()
            if lowered == REQUEST_ID_HEADER:
                presented = value.decode("latin-1")
            elif lowered == b"x-forwarded-for":
                forwarded = value.decode("latin-1")
        request_id = _request_id(presented)
        answer = _Answer(send, request_id)
        token = REQUEST_ID.set(request_id)
        try:
            await self.handler(scope, receive, answer)
        finally:
            self._record(scope, answer, time.perf_counter() - started, forwarded, request_id)
            REQUEST_ID.reset(token)

    def _record(
        self, scope: HTTPScope, answer: _Answer, seconds: float, forwarded: str | None, request_id: str
    ) -> None:
        route = self._route(scope, answer.allow)
        method, status = scope["method"], answer.status
        metrics.record_request(route, method, status, seconds)
        level = _level(status)
        log = access_log()
        if not (self.log_requests and log.enabled_for(level)):
            return
        peer = scope.get("client")
        log.write(
            level,
            {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client_ip": client_ip(peer[0] if peer else None, forwarded, self.trusted),
                "actor": (scope.get("state") or {}).get(ACTOR),
                "request_id": request_id,  # the line may be rendered after the request's context ended
            },
        )

    def _route(self, scope: HTTPScope, allow: bytes | None) -> str:
        template: str | None = scope.get("path_template")
        if not template and allow:  # 405 from the router: the path matched, the method did not
            template = _template_of(self.app, scope["path"], allow)
        if not template:
            return metrics.UNMATCHED
        label = self.labels.get(template)
        if label is None:
            label = self.labels[template] = _route_label(template)
        return label


def _template_of(app: Litestar, path: str, allow: bytes) -> str | None:
    """The template of the route at `path`, looked up with a method it does allow."""
    method = allow.split(b",")[0].strip().decode("latin-1")
    route: Callable[..., Any] = app.asgi_router.handle_routing
    try:
        template = route(path=normalize_path(path), method=method)[4]
    except Exception:  # no route after all: unmatched
        return None
    return str(template) if template else None
