"""A project's look on its hosted pages: the name and logo they show, and a small stylesheet of CSS
custom properties (the pages' CSP allows no inline style) that hosted.css reads for buttons, links,
focus rings and the theme. Logo and stylesheet URLs carry a hash of their content: cached for good,
and an old URL answers 404 once the branding changes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core import urls
from silver_auth.core.errors import NotFound
from silver_auth.projects import branding
from silver_auth.projects.models import Project, ProjectBranding

ASSETS = urls.HOSTED_ASSETS
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class HostedBranding:
    """What the hosted templates show of a project's branding."""

    name: str
    theme: str = "auto"
    logo_url: str | None = None
    stylesheet_url: str | None = None


def stylesheet(row: ProjectBranding) -> str | None:
    """The project's custom properties; None when it keeps the default colour."""
    colour = row.primary_colour
    if colour is None:
        return None
    return (
        ":root {\n"
        f"  --brand: {colour};\n"
        f"  --brand-text: {branding.text_on(colour)};\n"
        f"  --brand-link-light: {branding.readable_on(colour, branding.LIGHT_SURFACE)};\n"
        f"  --brand-link-dark: {branding.readable_on(colour, branding.DARK_SURFACE)};\n"
        "}\n"
    )


def _stylesheet_name(project_id: str, css: str) -> str:
    return f"{project_id}-{hashlib.sha256(css.encode()).hexdigest()[:16]}.css"


def hosted_branding(project: Project, row: ProjectBranding | None) -> HostedBranding:
    if row is None:
        return HostedBranding(project.name)
    logo = branding.logo_name(row)
    css = stylesheet(row)
    return HostedBranding(
        name=row.display_name or project.name,
        theme=row.theme,
        logo_url=urls.hosted_logo_path(logo) if logo else None,
        stylesheet_url=f"{ASSETS}/branding/{_stylesheet_name(project.id, css)}" if css else None,
    )


@get(f"{ASSETS}/logos/{{name:str}}", include_in_schema=False)
async def logo(name: FromPath[str], db: NamedDependency[AsyncSession]) -> Response[bytes]:
    """A project's logo; the default CSP (`default-src 'none'`) and nosniff come with every answer."""
    found = await branding.logo_named(db, name)
    if found is None:
        raise NotFound("no such logo")
    data, media_type = found
    return Response(data, media_type=media_type, headers={"Cache-Control": IMMUTABLE})


@get(f"{ASSETS}/branding/{{name:str}}", include_in_schema=False)
async def branding_stylesheet(name: FromPath[str], db: NamedDependency[AsyncSession]) -> Response[str]:
    project_id, _, _ = name.partition("-")
    row = await branding.branding_of(db, project_id) if len(project_id) <= 40 else None
    css = stylesheet(row) if row is not None else None
    if css is None or _stylesheet_name(project_id, css) != name:
        raise NotFound("no such stylesheet")
    return Response(css, media_type="text/css", headers={"Cache-Control": IMMUTABLE})
