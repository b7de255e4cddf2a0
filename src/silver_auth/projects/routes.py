"""Projects in the console, and the public client config a frontend reads with its publishable key."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.types import Scope
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.core import urls
from silver_auth.core.errors import NotFound
from silver_auth.db.session import transaction
from silver_auth.keys.guards import remembered
from silver_auth.keys.verifier import KeyPrincipal
from silver_auth.orgs.guards import ADMIN, VIEWER, resolves_org
from silver_auth.projects import branding, service
from silver_auth.projects.models import Project, ProjectBranding
from silver_auth.projects.schemas import (
    BrandingPublic,
    BrandingUpdate,
    ClientConfig,
    ClientProject,
    ClientUrls,
    OriginAdd,
    ProjectCreate,
    ProjectPage,
    ProjectPublic,
    ProjectUpdate,
    RedirectUrlAdd,
)
from silver_auth.projects.service import ProjectService
from silver_auth.runtime import runtime_of, scope_runtime
from silver_auth.settings import Settings
from silver_auth.web.cors import allow_origins
from silver_auth.web.deps import scope_header, set_actor
from silver_auth.web.hot import hot_answer
from silver_auth.web.openapi import (
    OVER_QUOTA,
    PUBLISHABLE_QUERY_SCHEME,
    PUBLISHABLE_SCHEME,
    AccessRule,
    documents_access,
    problem,
)

PUBLISHABLE_KEY_ACCESS = "publishable-key"
documents_access(
    PUBLISHABLE_KEY_ACCESS,
    AccessRule(
        security=((PUBLISHABLE_SCHEME,), (PUBLISHABLE_QUERY_SCHEME,)),
        errors=((404, "no project for this publishable key: unknown, revoked or malformed (`not-found`)"),),
    ),
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


def branding_public(project_id: str, row: ProjectBranding | None, auth_url: str) -> BrandingPublic:
    logo = branding.logo_name(row) if row is not None else None
    colour = row.primary_colour if row is not None else None
    return BrandingPublic(
        project_id=project_id,
        display_name=row.display_name if row is not None else None,
        primary_colour=colour,
        button_text_colour=branding.text_on(colour) if colour else None,
        theme=row.theme if row is not None else "auto",
        logo_url=auth_url.rstrip("/") + urls.hosted_logo_path(logo) if logo else None,
    )


LIST_CHANGED = problem("the redirect URLs changed meanwhile: read them again and retry (`conflict`)")


class ProjectController(Controller):
    path = "/console/api"
    tags = ["console: projects"]

    @get("/orgs/{org_id:str}/projects", opt=VIEWER, summary="Projects of an org")
    async def list_projects(self, org_id: FromPath[str], db: NamedDependency[AsyncSession]) -> ProjectPage:
        return ProjectPage(items=[project_public(p) for p in await service.list_projects(db, org_id)])

    @post(
        "/orgs/{org_id:str}/projects",
        opt=ADMIN,
        summary="Create a project (within the plan's quota)",
        responses={403: OVER_QUOTA},
    )
    async def create_project(
        self,
        org_id: FromPath[str],
        data: JSONBody[ProjectCreate],
        console: NamedDependency[ConsoleContext],
        projects: NamedDependency[ProjectService],
    ) -> ProjectPublic:
        return project_public(await projects.create(org_id, data.name, actor=console.actor))

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
        projects: NamedDependency[ProjectService],
    ) -> ProjectPublic:
        changes = service.ProjectChanges(
            name=data.name,
            allowed_origins=data.allowed_origins,
            redirect_urls=data.redirect_urls,
            sign_in_methods=list(data.sign_in_methods) if data.sign_in_methods is not None else None,
        )
        project = await projects.update(
            await service.get_project(db, project_id), changes, actor=console.actor
        )
        return project_public(project)

    @get("/projects/{project_id:str}/branding", opt=VIEWER, summary="A project's hosted-page branding")
    async def get_branding(
        self,
        project_id: FromPath[str],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> BrandingPublic:
        project = await service.get_project(db, project_id)
        return branding_public(project.id, await branding.branding_of(db, project.id), settings.auth_url)

    @patch(
        "/projects/{project_id:str}/branding",
        opt=ADMIN,
        summary="Change the hosted pages' display name, primary colour or theme",
        description="Audited project.branding_updated. The logo is uploaded on the console page "
        "/console/projects/{project_id}/branding.",
    )
    async def update_branding(
        self,
        project_id: FromPath[str],
        data: JSONBody[BrandingUpdate],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> BrandingPublic:
        project = await service.get_project(db, project_id)
        changes = branding.BrandingChanges(
            display_name=data.display_name, primary_colour=data.primary_colour, theme=data.theme
        )
        await branding.update_branding(db, project, changes, actor=console.actor)
        return branding_public(project.id, await branding.branding_of(db, project.id), settings.auth_url)

    @post(
        "/projects/{project_id:str}/redirect-urls",
        opt=ADMIN,
        status_code=200,
        summary="Register one redirect URL, keeping the others",
        description="Answers the project. A URL already registered changes nothing. Checked like the "
        "URLs of a PATCH; audited project.updated. 409 if the list changed meanwhile.",
        responses={409: LIST_CHANGED},
    )
    async def add_redirect_url(
        self,
        project_id: FromPath[str],
        data: JSONBody[RedirectUrlAdd],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
    ) -> ProjectPublic:
        project = await service.get_project(db, project_id)
        return project_public(await projects.add_redirect_url(project, data.url, actor=console.actor))

    @delete(
        "/projects/{project_id:str}/redirect-urls",
        opt=ADMIN,
        status_code=200,
        summary="Unregister one redirect URL (in the query, percent-encoded), keeping the others",
        description="Answers the project; 404 if the URL is not registered exactly so. Audited "
        "project.updated. 409 if the list changed meanwhile.",
        responses={409: LIST_CHANGED},
    )
    async def remove_redirect_url(
        self,
        project_id: FromPath[str],
        url: Annotated[str, QueryParameter(min_length=1, max_length=2048)],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
    ) -> ProjectPublic:
        project = await service.get_project(db, project_id)
        return project_public(await projects.remove_redirect_url(project, url, actor=console.actor))

    @post(
        "/projects/{project_id:str}/origins",
        opt=ADMIN,
        status_code=200,
        summary="Allow one browser origin, keeping the others",
        description="Answers the project. An origin already allowed changes nothing. Checked like the "
        "origins of a PATCH; audited project.updated. 409 if the list changed meanwhile.",
        responses={409: LIST_CHANGED},
    )
    async def add_origin(
        self,
        project_id: FromPath[str],
        data: JSONBody[OriginAdd],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
    ) -> ProjectPublic:
        project = await service.get_project(db, project_id)
        return project_public(await projects.add_origin(project, data.origin, actor=console.actor))

    @delete(
        "/projects/{project_id:str}/origins",
        opt=ADMIN,
        status_code=200,
        summary="Stop allowing one origin (in the query, percent-encoded), keeping the others",
        description="Answers the project; 404 if the origin is not allowed exactly so. Audited "
        "project.updated. 409 if the list changed meanwhile.",
        responses={409: LIST_CHANGED},
    )
    async def remove_origin(
        self,
        project_id: FromPath[str],
        origin: Annotated[str, QueryParameter(min_length=1, max_length=2048)],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
    ) -> ProjectPublic:
        project = await service.get_project(db, project_id)
        return project_public(await projects.remove_origin(project, origin, actor=console.actor))

    @delete("/projects/{project_id:str}", opt=ADMIN, summary="Delete a project and its keys")
    async def delete_project(
        self,
        project_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
    ) -> None:
        await projects.delete(await service.get_project(db, project_id), actor=console.actor)


resolves_org("project_id", service.org_of_project)


def client_config_answer(principal: KeyPrincipal, auth_url: str) -> ClientConfig:
    # The environment is a path segment of the hosted pages: a test key never lands on live users.
    pages = urls.hosted_pages(auth_url, principal.project_id, principal.environment)
    return ClientConfig(
        project=ClientProject(id=principal.project_id, name=principal.project_name),
        environment=principal.environment,
        sign_in_methods=list(principal.sign_in_methods),
        urls=ClientUrls(
            sign_in=f"{pages}/sign-in",
            sign_up=f"{pages}/sign-up",
            jwks=urls.jwks(auth_url, principal.project_id),
        ),
    )


def _client_config_hot(scope: Scope) -> ClientConfig | None:
    runtime = scope_runtime(scope)
    principal = remembered(scope, "publishable")
    if principal is None:
        raw = scope_header(scope, b"x-publishable-key")
        principal = None if raw is None else runtime.keys.cached(raw, "publishable")
    if principal is None:
        return None
    set_actor(scope, principal.key_id)
    allow_origins(scope, principal.allowed_origins)
    return client_config_answer(principal, runtime.settings.auth_url)


async def preflight_allows(scope: Scope, origin: str) -> bool:
    """The CORS preflight policy of the publishable-key routes (web.cors). With the key in the query, the
    origin must be one of its project's; without (a page sending X-Publishable-Key, which a preflight
    does not carry), one of some project's: the answer to the request itself then allows only the
    key's project's origins, and the exchange, refresh and sign-out refuse any other origin before they
    act."""
    runtime = scope_runtime(scope)
    keys = parse_qs(scope["query_string"].decode("latin-1")).get("publishable_key")
    if keys:
        principal = await runtime.keys.verify(keys[0], "publishable")
        return principal is not None and origin in principal.allowed_origins
    async with transaction(runtime.sessionmaker) as db:
        return await service.any_project_allows(db, origin)


@get(
    "/v1/client-config",
    tags=["public"],
    summary="Public project config for a frontend (publishable key)",
    opt={"access": PUBLISHABLE_KEY_ACCESS},
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
    set_actor(request.scope, principal.key_id)
    allow_origins(request.scope, principal.allowed_origins)
    return client_config_answer(principal, runtime.settings.auth_url)
