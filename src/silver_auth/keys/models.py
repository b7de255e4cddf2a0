"""API keys: publishable (public) and secret (hash only, G17)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_project", "project_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    """`secret` or `publishable`."""
    environment: Mapped[str] = mapped_column(String(10))
    """`test` or `live`."""
    lookup_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """HMAC-SHA256(pepper, key): the one indexed lookup a request costs (G17)."""
    prefix: Mapped[str] = mapped_column(String(20))
    """Display prefix, e.g. `sk_live_Ab12`: enough to recognise, useless to use."""
    publishable_key: Mapped[str | None] = mapped_column(String(80))
    """The whole key for publishable keys only: they are public by design."""
    name: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    """End of a rotation grace period; refused from then on."""
    revoked_at: Mapped[datetime | None]
    replaced_by: Mapped[str | None] = mapped_column(String(40))
