"""Console page of a project's hosted-page branding: display name, primary colour, theme and logo
(viewers see it, admins change it: the rule of the project settings PATCH)."""

from __future__ import annotations

import base64
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict, UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.console.pages import PAGE_HANDLERS, PageError, frame, page_opt
from silver_auth.console.render import PREFIX, Req, page, see_other
from silver_auth.core import urls
from silver_auth.core.errors import ProblemError
from silver_auth.hosted.branding import hosted_branding
from silver_auth.orgs import service as orgs
from silver_auth.orgs.guards import OrgAccess
from silver_auth.orgs.models import Role
from silver_auth.projects import branding
from silver_auth.projects.models import Project, ProjectBranding
from silver_auth.projects.service import get_project
from silver_auth.settings import Settings

DEFAULT_COLOUR = "#1f5fbf"
"""hosted.css's own button colour, what the colour picker shows while none is chosen."""
UPLOAD_LIMIT = 1024 * 1024
"""The body limit of the branding form: room for a logo past branding.MAX_LOGO_BYTES, so the page
can say how large it is, instead of a bare 413."""
TITLE = "Hosted-page branding"


def _field(form: FormMultiDict, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def chosen_colour(form: FormMultiDict, stored: str | None) -> str:
    """The colour the form asks for. It has a picker and a text field for one value: without the
    script that keeps them equal, the one the user changed wins."""
    typed, picked = _field(form, "primary_colour").strip(), _field(form, "primary_colour_picker")
    if typed.lower() == (stored or "") and picked and picked.lower() != (stored or DEFAULT_COLOUR):
        return picked
    return typed


class BrandingPages(Controller):
    path = f"{PREFIX}/projects/{{project_id:str}}/branding"
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    async def _context(
        self,
        db: AsyncSession,
        console: ConsoleContext,
        org_access: OrgAccess,
        settings: Settings,
        project: Project,
        row: ProjectBranding | None,
    ) -> dict[str, Any]:
        shown = await frame(db, console)
        looks = hosted_branding(project, row)
        logo = None
        if row is not None and row.logo is not None and row.logo_type is not None:
            # A data: URL: the console's CSP allows images of its own host only, and the served URL
            # lives on the auth host.
            encoded = base64.b64encode(row.logo).decode("ascii")
            logo = f"data:{branding.MEDIA_TYPES[row.logo_type]};base64,{encoded}"
        return shown.context(
            await orgs.get_org(db, project.org_id),
            title=TITLE,
            section="settings",
            current_project=project,
            looks=looks,
            colour=(row.primary_colour if row else None) or "",
            picker_colour=(row.primary_colour if row else None) or DEFAULT_COLOUR,
            theme=row.theme if row else "auto",
            display_name=(row.display_name if row else None) or "",
            themes=branding.THEMES,
            logo_preview=logo,
            logo_url=f"{settings.auth_url}{looks.logo_url}" if looks.logo_url else None,
            sign_in_url=f"{urls.hosted_pages(settings.auth_url, project.id, 'test')}/sign-in",
            max_logo_kib=branding.MAX_LOGO_BYTES // 1024,
            max_logo_side=branding.MAX_LOGO_SIDE,
            can_manage=org_access.role.at_least(Role.ADMIN),
        )

    @get("/", opt=page_opt(Role.VIEWER.value))
    async def show(
        self,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        project = await get_project(db, project_id)
        row = await branding.branding_of(db, project.id, with_logo=True)
        context = await self._context(db, console, org_access, settings, project, row)
        return page(request, settings, "branding.html", **context)

    @post("/", opt=page_opt(Role.ADMIN.value), request_max_body_size=UPLOAD_LIMIT)
    async def save(
        self,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        project = await get_project(db, project_id)
        row = await branding.branding_of(db, project.id, with_logo=True)  # the refusal's preview
        form = await request.form()
        upload = form.get("logo")
        changes = branding.BrandingChanges(
            display_name=_field(form, "display_name"),
            primary_colour=chosen_colour(form, row.primary_colour if row else None),
            theme=_field(form, "theme") or "auto",
        )
        # What the refusal shows again: read before anything changes (a refusal rolls the row back).
        refused_context = await self._context(db, console, org_access, settings, project, row)
        try:
            changed = await branding.update_branding(db, project, changes, actor=console.actor)
            if isinstance(upload, UploadFile) and upload.filename:
                await branding.set_logo(db, project, await upload.read(), actor=console.actor)
                changed["logo"] = True
        except ProblemError as exc:
            refused_context.update(
                display_name=changes.display_name,
                colour=changes.primary_colour,
                theme=changes.theme if changes.theme in branding.THEMES else "auto",
            )
            raise PageError(exc.status, exc.detail, "branding.html", **refused_context) from None
        flash = (
            "Branding saved: the hosted pages show it from now on. Open the sign-in page to check it."
            if changed
            else "Nothing changed: the branding was already so."
        )
        return see_other(f"{PREFIX}/projects/{project.id}/branding", flash=flash, settings=settings)

    @post("/logo/remove", opt=page_opt(Role.ADMIN.value))
    async def remove_logo(
        self,
        project_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        project = await get_project(db, project_id)
        removed = await branding.remove_logo(db, project, actor=console.actor)
        flash = (
            "Logo removed: the hosted pages show the name alone. Upload another logo any time."
            if removed
            else "There was no logo to remove."
        )
        return see_other(f"{PREFIX}/projects/{project.id}/branding", flash=flash, settings=settings)
