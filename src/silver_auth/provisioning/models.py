"""A project's OAuth2 provider and application in Authentik (SILVER_IDENTITY=authentik)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base


class AuthentikApplication(Base):
    __tablename__ = "authentik_applications"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    provider_pk: Mapped[int]
    """The OAuth2 provider's id in Authentik."""
    application_slug: Mapped[str] = mapped_column(String(100), unique=True)
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_sealed: Mapped[str] = mapped_column(String(500))
    """AES-GCM sealed, bound to the project (G10, G17): Authentik hands it out in clear, Silver never does."""
    created_at: Mapped[datetime]
    secret_rotated_at: Mapped[datetime | None]
