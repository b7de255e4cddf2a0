"""Console pages of projects: an org's project list (and creating one), and a project's settings: its
name, ids and URLs, allowed origins and redirect URLs (added and removed one at a time), deletion.

Each form calls the service the JSON route of `projects/routes.py` calls, under the same role rule.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.console.pages import PAGE_HANDLERS, PageError, frame, page_opt
from silver_auth.console.render import PREFIX, Req, page, see_other
from silver_auth.core import urls
from silver_auth.core.errors import InvalidInput, ProblemError
from silver_auth.orgs import service as orgs
from silver_auth.orgs.guards import OrgAccess
from silver_auth.orgs.models import Role
from silver_auth.projects import service
from silver_auth.projects.models import Project
from silver_auth.projects.routes import project_public
from silver_auth.projects.service import ProjectChanges, ProjectService
from silver_auth.settings import Settings


@dataclass(frozen=True, slots=True)
class EnvironmentUrls:
    """What a customer's app points at in one environment."""

    environment: str
    sign_in: str
    sign_up: str
    client_config: str
    issuer: str
    """The environment's OpenID Provider issuer (discovery below it at /.well-known/openid-configuration)."""


def environment_urls(settings: Settings, project_id: str) -> list[EnvironmentUrls]:
    client_config = f"{settings.auth_url.rstrip('/')}/v1/client-config"
    return [
        EnvironmentUrls(
            environment,
            f"{urls.hosted_pages(settings.auth_url, project_id, environment)}/sign-in",
            f"{urls.hosted_pages(settings.auth_url, project_id, environment)}/sign-up",
            client_config,
            urls.hosted_pages(settings.auth_url, project_id, environment),
        )
        for environment in service.ENVIRONMENTS
    ]


async def form_field(request: Req, name: str) -> str:
    """A text field of the posted form; missing or not text: refused as the API refuses a bad body."""
    value = (await request.form()).get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"fill in the {name.replace('_', ' ')} field")
    return value


