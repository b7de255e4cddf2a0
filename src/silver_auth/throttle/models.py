"""Failed attempts, counted against an account, end-user, email or IP (the throttle's ledger)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base


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
