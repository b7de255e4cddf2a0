from __future__ import annotations

from datetime import datetime

import msgspec

from silver_auth.core.schemas import Output


class SigningKeyPublic(Output):
    kid: str
    algorithm: str
    status: str
    """`current`, `previous` (still in the JWKS until its tokens expire) or `retired`."""
    created_at: datetime
    rotated_at: datetime | None
    retire_at: datetime | None


class SigningKeyPage(Output):
    items: list[SigningKeyPublic]


class PublicJwk(Output):
    """A public signing key (RFC 7517 4): Ed25519 (`OKP`) or P-256 (`EC`, with `y`)."""

    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str
    y: str | msgspec.UnsetType = msgspec.UNSET


class JwkSet(Output):
    """The public keys that sign a project's session JWTs (RFC 7517 5)."""

    keys: list[PublicJwk]