class ProjectPages(Controller):
    path = PREFIX
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    async def _list_context(
        self, db: AsyncSession, console: ConsoleContext, org_access: OrgAccess
    ) -> dict[str, Any]:
        org = await orgs.get_org(db, org_access.org_id)
        shown = await frame(db, console)
        return shown.context(
            org,
            title="Projects",
            section="projects",
            projects=[project_public(p) for p in await service.list_projects(db, org.id)],
            can_create=org_access.role.at_least(Role.ADMIN),
        )

    @get("/orgs/{org_id:str}/projects", opt=page_opt(Role.VIEWER.value))
    async def list_projects(
        self,
        *,
        org_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        return page(request, settings, "projects.html", **await self._list_context(db, console, org_access))

    @post("/orgs/{org_id:str}/projects", opt=page_opt(Role.ADMIN.value))
    async def create_project(
        self,
        *,
        org_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        context = await self._list_context(db, console, org_access)
        try:
            project = await projects.create(org_id, await form_field(request, "name"), actor=console.actor)
        except ProblemError as exc:
            raise PageError(exc.status, exc.detail, "projects.html", **context) from None
        return see_other(
            f"{PREFIX}/projects/{project.id}",
            flash=f"Created project {project.name}. Add your app's origins and redirect URLs, "
            "then create an API key.",
            settings=settings,
        )

    async def _settings_context(
        self,
        db: AsyncSession,
        console: ConsoleContext,
        org_access: OrgAccess,
        settings: Settings,
        project: Project,
    ) -> dict[str, Any]:
        shown = await frame(db, console)
        public = project_public(project)
        return shown.context(
            await orgs.get_org(db, project.org_id),
            title=f"{public.name}: settings",
            section="settings",
            current_project=public,
            project=public,
            environments=environment_urls(settings, project.id),
            jwks_url=urls.jwks(settings.auth_url, project.id),
            can_manage=org_access.role.at_least(Role.ADMIN),
        )

    @get("/projects/{project_id:str}", opt=page_opt(Role.VIEWER.value))
    async def project_settings(
        self,
        *,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        project = await service.get_project(db, project_id)
        context = await self._settings_context(db, console, org_access, settings, project)
        return page(request, settings, "project.html", **context)

    @post("/projects/{project_id:str}/name", opt=page_opt(Role.ADMIN.value))
    async def rename(
        self,
        *,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        project = await service.get_project(db, project_id)
        context = await self._settings_context(db, console, org_access, settings, project)
        try:
            name = await form_field(request, "name")
            await projects.update(project, ProjectChanges(name=name), actor=console.actor)
        except ProblemError as exc:
            raise PageError(exc.status, exc.detail, "project.html", **context) from None
        return see_other(
            f"{PREFIX}/projects/{project_id}",
            flash=f"Renamed the project to {project.name}.",
            settings=settings,
        )

    async def _change(
        self,
        request: Req,
        field: str,
        edit: Callable[[Project, str], Awaitable[str]],
        *,
        project_id: str,
        console: ConsoleContext,
        org_access: OrgAccess,
        db: AsyncSession,
        settings: Settings,
    ) -> Response[Any]:
        """One list edit: `edit(project, value)` calls the service and answers the flash message; a
        refusal (an origin that is not one, a URL not listed) shows the settings page with its reason."""
        project = await service.get_project(db, project_id)
        context = await self._settings_context(db, console, org_access, settings, project)
        try:
            flash = await edit(project, (await form_field(request, field)).strip())
        except ProblemError as exc:
            raise PageError(exc.status, exc.detail, "project.html", **context) from None
        return see_other(f"{PREFIX}/projects/{project_id}", flash=flash, settings=settings)

    @post("/projects/{project_id:str}/origins", opt=page_opt(Role.ADMIN.value))
    async def add_origin(
        self,
        *,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        async def edit(project: Project, origin: str) -> str:
            before = list(project.allowed_origins)
            await projects.add_origin(project, origin, actor=console.actor)
            if project.allowed_origins == before:
                return f"{origin} was already allowed; nothing changed."
            return f"Allowed {project.allowed_origins[-1]}. Browsers on it may now call the API."

        return await self._change(
            request,
            "origin",
            edit,
            project_id=project_id,
            console=console,
            org_access=org_access,
            db=db,
            settings=settings,
        )

    @post("/projects/{project_id:str}/origins/remove", opt=page_opt(Role.ADMIN.value))
    async def remove_origin(
        self,
        *,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        async def edit(project: Project, origin: str) -> str:
            await projects.remove_origin(project, origin, actor=console.actor)
            return f"Removed {origin}. Browsers on it can no longer call the API."

        return await self._change(
            request,
            "origin",
            edit,
            project_id=project_id,
            console=console,
            org_access=org_access,
            db=db,
            settings=settings,
        )

    @post("/projects/{project_id:str}/redirect-urls", opt=page_opt(Role.ADMIN.value))
    async def add_redirect_url(
        self,
        *,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        async def edit(project: Project, url: str) -> str:
            before = list(project.redirect_urls)
            await projects.add_redirect_url(project, url, actor=console.actor)
            if project.redirect_urls == before:
                return f"{url} was already registered; nothing changed."
            return f"Registered {url}. Sign-ins may now return to it."

        return await self._change(
            request,
            "url",
            edit,
            project_id=project_id,
            console=console,
            org_access=org_access,
            db=db,
            settings=settings,
        )

    @post("/projects/{project_id:str}/redirect-urls/remove", opt=page_opt(Role.ADMIN.value))
    async def remove_redirect_url(
        self,
        *,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        async def edit(project: Project, url: str) -> str:
            await projects.remove_redirect_url(project, url, actor=console.actor)
            return f"Removed {url}. Sign-ins can no longer return to it."

        return await self._change(
            request,
            "url",
            edit,
            project_id=project_id,
            console=console,
            org_access=org_access,
            db=db,
            settings=settings,
        )

    @post("/projects/{project_id:str}/delete", opt=page_opt(Role.ADMIN.value))
    async def delete_project(
        self,
        *,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        project = await service.get_project(db, project_id)
        context = await self._settings_context(db, console, org_access, settings, project)
        name, org_id = project.name, project.org_id
        try:
            # Typing the name guards against deleting the wrong project from a stale tab.
            if (await form_field(request, "confirm_name")).strip() != name:
                raise InvalidInput(f"type the project's name, {name}, to delete it")
            await projects.delete(project, actor=console.actor)
        except ProblemError as exc:
            raise PageError(exc.status, exc.detail, "project.html", **context) from None
        return see_other(
            f"{PREFIX}/orgs/{org_id}/projects",
            flash=f"Deleted project {name} with its end-users and keys.",
            settings=settings,
        )
