"""Orgs, their members with roles, and one-time invitations."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    DEVELOPER = "developer"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return ROLE_RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


ROLE_RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.ADMIN: 2, Role.OWNER: 3}
role_column = Enum(
    Role, name="role", native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]
)


class Org(Base):
    __tablename__ = "orgs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    plan: Mapped[str] = mapped_column(String(20), default="free")
    """Plan id: free, pro or scale (L7); changed only by platform admins."""
    created_at: Mapped[datetime]


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (Index("ix_memberships_account", "account_id"),)

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[Role] = mapped_column(role_column)
    created_at: Mapped[datetime]


class Invitation(Base):
    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_org", "org_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(role_column)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the link token; the link is shown once."""
    email_hint: Mapped[str | None] = mapped_column(String(320))
    """Who the inviter meant the link for (not enforced: there is no email delivery, L8)."""
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    accepted_by: Mapped[str | None] = mapped_column(String(40))
    revoked_at: Mapped[datetime | None]
