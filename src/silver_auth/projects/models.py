"""Projects: an org's app, with test and live environments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (Index("ix_projects_org", "org_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Exact origins (scheme://host[:port]) allowed to call with the publishable key."""
    redirect_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Exact URLs hosted sign-in may redirect back to."""
    sign_in_methods: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
