"""Second factors of any owner: TOTP factors and single-use recovery codes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base


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
