"""Authentik rows: a project's OAuth2 provider and application, and OIDC sign-ins under way."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base


class AuthentikApplication(Base):
    __tablename__ = "authentik_applications"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    provider_pk: Mapped[int]
    """The OAuth2 provider's id in Authentik."""
    application_slug: Mapped[str] = mapped_column(String(100), unique=True)
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_sealed: Mapped[str] = mapped_column(String(500))
    """AES-GCM sealed, bound to the project (G10, G17): Authentik hands it out in clear, Silver never does."""
    created_at: Mapped[datetime]
    secret_rotated_at: Mapped[datetime | None]


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
    client_authorization: Mapped[str | None] = mapped_column(String(4096))
    """The signed OpenID Provider authorization request the hosted page was opened with, if any."""
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
