"""Response-wide behaviour: security headers and `Cache-Control: no-store` on every answer, problem+json
for every error."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import structlog
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, MethodNotAllowedException, ValidationException
from litestar.types import Message, Scope
from sqlalchemy.exc import DBAPIError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from silver_auth.core import urls
from silver_auth.core.errors import PROBLEM_CONTENT_TYPE, ProblemError, problem_body
from silver_auth.core.redaction import redact_text
from silver_auth.settings import Settings
from silver_auth.web.deps import RESPONSE_HEADERS, scope_header

log = structlog.get_logger("silver_auth.http")


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
"""G2, G3 in depth behind Caddy: the same headers even if the proxy is misconfigured."""
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def hsts_rule(settings: Settings) -> Callable[[Scope], bool]:
    """G2: whether an answer carries HSTS. By the host it answers for (its Host header, ports aside, as
    HSTS itself ignores them): yes when that host's public URL is https. A host that is neither public
    URL's (a direct call to the bind address): only when every public URL is https."""
    public = [urlsplit(url) for url in (settings.accounts_url, settings.auth_url)]
    https = {url.hostname for url in public if url.scheme == "https"}
    known = {url.hostname for url in public}
    every = all(url.scheme == "https" for url in public)
    if every or not https:  # the same answer for every host: no Host header to read
        return lambda _scope: every

    def wanted(scope: Scope) -> bool:
        hostname = _hostname(scope_header(scope, b"host"))
        return hostname in https if hostname in known else every

    return wanted


@lru_cache(maxsize=64)
def _hostname(host: str | None) -> str | None:
    """The Host header's name, lowercased, without its port; None when absent or malformed."""
    try:
        return urlsplit(f"//{host}").hostname if host else None
    except ValueError:  # "[::1" and the like
        return None


NO_STORE = (b"cache-control", b"no-store")
"""Every answer's default: most carry a secret, a token or an account's data (RFC 6749 5.1, RFC 9111
5.2.2.5). A deliberately cacheable public document (the JWKS, the stylesheet) sets its own."""


BEARER_PATHS = "/v1/"
COOKIE_API_PATHS = ("/console/", "/admin/")
"""The console and platform-admin APIs: session cookie, no CORS (so no OPTIONS either)."""
HOSTED_PATHS = "/p/"


def challenge(scope: Scope, settings: Settings) -> bytes:
    """What a 401 answer names as the way to authenticate (RFC 9110 11.6.1).

    `/v1/…`: Bearer (RFC 6750 3), with `error="invalid_token"` once a credential was sent (a key or,
    on refresh, the session token it rides with); none sent, no error code (RFC 6750 3.1). Elsewhere a
    session cookie, which has no registered scheme: `Cookie` with the sign-in to post to and the cookie
    it sets, after draft-broyer-http-cookie-auth. Any scheme but Basic keeps browsers from a password
    prompt."""
    path = str(scope["path"])
    if path.startswith(BEARER_PATHS):
        sent = any(
            key.lower() in (b"authorization", b"x-publishable-key") for key, _ in scope["headers"]
        ) or b"publishable_key=" in scope.get("query_string", b"")
        return b'Bearer realm="silver-auth"' + (b', error="invalid_token"' if sent else b"")
    if path.startswith(HOSTED_PATHS):  # the pages' own sign-in form; nothing of the path is echoed
        return f'Cookie realm="hosted", cookie-name="{settings.end_user_cookie_name}"'.encode("latin-1")
    return (
        f'Cookie realm="console", form-action="{urls.CONSOLE_API}/sign-in", '
        f'cookie-name="{settings.session_cookie_name}"'
    ).encode("latin-1")


