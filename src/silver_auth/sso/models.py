"""Sign-ins through Authentik's OIDC (console, or a project's hosted pages) started and not yet back."""

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
    """The console path to land on (empty for a project's hosted sign-in)."""
    project_id: Mapped[str | None] = mapped_column(String(40))
    """Set for a project's hosted sign-in, None for the console's: a state never crosses over."""
    environment: Mapped[str | None] = mapped_column(String(10))
    redirect_url: Mapped[str | None] = mapped_column(String(2048))
    """The customer's redirect URL (already checked against the allowlist, checked again on return)."""
    client_state: Mapped[str | None] = mapped_column(String(512))
    """The customer's own `state`, passed back untouched."""
    client_challenge: Mapped[str | None] = mapped_column(String(128))
    """The customer's PKCE S256 challenge for the Silver code, when it sent one."""
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
