"""Every failure limit, from settings: who a refused secret counts against, how many, for how long.

Password sign-in (console and end-users) counts a subject's failures from one IP (the tight limit: a
stranger guessing from elsewhere cannot lock the owner out), per IP (one source trying many subjects)
and per subject across IPs (distributed guessing). Second factors and re-authentication count per
owner and per IP (the owner already proved the password). Hosted sign-up counts every attempt per IP
and per project environment (the plan's end-user quota is not a rate limit). The email of a sign-in
is counted by a keyed hash (`Throttle.email_subject`): the subject column is short, and unknown emails
count the same way.

Request limits (G35) sit here too, beside the failure limits: every call is counted against its
caller (`caller_policy`: the secret key at its plan's rate, the publishable key and IP, the console
session, else the client IP), and the routes that check a secret or mint a session are also counted
per source against a stricter limit (`route_policy`, named by the route's `rate_limit` opt). The
failure limits bound how many secrets are checked; the request limits bound how fast anyone may ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

from silver_auth.settings import Settings
from silver_auth.throttle.service import Limit, per_pair_ip_and_subject, per_subject_and_ip

Kind = Literal["mfa", "reauth"]


def console_second_factor(settings: Settings, kind: Kind, account_id: str, ip: str | None) -> list[Limit]:
    """Console second-factor (`mfa`) or re-authentication (`reauth`) failures of an account."""
    return per_subject_and_ip(
        f"console_{kind}",
        ("account", account_id),
        ip,
        max_per_subject=settings.console_mfa_max_failures,
        max_per_ip=settings.console_mfa_ip_max_failures,
        window=timedelta(minutes=settings.console_mfa_failure_window_minutes),
    )


def console_sign_in(settings: Settings, subject: str, ip: str | None) -> list[Limit]:
    """Console password sign-in failures, `subject` being the email's `email_subject`."""
    return per_pair_ip_and_subject(
        "console_signin",
        subject,
        ip,
        max_per_pair=settings.console_sign_in_max_failures,
        max_per_ip=settings.console_sign_in_ip_max_failures,
        max_per_subject=settings.console_sign_in_email_max_failures,
        window=timedelta(minutes=settings.console_mfa_failure_window_minutes),
    )


def end_user_second_factor(settings: Settings, kind: Kind, user_id: str, ip: str | None) -> list[Limit]:
    """Second-factor (`mfa`) or re-authentication (`reauth`) failures of a signed-in end-user."""
    return per_subject_and_ip(
        f"enduser_{kind}",
        ("user", user_id),
        ip,
        max_per_subject=settings.end_user_mfa_max_failures,
        max_per_ip=settings.end_user_mfa_ip_max_failures,
        window=timedelta(minutes=settings.end_user_failure_window_minutes),
    )


def end_user_sign_in(
    settings: Settings, project_id: str, environment: str, subject: str, ip: str | None
) -> list[Limit]:
    """End-user password sign-in failures in one project environment (`subject`: `email_subject`)."""
    return per_pair_ip_and_subject(
        "enduser_signin",
        f"{project_id}:{environment}:{subject}",
        ip,
        max_per_pair=settings.end_user_sign_in_max_failures,
        max_per_ip=settings.end_user_sign_in_ip_max_failures,
        max_per_subject=settings.end_user_sign_in_email_max_failures,
        window=timedelta(minutes=settings.end_user_failure_window_minutes),
    )


def end_user_sign_up(settings: Settings, project_id: str, environment: str, ip: str | None) -> list[Limit]:
    """Every hosted sign-up attempt, per client IP and per project environment."""
    window = timedelta(minutes=settings.end_user_sign_up_window_minutes)
    limits = [
        Limit(
            "enduser_signup_project",
            f"{project_id}:{environment}",
            settings.end_user_sign_up_project_max,
            window,
        )
    ]
    if ip:
        limits.insert(0, Limit("enduser_signup_ip", ip, settings.end_user_sign_up_ip_max, window))
    return limits


@dataclass(frozen=True, slots=True, eq=False)
class RatePolicy:
    """At most `limit` requests per `window_seconds` per subject, as a sliding window; `name` is what the
    RateLimit-Policy header calls it. Compared and hashed by identity (each is built once, in
    RequestPolicies): the limiter looks things up by policy on every request."""

    name: str
    limit: int
    window_seconds: int = 60


CallerKind = Literal["backend", "client", "console", "anonymous"]
RouteLimit = Literal["sign-in", "sign-up", "mfa", "code-exchange", "refresh", "invitation"]
ROUTE_LIMITS: Final[tuple[RouteLimit, ...]] = (
    "sign-in",
    "sign-up",
    "mfa",
    "code-exchange",
    "refresh",
    "invitation",
)
"""The values a route's `rate_limit` opt may take."""


def caller_policy(settings: Settings, kind: CallerKind, requests_per_minute: int | None = None) -> RatePolicy:
    """The limit every call of a caller counts against: a secret key at its org's plan rate (L7)."""
    if kind == "backend":
        if requests_per_minute is None:
            raise ValueError("a backend key's limit is its plan's requests_per_minute")
        return RatePolicy("backend", requests_per_minute)
    per_minute = {
        "client": settings.rate_limit_client_per_minute,
        "console": settings.rate_limit_console_per_minute,
        "anonymous": settings.rate_limit_anonymous_per_minute,
    }[kind]
    return RatePolicy(kind, per_minute)


class RequestPolicies:
    """Every request policy of one set of settings, built once: the limiter asks on every request."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.client = caller_policy(settings, "client")
        self.console = caller_policy(settings, "console")
        self.anonymous = caller_policy(settings, "anonymous")
        self.routes: dict[str, RatePolicy] = {route: route_policy(settings, route) for route in ROUTE_LIMITS}
        self._backend: dict[int, RatePolicy] = {}
        self.trusted_proxies = tuple(settings.trusted_proxies)

    def backend(self, requests_per_minute: int) -> RatePolicy:
        policy = self._backend.get(requests_per_minute)
        if policy is None:
            policy = self._backend[requests_per_minute] = caller_policy(
                self._settings, "backend", requests_per_minute
            )
        return policy


def route_policy(settings: Settings, route: RouteLimit) -> RatePolicy:
    """The stricter limit of a route that checks a secret or mints a session, counted per source."""
    per_minute = {
        "sign-in": settings.rate_limit_sign_in_per_minute,
        "sign-up": settings.rate_limit_sign_up_per_minute,
        "mfa": settings.rate_limit_mfa_per_minute,
        "code-exchange": settings.rate_limit_code_exchange_per_minute,
        "refresh": settings.rate_limit_refresh_per_minute,
        "invitation": settings.rate_limit_invitation_per_minute,
    }[route]
    return RatePolicy(route, per_minute)
