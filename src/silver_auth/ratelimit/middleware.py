"""Every routed request passes the limiter (G35) before its guards and handler run.

Who the request counts against (its caller policy, `throttle.policies.caller_policy`):
- `Authorization: Bearer sk_…` of a valid key: that key, at its org plan's requests per minute (L7);
- a valid publishable key (`X-Publishable-Key` or `?publishable_key=`): that key and the client IP;
- a console or platform-admin call with a validly signed session cookie: that session;
- anything else (no key, an unknown key, hosted pages, public documents): the client IP, read from
  `X-Forwarded-For` only when the peer is a trusted proxy (SILVER_TRUSTED_PROXIES).
A route whose handler names a `rate_limit` opt (sign-in, sign-up, MFA, code exchange, refresh,
invitation acceptance) also counts against that stricter policy, per client IP (per publishable key
and IP for the code exchange and refresh).

Every answer of a limited route carries RateLimit-Policy and RateLimit for each policy counted; a
refusal is 429 problem+json (an HTML page on the hosted pages, by their exception handlers) with
Retry-After. Every verdict also feeds the sustained-429 tracker (G37).
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from silver_auth.core.errors import ProblemError
from silver_auth.core.metrics import count_rate_limited
from silver_auth.core.net import client_ip
from silver_auth.keys.guards import remember
from silver_auth.keys.verifier import KeyPrincipal
from silver_auth.ratelimit.headers import header_pairs, policy_value, state_value
from silver_auth.ratelimit.limiter import Decision
from silver_auth.runtime import Runtime, scope_runtime
from silver_auth.throttle.policies import RatePolicy
from silver_auth.web.deps import RESPONSE_HEADERS

COOKIE_PATHS = ("/console/", "/admin/")
PUBLISHABLE_QUERY = b"publishable_key="
PER_KEY_ROUTES = frozenset({"code-exchange", "refresh"})
"""Route limits counted per publishable key and IP: a customer's own server may relay these for
many users from one address."""


class RateLimited(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"


def rate_limit_middleware(app: ASGIApp) -> ASGIApp:
    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        runtime = scope_runtime(scope)
        if scope["type"] != ScopeType.HTTP or not runtime.settings.rate_limit_enabled:
            await app(scope, receive, send)
            return
        decisions = await _count(runtime, scope)
        # before_send adds them to the answer, whatever it is: no wrapper around `send` per request.
        scope.setdefault("state", {})[RESPONSE_HEADERS] = header_pairs(decisions)
        await app(scope, receive, send)

    return limited


async def _count(runtime: Runtime, scope: Scope) -> list[Decision]:
    """Count the request against each of its policies; RateLimited when one of them is spent. The
    route's stricter policy is counted first: a refusal there leaves the caller's budget alone."""
    policies = runtime.rate_policies
    presented = _Presented(scope)
    peer = scope.get("client")
    ip = client_ip(peer[0] if peer else None, presented.forwarded_for, policies.trusted_proxies) or "unknown"
    caller, subject, source, origin, publishable = await _caller(runtime, scope, presented, ip)
    handler = scope.get("route_handler")
    route = handler.opt.get("rate_limit") if handler is not None else None
    if route is None:
        decision = await runtime.limiter.hit(caller, subject)
        decisions = [decision]
        refused = None if decision.allowed else decision
    else:
        strict = policies.routes.get(route)
        if strict is None:  # a typo in an opt must not leave a route unlimited
            raise ValueError(f"unknown rate_limit opt {route!r}")
        per_key = route in PER_KEY_ROUTES and publishable is not None
        first = await runtime.limiter.hit(strict, f"{publishable}|{ip}" if per_key else ip)
        if first.allowed:
            decision = await runtime.limiter.hit(caller, subject)
            decisions = [decision, first]
            refused = None if decision.allowed else decision
        else:
            decisions, refused = [first], first
    runtime.sustained.observe(source, refused is not None, origin)
    if refused is not None:
        count_rate_limited(refused.policy.name, None if isinstance(origin, str) else origin.prefix)
        raise RateLimited(
            f"Too many requests: the {refused.policy.name} limit allows {refused.policy.limit} per "
            f"{refused.policy.window_seconds} seconds",
            headers={
                "Retry-After": str(refused.reset_seconds),
                "RateLimit-Policy": policy_value(decisions),
                "RateLimit": state_value(decisions),
            },
            policy=refused.policy.name,
            retry_after=refused.reset_seconds,
        )
    return decisions


class _Presented:
    """The request headers the limiter reads, found in one pass over them."""

    __slots__ = ("authorization", "cookie", "forwarded_for", "publishable")

    def __init__(self, scope: Scope) -> None:
        self.authorization: bytes | None = None
        self.cookie: str | None = None
        self.forwarded_for: str | None = None
        self.publishable: str | None = None
        for name, value in scope["headers"]:
            lowered = name.lower()
            if lowered == b"authorization":
                self.authorization = value
            elif lowered == b"x-forwarded-for":
                self.forwarded_for = value.decode("latin-1")
            elif lowered == b"x-publishable-key":
                self.publishable = value.decode("latin-1")
            elif lowered == b"cookie":
                self.cookie = value.decode("latin-1")

    def bearer(self) -> str | None:
        scheme, _, token = (self.authorization or b"").decode("latin-1").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None


Caller = tuple[RatePolicy, str, str, KeyPrincipal | str, str | None]


async def _caller(runtime: Runtime, scope: Scope, presented: _Presented, ip: str) -> Caller:
    """The caller policy and its subject; the source for the sustained-429 tracker (its subject, and the
    key or address it stands for); the publishable key's id when one was presented."""
    policies = runtime.rate_policies
    path: str = scope["path"]
    if path.startswith("/v1/"):
        raw = presented.bearer()
        if raw is not None and raw.startswith("sk_"):
            key = runtime.keys.cached(raw, "secret") or await runtime.keys.verify(raw, "secret")
            if key is not None:
                remember(scope, key)
                return policies.backend(key.requests_per_minute), key.key_id, f"key:{key.prefix}", key, None
        publishable = presented.publishable or _query_key(scope)
        if publishable:
            key = runtime.keys.cached(publishable, "publishable") or await runtime.keys.verify(
                publishable, "publishable"
            )
            if key is not None:
                remember(scope, key)
                return policies.client, f"{key.key_id}|{ip}", f"key:{key.prefix}", key, key.key_id
    elif path.startswith(COOKIE_PATHS):
        cookie = _cookie(presented.cookie, runtime.settings.session_cookie_name)
        token = runtime.sessions.token_from_cookie(cookie) if cookie else None
        if token is not None:  # signed by us; whether it is still live is the console guard's call
            return policies.console, runtime.key_hasher(token)[:32], f"ip:{ip}", ip, None
    return policies.anonymous, ip, f"ip:{ip}", ip, None


def _query_key(scope: Scope) -> str | None:
    query: bytes = scope.get("query_string", b"")
    if PUBLISHABLE_QUERY not in query:
        return None
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        if name == PUBLISHABLE_QUERY[:-1]:
            return value.decode("latin-1")
    return None


def _cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip('"')
    return None
