"""Where the integrations find a token: the Authorization header's Bearer, else a cookie."""

from __future__ import annotations

DEFAULT_COOKIE = "seqn_session"


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def challenge(reason: str) -> str:
    """The WWW-Authenticate of a 401 (RFC 6750 3): no token is a bare challenge, a refused one says so."""
    if reason == "missing-token":
        return 'Bearer realm="seqn"'
    return f'Bearer realm="seqn", error="invalid_token", error_description="{reason}"'
