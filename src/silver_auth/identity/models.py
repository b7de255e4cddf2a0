"""Console accounts and their identity-backend groups (builtin backend)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    """Lower-cased; the sign-in name."""
    password_hash: Mapped[str] = mapped_column(String(200))
    """argon2id encoded hash; `!sso` for accounts that sign in through Authentik (never verifies)."""
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(20), default="builtin", server_default="builtin")
    """`builtin` (password here) or `authentik` (OIDC sign-in, groups synced from the ID token)."""
    external_subject: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    """The OIDC `sub` of an Authentik account (the user's UUID in Authentik)."""


class AccountGroup(Base):
    """Identity-backend group membership (builtin backend); `SEQN-A` marks platform admins (G7)."""

    __tablename__ = "account_groups"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(100), primary_key=True)


class AuthFailure(Base):
    """One failed second-factor or sign-in attempt, counted per scope and subject (account, IP)."""

    __tablename__ = "auth_failures"
    __table_args__ = (Index("ix_auth_failures_scope_subject_at", "scope", "subject", "at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    """What failed and how it is counted, e.g. `console_mfa_account`, `console_mfa_ip`."""
    subject: Mapped[str] = mapped_column(String(200))
    """The account, end-user or IP address the failure counts against."""
    at: Mapped[datetime]


class TotpFactor(Base):
    """A TOTP second factor of a console account or an end-user (one per owner)."""

    __tablename__ = "totp_factors"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(40), unique=True)
    """An account id (`acc_…`) or an end-user id (`usr_…`)."""
    secret_sealed: Mapped[str] = mapped_column(String(300))
    """The base32 secret, sealed (the server must compute codes again, so a hash would not do: G17)."""
    confirmed_at: Mapped[datetime | None]
    """Set by the first correct code; an unconfirmed factor is a pending enrolment and protects nothing."""
    last_used_step: Mapped[int | None]
    """The time step of the last accepted code: a code is accepted once (no replay)."""
    created_at: Mapped[datetime]


class RecoveryCode(Base):
    """A single-use recovery code, stored as a keyed hash (G17)."""

    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_owner", "owner_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(40))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
