"""End-users of customer projects, their server-side sessions, and one-time redirect codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base


class EndUser(Base):
    __tablename__ = "end_users"
    __table_args__ = (
        UniqueConstraint("project_id", "environment", "email", name="uq_end_users_project_env_email"),
        UniqueConstraint(
            "project_id", "environment", "external_subject", name="uq_end_users_project_env_subject"
        ),
        Index("ix_end_users_project_env_created", "project_id", "environment", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """`usr_…`"""
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    environment: Mapped[str] = mapped_column(String(10))
    """`test` or `live`: a key of one environment never sees the other's users."""
    email: Mapped[str] = mapped_column(String(320))
    """Lower-cased; unique per project and environment."""
    password_hash: Mapped[str | None] = mapped_column(String(200))
    """argon2id; None for a user created by the backend without a password (cannot sign in)."""
    external_subject: Mapped[str | None] = mapped_column(String(255))
    """The OIDC `sub` at the project's Authentik application (SILVER_IDENTITY=authentik); None otherwise."""
    banned_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_sign_in_at: Mapped[datetime | None]


class EndUserSession(Base):
    __tablename__ = "end_user_sessions"
    __table_args__ = (Index("ix_end_user_sessions_user", "user_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """`sess_…`, the JWT's `sid`."""
    user_id: Mapped[str] = mapped_column(ForeignKey("end_users.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(40))
    environment: Mapped[str] = mapped_column(String(10))
    cookie_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the hosted pages' cookie token."""
    refresh_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    """SHA-256 of the session token handed to the customer at code exchange (refreshes the JWT)."""
    mfa: Mapped[bool] = mapped_column(default=False)
    origin: Mapped[str | None] = mapped_column(String(2048))
    """The origin of the redirect URL whose code was exchanged for this session (the JWT's `origin`)."""
    client_id: Mapped[str | None] = mapped_column(String(120))
    """The OpenID Provider client whose code exchange started this session's refresh chain; None when
    the code was exchanged at `/v1/client/sessions/exchange`."""
    scope: Mapped[str | None] = mapped_column(String(512))
    """The scopes that client was granted (space-separated): a refresh grants no more."""
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class RedirectCode(Base):
    """A short-lived, single-use code sent to the redirect URL and exchanged for the session."""

    __tablename__ = "end_user_codes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("end_user_sessions.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(String(40))
    environment: Mapped[str] = mapped_column(String(10))
    redirect_url: Mapped[str] = mapped_column(String(2048))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    """PKCE S256 challenge, when the customer sent one."""
    client_id: Mapped[str | None] = mapped_column(String(120))
    """The OpenID Provider client the code was issued to (only its token endpoint redeems it); None for
    the hosted pages' own `redirect_url` flow."""
    nonce: Mapped[str | None] = mapped_column(String(512))
    """The OpenID Connect `nonce` of the authorization request, repeated in the ID token."""
    scope: Mapped[str | None] = mapped_column(String(512))
    """The granted scopes of the authorization request (space-separated)."""
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class RetiredRefreshToken(Base):
    """The hash of a session token that a refresh has replaced: presented again, it betrays a copy
    (RFC 9700 4.14.2), and the session is revoked."""

    __tablename__ = "end_user_retired_tokens"
    __table_args__ = (Index("ix_end_user_retired_tokens_session", "session_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the replaced session token (never the token)."""
    session_id: Mapped[str] = mapped_column(ForeignKey("end_user_sessions.id", ondelete="CASCADE"))
    retired_at: Mapped[datetime]
