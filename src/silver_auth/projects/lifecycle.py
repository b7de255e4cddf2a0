"""What the identity engine does when a project is created, changes its redirect URLs, or goes.

Builtin identity keeps nothing outside this database (`NoLifecycle`); Authentik gets an OAuth2 provider
and application per project (`silver_auth.authentik.applications.AuthentikApplications`). The project
service calls the lifecycle before it takes any lock: these calls may leave the machine (G8).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor
from silver_auth.projects.models import Project


class ProjectLifecycle(Protocol):
    async def provision(self, db: AsyncSession, project: Project) -> object | None:
        """Make the project's external objects (network calls, before the project row is written or any
        lock taken); undone if the transaction does not commit. Returns what `provisioned` records."""

    async def provisioned(
        self, db: AsyncSession, project: Project, provisioned: object | None, *, actor: Actor
    ) -> None:
        """Record what `provision` made, once the project row exists (no network calls)."""

    async def redirects_changing(self, db: AsyncSession, project: Project, redirect_urls: list[str]) -> None:
        """Keep the external redirect allowlist equal to `redirect_urls` (matched strictly there too)."""

    async def deleting(self, db: AsyncSession, project: Project) -> None:
        """Delete the external objects first: if that fails, the project stays (no live orphan)."""


class NoLifecycle:
    """Builtin identity: a project lives in this database only."""

    async def provision(self, db: AsyncSession, project: Project) -> object | None:
        return None

    async def provisioned(
        self, db: AsyncSession, project: Project, provisioned: object | None, *, actor: Actor
    ) -> None:
        return None

    async def redirects_changing(self, db: AsyncSession, project: Project, redirect_urls: list[str]) -> None:
        return None

    async def deleting(self, db: AsyncSession, project: Project) -> None:
        return None
