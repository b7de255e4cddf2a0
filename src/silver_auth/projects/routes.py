"""Projects in the console, and the public client config a frontend reads with its publishable key."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.types import Scope
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.api.deps import ConsoleContext, runtime_of, scope_header
from silver_auth.api.guards import ADMIN, VIEWER
from silver_auth.api.hot import hot_answer
from silver_auth.api.state import Runtime
from silver_auth.core.errors import NotFound
from silver_auth.db.session import on_commit
from silver_auth.keys.verifier import KeyPrincipal
from silver_auth.projects import service
from silver_auth.projects.models import Project
from silver_auth.projects.schemas import (
    ClientConfig,
    ClientProject,
    ClientUrls,
    ProjectCreate,
    ProjectPage,
    ProjectPublic,
    ProjectUpdate,
)


def project_public(project: Project) -> ProjectPublic:
    return ProjectPublic(
        id=project.id,
        org_id=project.org_id,
        name=project.name,
        environments=list(service.ENVIRONMENTS),
        allowed_origins=project.allowed_origins,
        redirect_urls=project.redirect_urls,
        sign_in_methods=project.sign_in_methods,
        created_at=project.created_at,
        updated_at=project.updated_at,
    )


class ProjectController(Controller):
    path = "/console/api"
    tags = ["console: projects"]

    @get("/orgs/{org_id:str}/projects", opt=VIEWER, summary="Projects of an org")
    async def list_projects(self, org_id: FromPath[str], db: NamedDependency[AsyncSession]) -> ProjectPage:
        return ProjectPage(items=[project_public(p) for p in await service.list_projects(db, org_id)])

    @post("/orgs/{org_id:str}/projects", opt=ADMIN, summary="Create a project (within the plan's quota)")
    async def create_project(
        self,
        org_id: FromPath[str],
        data: JSONBody[ProjectCreate],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> ProjectPublic:
        return project_public(
            await service.create_project(
                db, org_id, data.name, actor=console.actor, identity=runtime.project_identity
            )
        )

    @get("/projects/{project_id:str}", opt=VIEWER, summary="A project")
    async def get_project(
        self, project_id: FromPath[str], db: NamedDependency[AsyncSession]
    ) -> ProjectPublic:
        return project_public(await service.get_project(db, project_id))

    @patch(
        "/projects/{project_id:str}",
        opt=ADMIN,
        summary="Rename a project or change its origins, redirects, methods",
    )
    async def update_project(
        self,
        project_id: FromPath[str],
        data: JSONBody[ProjectUpdate],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> ProjectPublic:
        project = await service.update_project(
            db,
            await service.get_project(db, project_id),
            name=data.name,
            allowed_origins=data.allowed_origins,
            redirect_urls=data.redirect_urls,
            sign_in_methods=list(data.sign_in_methods) if data.sign_in_methods is not None else None,
            actor=console.actor,
            identity=runtime.project_identity,
        )
        on_commit(db, partial(runtime.keys.forget_project, project_id))
        return project_public(project)

    @delete("/projects/{project_id:str}", opt=ADMIN, summary="Delete a project and its keys")
    async def delete_project(
        self,
        project_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> None:
        await service.delete_project(
            db,
            await service.get_project(db, project_id),
            actor=console.actor,
            identity=runtime.project_identity,
        )
        on_commit(db, partial(runtime.keys.forget_project, project_id))


def client_config_answer(principal: KeyPrincipal, auth_url: str) -> ClientConfig:
    base = auth_url.rstrip("/")
    # The environment is a path segment of the hosted pages: a test key never lands on live users.
    pages = f"{base}/p/{principal.project_id}/{principal.environment}"
    return ClientConfig(
        project=ClientProject(id=principal.project_id, name=principal.project_name),
        environment=principal.environment,
        sign_in_methods=list(principal.sign_in_methods),
        urls=ClientUrls(
            sign_in=f"{pages}/sign-in",
            sign_up=f"{pages}/sign-up",
            jwks=f"{base}/v1/projects/{principal.project_id}/jwks.json",
        ),
    )


def _client_config_hot(runtime: Runtime, scope: Scope) -> ClientConfig | None:
    raw = scope_header(scope, b"x-publishable-key")
    principal = None if raw is None else runtime.keys.cached(raw, "publishable")
    return None if principal is None else client_config_answer(principal, runtime.settings.auth_url)


@get(
    "/v1/client-config",
    tags=["public"],
    summary="Public project config for a frontend (publishable key)",
    middleware=[hot_answer(_client_config_hot)],
)
async def client_config(
    request: Request[Any, Any, Any],
    header_key: Annotated[str | None, HeaderParameter(name="X-Publishable-Key", required=False)] = None,
    publishable_key: Annotated[str | None, QueryParameter(required=False, max_length=100)] = None,
) -> ClientConfig:
    runtime = runtime_of(request)  # not a dependency: DI costs this hot path more than the lookup
    principal = await runtime.keys.verify(header_key or publishable_key or "", "publishable")
    if principal is None:
        raise NotFound("no project for this publishable key")
    return client_config_answer(principal, runtime.settings.auth_url)
