"""Per-project keys that sign end-user session JWTs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base


class SigningKey(Base):
    __tablename__ = "signing_keys"
    __table_args__ = (Index("ix_signing_keys_project", "project_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """Also the JWT header's `kid`."""
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    algorithm: Mapped[str] = mapped_column(String(10))
    """`EdDSA` (Ed25519) or `ES256`; verification accepts this algorithm only."""
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_sealed: Mapped[str] = mapped_column(String(1000))
    """PKCS#8 PEM of the private key, sealed with the sealing key ring (G17)."""
    created_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
    """When a newer key became current; None for the current key."""
    retire_at: Mapped[datetime | None]
    """After this, every token the key signed has expired: it leaves the JWKS and verifies nothing."""
