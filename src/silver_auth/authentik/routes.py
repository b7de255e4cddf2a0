"""A project's Authentik application in the console: its public OIDC facts, and secret rotation."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.authentik import applications as service
from silver_auth.authentik.models import AuthentikApplication
from silver_auth.authentik.schemas import ProjectIdentityPublic
from silver_auth.orgs.guards import ADMIN, VIEWER
from silver_auth.projects.service import get_project
from silver_auth.runtime import Runtime
from silver_auth.settings import Settings
from silver_auth.web.openapi import problem

AUTHENTIK_DOWN = problem("Authentik did not answer (`identity-provider-unavailable`)")
"""The 503 of every route that calls Authentik while it answers."""


def identity_public(settings: Settings, row: AuthentikApplication) -> ProjectIdentityPublic:
    return ProjectIdentityPublic(
        project_id=row.project_id,
        application_slug=row.application_slug,
        client_id=row.client_id,
        issuer=service.authentik_issuer(settings, row.application_slug),
        created_at=row.created_at,
        secret_rotated_at=row.secret_rotated_at,
    )


class ProjectIdentityController(Controller):
    path = "/console/api/projects/{project_id:str}/identity"
    tags = ["console: projects"]

    @get("/", opt=VIEWER, summary="The project's Authentik application (never its client secret)")
    async def get_identity(
        self, project_id: FromPath[str], db: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]
    ) -> ProjectIdentityPublic:
        row = await service.get_application(db, runtime.applications, project_id)
        return identity_public(runtime.settings, row)

    @post(
        "/rotate-secret",
        opt=ADMIN,
        status_code=200,
        summary="Rotate the Authentik client secret (G9, G19); the new one is sealed, never shown",
        responses={503: AUTHENTIK_DOWN},
    )
    async def rotate_secret(
        self,
        project_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> ProjectIdentityPublic:
        project = await get_project(db, project_id)
        row = await service.rotate_secret(db, runtime.applications, project, actor=console.actor)
        return identity_public(runtime.settings, row)
