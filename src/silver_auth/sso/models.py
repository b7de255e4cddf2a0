"""Console sign-ins through Authentik's OIDC that have started and not yet come back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base


class OidcLogin(Base):
    """One authorization request: its state is single-use (the row is deleted when it comes back)."""

    __tablename__ = "oidc_logins"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the `state` parameter (the browser holds the state itself, in a signed cookie)."""
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(200))
    """PKCE verifier: single-use and short-lived, useless without the code the browser brings back."""
    next_path: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
