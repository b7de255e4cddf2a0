"""Console accounts and their identity-backend groups (builtin backend)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
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
