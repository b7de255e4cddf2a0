"""The SDK's exceptions: problem+json answers of the API, refused tokens, refused webhooks.

No exception ever holds the secret key: messages are built from the answer's problem document and the
request's method and path only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROBLEM_BASE = "https://seqn.in/problems/"


class SeqnError(Exception):
    """An answer of the API that is not a success: its RFC 9457 problem document, flattened.

    `type` is the problem's URI, `reason` its last path segment (`not-found`, `rate-limited`,
    `invalid-grant`…) unless the problem names a more precise `reason` member, as code-exchange
    refusals do. `problem` holds every member, extra ones included (`plan`, `limit`, `error`…).
    """

    def __init__(
        self,
        status: int,
        *,
        type: str = "about:blank",  # the RFC 9457 member's name
        title: str = "",
        detail: str = "",
        problem: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.problem: dict[str, Any] = dict(problem or {})
        self.retry_after = retry_after
        named = self.problem.get("reason")
        self.reason: str = named if isinstance(named, str) else type.rstrip("/").rsplit("/", 1)[-1]
        super().__init__(f"{status} {title or type}: {detail}" if detail else f"{status} {title or type}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, reason={self.reason!r}, detail={self.detail!r})"


class BadRequestError(SeqnError):
    """400."""


class InvalidGrantError(BadRequestError):
    """400 `invalid-grant`: a code or session token was refused; `reason` says which check failed."""


class AuthenticationError(SeqnError):
    """401: the secret key is missing, unknown, revoked or expired (or a session token has ended)."""


class PermissionDeniedError(SeqnError):
    """403: not allowed, or a plan quota (`reason == "quota-exceeded"`, `problem["plan"]`…)."""


class NotFoundError(SeqnError):
    """404: unknown id, or one of another project or environment (indistinguishable by design)."""


class ConflictError(SeqnError):
    """409: e.g. an end-user with this email already exists."""


class ValidationError(SeqnError):
    """422: the request's body or query is not valid."""


class RateLimitedError(SeqnError):
    """429: too many requests; `retry_after` is the seconds the API asked to wait."""


class ServerError(SeqnError):
    """5xx."""


class ServiceUnavailableError(ServerError):
    """503: a dependency of the service is down; `retry_after` when the API said."""


class SeqnConnectionError(SeqnError):
    """The API could not be reached (connection refused, timeout, TLS failure): `status` is 0."""

    def __init__(self, detail: str) -> None:
        super().__init__(0, type="about:blank", title="Connection failed", detail=detail)
        self.reason = "connection-failed"


_BY_STATUS: dict[int, type[SeqnError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def error_for(status: int, problem: Mapping[str, Any], retry_after: float | None) -> SeqnError:
    """The typed exception of one problem answer."""
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else SeqnError)
    problem_type = problem.get("type")
    problem_type = problem_type if isinstance(problem_type, str) else "about:blank"
    if status == 400 and problem_type == PROBLEM_BASE + "invalid-grant":
        kind = InvalidGrantError

    def text(name: str) -> str:
        value = problem.get(name)
        return value if isinstance(value, str) else ""

    return kind(
        status,
        type=problem_type,
        title=text("title"),
        detail=text("detail"),
        problem=problem,
        retry_after=retry_after,
    )


class TokenVerificationError(Exception):
    """A token that does not verify. `reason` is a stable slug:

    `malformed`, `expired`, `not-yet-valid`, `bad-signature`, `unknown-kid`, `wrong-issuer`,
    `wrong-project`, `wrong-environment`, `wrong-token-type` (an access token presented as a session
    JWT, or the reverse), `missing-token` (the integrations: no token in the request).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class JWKSUnavailableError(Exception):
    """The project's JWKS could not be fetched and no cached copy is at hand: not the token's fault,
    so the integrations answer 503 rather than 401."""


class WebhookVerificationError(Exception):
    """A webhook request that is not a genuine, fresh delivery. `reason`: `missing-headers`,
    `bad-timestamp`, `too-old`, `too-new`, `bad-signature`, `malformed-body`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
