"""Server-side console sessions: revocable rows behind an opaque, signed cookie token (G14, G29)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base


class ConsoleSession(Base):
    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_account", "account_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the opaque cookie token; the token itself is never stored."""
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    """Absolute lifetime end; the idle limit is checked against last_seen_at."""
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    mfa: Mapped[bool] = mapped_column(default=False)
    """Whether this session passed a second factor."""
    awaiting_mfa: Mapped[bool] = mapped_column(default=False, server_default=false())
    """A pending sign-in: the password was right, the second factor is still due. Such a row is good
    for nothing but finishing that sign-in (resolve_session ignores it) and expires within minutes."""
