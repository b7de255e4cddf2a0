"""Projects: an org's app, with test and live environments."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String
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


class ProjectBranding(Base):
    """How a project's hosted pages look. A row of its own: the logo's bytes stay off the projects row
    every key check and hosted page reads."""

    __tablename__ = "project_brandings"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(60))
    """Shown on the hosted pages instead of the project's name."""
    primary_colour: Mapped[str | None] = mapped_column(String(7))
    """`#rrggbb`, lower case: buttons, links and focus rings."""
    theme: Mapped[str] = mapped_column(String(5), default="auto")
    """auto (the browser's prefers-color-scheme), light or dark."""
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    """PNG, JPEG, WebP or GIF bytes, checked from their magic bytes; public, so not sealed. Deferred:
    every hosted page reads the row, only the logo's URL and the console's preview read the bytes."""
    logo_type: Mapped[str | None] = mapped_column(String(4))
    """The logo's format as a file extension: png, jpg, webp or gif."""
    logo_sha256: Mapped[str | None] = mapped_column(String(64))
    """Names the logo's URL: a new logo gets a new URL, and the old one answers 404."""
    updated_at: Mapped[datetime]
