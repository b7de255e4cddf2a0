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
    """argon2id encoded hash."""
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class AccountGroup(Base):
    """Identity-backend group membership (builtin backend); `SEQN-A` marks platform admins (G7)."""

    __tablename__ = "account_groups"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(100), primary_key=True)
