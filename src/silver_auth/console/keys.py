"""Console pages of a project's API keys (create, rotate with a grace period, revoke) and signing keys
(the JWKS, rotation), calling the services of `keys/routes.py` and `signing/routes.py`.

A new secret key exists in clear only in the answer to the POST that made it (G16): that answer is a
page of its own, never a redirect, so the key travels in no URL, cookie or flash message, and no later
page can show it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.console.pages import PAGE_HANDLERS, PageError, frame, page_opt
from silver_auth.console.render import PREFIX, Req, html, page, see_other
from silver_auth.core import urls
from silver_auth.core.errors import InvalidInput, ProblemError
from silver_auth.keys import service as keys
from silver_auth.keys.routes import api_key_public
from silver_auth.keys.schemas import ApiKeyPublic
from silver_auth.keys.service import Environment, KeyKind, KeyService
from silver_auth.orgs import service as orgs
from silver_auth.orgs.guards import OrgAccess
from silver_auth.orgs.models import Role
from silver_auth.projects.routes import project_public
from silver_auth.projects.service import ENVIRONMENTS, get_project
from silver_auth.settings import Settings
from silver_auth.signing import service as signing
from silver_auth.signing.routes import signing_key_public

KINDS: tuple[KeyKind, ...] = ("secret", "publishable")
# The grace periods offered when rotating; the API takes any number of seconds up to seven days.
GRACE_CHOICES = (
    (0, "None: the old key stops working now"),
    (3600, "1 hour"),
    (86400, "1 day"),
    (7 * 86400, "7 days"),
)
DEFAULT_GRACE = 86400


@dataclass(frozen=True, slots=True)
class ShownOnce:
    """A key just made, for the one answer that shows it; `replaced` is the key a rotation replaced."""

    key: ApiKeyPublic
    raw: str
    replaced: ApiKeyPublic | None = None


async def _choice(request: Req, name: str, allowed: tuple[str, ...]) -> str:
    value = (await request.form()).get(name)
    if value not in allowed:
        raise InvalidInput(f"choose the {name}: one of {', '.join(allowed)}")
    return str(value)


async def _grace_seconds(request: Req) -> int:
    value = (await request.form()).get("grace_seconds")
    if not isinstance(value, str) or not value.isdigit() or len(value) > 8:
        raise InvalidInput("choose how long the old key keeps working")
    return int(value)


class KeyPages(Controller):
    path = PREFIX
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    async def _context(
        self, db: AsyncSession, console: ConsoleContext, org_access: OrgAccess, project_id: str
    ) -> dict[str, Any]:
        project = project_public(await get_project(db, project_id))
        shown = await frame(db, console)
        return shown.context(
            await orgs.get_org(db, project.org_id),
            title=f"{project.name}: API keys",
            section="keys",
            current_project=project,
            keys=[api_key_public(k) for k in await keys.list_keys(db, project_id)],
            kinds=KINDS,
            environments=ENVIRONMENTS,
            grace_choices=GRACE_CHOICES,
            default_grace=DEFAULT_GRACE,
            can_develop=org_access.role.at_least(Role.DEVELOPER),
            shown_once=None,
        )

    @get("/projects/{project_id:str}/keys", opt=page_opt(Role.VIEWER.value))
    async def list_keys(
        self,
        *,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        context = await self._context(db, console, org_access, project_id)
        return page(request, settings, "keys.html", **context)

    @post("/projects/{project_id:str}/keys", opt=page_opt(Role.DEVELOPER.value))
    async def create_key(
        self,
        *,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        key_service: NamedDependency[KeyService],
    ) -> Response[Any]:
        context = await self._context(db, console, org_access, project_id)
        try:
            kind: KeyKind = "secret" if await _choice(request, "kind", KINDS) == "secret" else "publishable"
            chosen = await _choice(request, "environment", ENVIRONMENTS)
            environment: Environment = "live" if chosen == "live" else "test"
            name = (await request.form()).get("name")
            issued = await key_service.create(
                await get_project(db, project_id),
                kind,
                environment,
                name=name if isinstance(name, str) and name.strip() else None,
                actor=console.actor,
            )
        except ProblemError as exc:
            raise PageError(exc.status, exc.detail, "keys.html", **context) from None
        created = api_key_public(issued.key)
        context["keys"] = [created, *context["keys"]]
        # The page itself, not a redirect: the key is in this answer only (no-store, like every page).
        return html("keys.html", 201, **{**context, "shown_once": ShownOnce(created, issued.raw)})

    @post("/keys/{key_id:str}/rotate", opt=page_opt(Role.DEVELOPER.value))
    async def rotate_key(
        self,
        *,
        key_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        key_service: NamedDependency[KeyService],
    ) -> Response[Any]:
        key = await keys.get_key(db, key_id)
        context = await self._context(db, console, org_access, key.project_id)
        try:
            issued, old = await key_service.rotate(
                key, grace_seconds=await _grace_seconds(request), actor=console.actor
            )
        except ProblemError as exc:
            raise PageError(exc.status, exc.detail, "keys.html", **context) from None
        shown = ShownOnce(api_key_public(issued.key), issued.raw, replaced=api_key_public(old))
        context["keys"] = [api_key_public(k) for k in await keys.list_keys(db, key.project_id)]
        return html("keys.html", 201, **{**context, "shown_once": shown})

    @post("/keys/{key_id:str}/revoke", opt=page_opt(Role.DEVELOPER.value))
    async def revoke_key(
        self,
        *,
        key_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        key_service: NamedDependency[KeyService],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        key = await key_service.revoke(await keys.get_key(db, key_id), actor=console.actor)
        return see_other(
            f"{PREFIX}/projects/{key.project_id}/keys",
            flash=f"Revoked {key.prefix}…: calls with it are refused from now on. "
            "Create a new key if your app still needs one.",
            settings=settings,
        )


class SigningKeyPages(Controller):
    path = f"{PREFIX}/projects/{{project_id:str}}/signing-keys"
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    @get("/", opt=page_opt(Role.VIEWER.value))
    async def list_signing_keys(
        self,
        *,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        project = project_public(await get_project(db, project_id))
        shown = await frame(db, console)
        published = signing.jwks(await signing.published_keys(db, project_id))
        context = shown.context(
            await orgs.get_org(db, project.org_id),
            title=f"{project.name}: signing keys",
            section="signing-keys",
            current_project=project,
            signing_keys=[signing_key_public(k) for k in await signing.all_keys(db, project_id)],
            jwks_url=urls.jwks(settings.auth_url, project_id),
            jwks_json=json.dumps(published, indent=2),
            can_rotate=org_access.role.at_least(Role.ADMIN),
        )
        return page(request, settings, "signing_keys.html", **context)

    @post("/rotate", opt=page_opt(Role.ADMIN.value))
    async def rotate_signing_key(
        self,
        *,
        project_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        project = await get_project(db, project_id)
        key = await signing.rotate(db, settings, project, actor=console.actor)
        return see_other(
            f"{PREFIX}/projects/{project_id}/signing-keys",
            flash=f"Rotated: new session tokens are signed with {key.id}. The previous key stays in the "
            "JWKS until the tokens it signed expire; verifiers that cache the JWKS pick the new key up "
            "on their next fetch.",
            settings=settings,
        )
