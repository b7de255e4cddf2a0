"""Problem details (RFC 9457): the one error shape of the whole service."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://seqn.in/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProblemError(Exception):
    """A failure the caller can act on. Services raise these; the app renders them as problem+json."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


class InvalidInput(ProblemError):
    status, slug, title = 422, "invalid-request", "The request is not valid"


class TooDeeplyNested(ProblemError):
    status, slug, title = 400, "too-deeply-nested", "The body nests too deeply"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed"


class CsrfFailed(ProblemError):
    status, slug, title = 403, "csrf-failed", "CSRF check failed"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class IdentityProviderUnavailable(ProblemError):
    """The identity provider (Authentik: its API or its OIDC endpoints) did not answer: retry later."""

    status, slug, title = 503, "identity-provider-unavailable", "Identity provider unavailable"


class WebhookUrlRefused(InvalidInput):
    """A receiver URL that is malformed, not https in live (G30), or whose host is not a public address."""

    slug, title = "webhook-url-refused", "Webhook URL refused"


class SecretShownOnce(ProblemError):
    """The secret was shown when it was made and exists only sealed since (G16): rotate for a new one."""

    status, slug, title = 409, "secret-shown-once", "The secret was shown once"


class QuotaExceeded(ProblemError):
    """The org's plan allows no more (L7). Made by `plans.service.quota_exceeded` only, so every refusal
    names the same members: `plan`, `plan_name`, `quota`, `limit` and `used`."""

    status, slug, title = 403, "quota-exceeded", "Plan quota exceeded"


HTTP_SLUGS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-request", "The request is not valid"),
    429: ("rate-limited", "Too many requests"),
    500: ("internal-error", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}


def problem_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    slug, title = HTTP_SLUGS.get(status, ("error", "Error"))
    return {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail, **extra}
