from __future__ import annotations

from datetime import datetime

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