def make_before_send(settings: Settings) -> Any:
    hsts = hsts_rule(settings)
    names = {name for name, _ in [*SECURITY_HEADERS, HSTS]}

    async def add_security_headers(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start":
            headers = []
            present = set()
            for name, value in message.get("headers", []):
                lowered = name.lower()
                if lowered not in names:
                    headers.append((name, value))
                    present.add(lowered)
            if b"cache-control" not in present:
                headers.append(NO_STORE)
            if scope.get("method") == "OPTIONS" and message["status"] < 300 and b"allow" in present:
                # Litestar's own OPTIONS answer names the methods of the route's first handler only
                allow = ", ".join(sorted(route_methods(scope))).encode("latin-1")
                headers = [(n, allow if n.lower() == b"allow" else v) for n, v in headers]
            if message["status"] == 401 and b"www-authenticate" not in present:
                headers.append((b"www-authenticate", challenge(scope, settings)))
            # A route may widen the CSP for itself only (hosted pages: their stylesheet), via opt["csp"].
            handler = scope.get("route_handler")
            csp = handler.opt.get("csp") if handler is not None else None
            headers += SECURITY_HEADERS if csp is None else _with_csp(SECURITY_HEADERS, csp)
            if hsts(scope):
                headers.append(HSTS)
            state = scope.get("state")
            if state and (extra := state.get(RESPONSE_HEADERS)):
                headers += extra
            message["headers"] = headers

    return add_security_headers


def _with_csp(headers: list[tuple[bytes, bytes]], csp: bytes) -> list[tuple[bytes, bytes]]:
    return [(name, csp if name == b"content-security-policy" else value) for name, value in headers]


def problem_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(content=body, status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=headers)


def handle_problem(_: Request[Any, Any, Any], exc: ProblemError) -> Response[Any]:
    return problem_response(exc.status, exc.body(), exc.headers)


def _validation_errors(exc: ValidationException) -> list[dict[str, Any]]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    return [
        # Redact the values as text only: `key` names the offending field and must stay readable.
        {k: redact_text(str(v)) for k, v in item.items() if k in ("key", "message", "source")}
        for item in extra
        if isinstance(item, dict)
    ]


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail = redact_text(str(exc.detail)) if exc.detail else "request failed"
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException):
        errors = _validation_errors(exc)
        malformed = "malformed" in detail.lower() or any(
            "json" in str(e.get("message", "")).lower() for e in errors
        )
        status = 400 if malformed and not errors else 422
        detail = (
            "the body is not valid JSON" if status == 400 else "the request has invalid or missing fields"
        )
        if errors:
            extra["errors"] = errors
    elif status == 404:
        detail = "no such resource"
    elif status == 405:
        detail = f"{request.method} is not allowed here"
    elif status == 413:
        limit = request.app.state.runtime.settings.max_body_bytes
        detail = f"the request body is larger than the limit of {limit} bytes"
    headers = {
        k: allow_header(request.url.path, v) if k.lower() == "allow" else v
        for k, v in (exc.headers or {}).items()
        if k.lower() in ("allow", "retry-after", "www-authenticate")
    }
    return problem_response(status, problem_body(status, detail, **extra), headers)


def refuse_options(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """For the cookie APIs' guards, on a handler without an access rule: Litestar's automatic OPTIONS
    handler. These routes take no CORS, so OPTIONS answers 405 like any other method they lack."""
    if connection.scope.get("method") != "OPTIONS":
        return
    raise MethodNotAllowedException(headers={"Allow": ", ".join(sorted(route_methods(connection.scope)))})


def route_methods(scope: Scope) -> set[str]:
    """Every method of the route that matched, OPTIONS included: all its handlers', not one's."""
    template = scope.get("path_template")
    return next((set(r.methods) for r in scope["app"].routes if r.path_format == template), set())


def allow_header(path: str, allow: str) -> str:
    """The Allow of a 405: without OPTIONS where refuse_options refuses it."""
    if not path.startswith(COOKIE_API_PATHS):
        return allow
    return ", ".join(m for m in (part.strip() for part in allow.split(",")) if m and m != "OPTIONS")


def _first_line(exc: Exception) -> str:
    """The error's own first line, redacted. For SQL errors, the driver's: SQLAlchemy's message may open
    with an autoflush note and goes on with the statement and its bound parameters."""
    origin = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    lines = str(origin).strip().splitlines()
    return redact_text(lines[0]) if lines else ""


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # No stack trace or message to the caller. The log keeps the first line, redacted: SQL errors
    # carry bound parameters on later lines.
    busy = _database_busy(exc)
    (log.warning if busy else log.error)(
        "database_busy" if busy else "unhandled_error",
        path=request.url.path,
        method=request.method,
        error_type=type(exc).__name__,
        error=_first_line(exc),
    )
    if busy:
        return problem_response(
            503,
            problem_body(503, "the service is busy; try again shortly"),
            {"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
        )
    if _text_the_database_refuses(exc):
        return problem_response(
            422, problem_body(422, "the request holds characters that cannot be stored (such as NUL)")
        )
    if _dependency_down(exc):
        return problem_response(
            503,
            problem_body(503, "a service dependency is unavailable; try again shortly"),
            {"Retry-After": "5"},
        )
    return problem_response(500, problem_body(500, "something went wrong on our side; it has been logged"))


def _text_the_database_refuses(exc: BaseException) -> bool:
    """Postgres refuses NUL in text (SQLSTATE 22021, 22P05): bad input, not a bug. Routes validate their
    own fields; this is the net under the ones that don't."""
    orig = getattr(exc, "orig", None)
    return isinstance(exc, DBAPIError) and getattr(orig, "sqlstate", None) in ("22021", "22P05")


BUSY_RETRY_AFTER_SECONDS = 1


def _database_busy(exc: BaseException) -> bool:
    """Load, not a bug: SQLite's write lock stayed taken past the busy timeout (another process, such as
    the CLI, or a burst), or every pooled connection stayed checked out past the pool's timeout."""
    if isinstance(exc, PoolTimeout):
        return True
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlite_errorcode", None)
    # Extended result codes keep the primary one in their low byte (SQLITE_BUSY_SNAPSHOT = 517).
    busy_or_locked = code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return isinstance(exc, OperationalError) and busy_or_locked


def _dependency_down(exc: BaseException) -> bool:
    """The database (or another peer) could not be reached: a 503 the caller can retry, not a bug."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OSError | TimeoutError) or isinstance(getattr(exc, "orig", None), OSError)


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    ProblemError: handle_problem,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}
