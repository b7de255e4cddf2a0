"""Projects: creation within plan quotas, allowed origins and redirect URLs checked on write."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

from sqlalchemy import String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.errors import Conflict, InvalidInput, NotFound
from silver_auth.core.ids import new_id
from silver_auth.core.text import clean_name, has_control_characters
from silver_auth.db.session import on_commit
from silver_auth.keys.cache import KeyCache
from silver_auth.orgs.models import Org
from silver_auth.plans.service import check_quota, plan_for, projects_used
from silver_auth.projects.lifecycle import ProjectLifecycle
from silver_auth.projects.models import Project
from silver_auth.webhooks.events import EventType
from silver_auth.webhooks.outbox import emit

SIGN_IN_METHODS = ("password",)
ENVIRONMENTS = ("test", "live")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
# RFC 8252 7.1: an app's own scheme is a domain name it controls, reversed (`com.example.app`). Every
# other scheme is refused, not only the dangerous ones: ftp:, file:, ws:, javascript:, data:, mailto:…
APP_SCHEME = re.compile(r"[a-z][a-z0-9-]*(\.[a-z0-9-]+)+")
MAX_URLS = 50
DEFAULT_PORTS = {"https": 443, "http": 80}
HOST_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


def _is_loopback(host: str | None) -> bool:
    return host is not None and (host in LOOPBACK_HOSTS or host.endswith(".localhost"))


def clean_origin(value: str) -> str:
    """An exact origin: https (http only for loopback), host, optional port; no path, query or fragment."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise InvalidInput(f"{value!r} is not an origin") from None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/"):
        raise InvalidInput(f"{value!r} is not an origin (scheme://host[:port])")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInput(f"{value!r} is not an origin (scheme://host[:port])")
    if "*" in value:
        raise InvalidInput("wildcards are not allowed: origins match exactly")
    host = parts.hostname
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    elif not set(host) <= HOST_CHARACTERS:
        raise InvalidInput(f"{value!r}: the host has characters a browser never sends (use xn-- for IDN)")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InvalidInput(f"{value!r}: plain http is only allowed for localhost")
    # Browsers leave the default port out of Origin; keeping it would make the entry never match.
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS[parts.scheme] else "")


def clean_redirect_url(value: str) -> str:
    """An absolute URL matched exactly later: https, http on loopback, or an app's own reverse-DNS
    scheme (`com.example.app:/callback`)."""
    value = value.strip()
    if has_control_characters(value) or any(c.isspace() for c in value):
        raise InvalidInput(f"{value!r}: redirect URLs have no spaces or control characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a URL") from None
    if not parts.scheme or "#" in value or parts.username or parts.password:  # "#" alone too
        raise InvalidInput(f"{value!r}: redirect URLs are absolute, without fragment or credentials")
    web = parts.scheme in DEFAULT_PORTS
    if not web and not APP_SCHEME.fullmatch(parts.scheme):
        raise InvalidInput(
            f"{value!r}: the {parts.scheme}: scheme is not allowed: use https (http on localhost) or an "
            "app's reverse-DNS scheme such as com.example.app:/callback (RFC 8252 7.1)"
        )
    if not web and not (parts.netloc or parts.path.startswith("/")):
        # `app.example.com:8443/cb` (https:// forgotten) parses as the scheme `app.example.com`.
        raise InvalidInput(f"{value!r}: an app-scheme redirect URL has a path: com.example.app:/callback")
    if web and not parts.hostname:
        raise InvalidInput(f"{value!r} has no host")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InvalidInput(f"{value!r}: plain http is only allowed for localhost")
    if "*" in value:
        raise InvalidInput("wildcards are not allowed: redirect URLs match exactly")
    return value


def redirect_origin(redirect_url: str) -> str:
    """The origin of a registered redirect URL: `scheme://host[:port]` as a browser sends it in `Origin`
    (lower case, default port left out); for an app scheme, which has no web origin, the scheme and its
    colon (`com.example.app:`)."""
    parts = urlsplit(redirect_url)
    if parts.scheme not in DEFAULT_PORTS:
        return f"{parts.scheme}:"
    netloc = parts.netloc.lower()
    default = f":{DEFAULT_PORTS[parts.scheme]}"
    return f"{parts.scheme}://{netloc.removesuffix(default)}"


def _clean_list(values: list[str], cleaner: Callable[[str], str], what: str) -> list[str]:
    if len(values) > MAX_URLS:
        raise InvalidInput(f"at most {MAX_URLS} {what}")
    cleaned: list[str] = []
    for value in values:
        item = cleaner(value)
        if item not in cleaned:
            cleaned.append(item)
    return cleaned


def clean_sign_in_methods(methods: list[str]) -> list[str]:
    unknown = sorted(set(methods) - set(SIGN_IN_METHODS))
    if unknown or not methods:
        raise InvalidInput(f"sign_in_methods must be a non-empty subset of {list(SIGN_IN_METHODS)}")
    return [m for m in SIGN_IN_METHODS if m in methods]


async def get_project(db: AsyncSession, project_id: str) -> Project:
    project = await db.get(Project, project_id)
    if project is None:
        raise NotFound("no such project")
    return project


async def list_projects(db: AsyncSession, org_id: str) -> list[Project]:
    rows = await db.scalars(select(Project).where(Project.org_id == org_id).order_by(Project.created_at))
    return list(rows.all())


async def any_project_allows(db: AsyncSession, origin: str) -> bool:
    """Whether some project lists `origin` among its allowed origins (exactly). The text match only
    narrows the rows; the exact test is on the decoded lists."""
    listed = cast(Project.allowed_origins, String).contains(json.dumps(origin), autoescape=True)
    return any(
        origin in origins for origins in await db.scalars(select(Project.allowed_origins).where(listed))
    )


async def org_of_project(db: AsyncSession, project_id: str) -> str | None:
    """The org a project belongs to, for org-role checks on `/projects/{project_id}` routes."""
    return await db.scalar(select(Project.org_id).where(Project.id == project_id))


class ProjectService:
    """Project changes with their effects: the identity lifecycle and the key cache, whoever calls."""

    def __init__(self, db: AsyncSession, lifecycle: ProjectLifecycle, key_cache: KeyCache) -> None:
        self.db = db
        self.lifecycle = lifecycle
        self.key_cache = key_cache

    async def create(self, org_id: str, name: str, *, actor: Actor) -> Project:
        db = self.db
        org = await db.get(Org, org_id)
        if org is None:
            raise NotFound("no such org")
        await _check_project_quota(db, org)  # early refusal, before anything leaves the machine
        now = clock.now()
        project = Project(
            id=new_id("prj"),
            org_id=org_id,
            name=clean_name(name),
            allowed_origins=[],
            redirect_urls=[],
            sign_in_methods=list(SIGN_IN_METHODS),
            created_at=now,
            updated_at=now,
        )
        # The identity engine's calls come before any lock: a slow Authentik must not stall other writes.
        provisioned = await self.lifecycle.provision(db, project)
        # Lock the org row so two concurrent creates cannot both squeeze under the quota.
        locked = await db.scalar(select(Org).where(Org.id == org_id).with_for_update())
        if locked is None:
            raise NotFound("no such org")
        await _check_project_quota(db, locked)
        db.add(project)
        await db.flush()
        await record_for_project(db, AuditAction.PROJECT_CREATED, project, actor, {"name": project.name})
        created = {"id": project.id, "org_id": org_id, "name": project.name, "created_at": project.created_at}
        emit(db, EventType.PROJECT_CREATED, created, org_id=org_id)
        await self.lifecycle.provisioned(db, project, provisioned, actor=actor)
        return project

    async def update(
        self,
        project: Project,
        changes: ProjectChanges,
        *,
        actor: Actor,
    ) -> Project:
        """Set the fields `changes` names; a list given replaces the whole list (to add or remove one
        entry, see add_redirect_url, remove_redirect_url, add_origin and remove_origin)."""
        cleaned = _cleaned_changes(project, changes)
        if not cleaned:
            return project
        if "redirect_urls" in cleaned:  # Authentik matches them strictly too
            await self.lifecycle.redirects_changing(self.db, project, list(cleaned["redirect_urls"]))  # type: ignore[call-overload]
        await self._apply(project, cleaned, actor)
        return project

    async def add_redirect_url(self, project: Project, url: str, *, actor: Actor) -> Project:
        """Register one more redirect URL and keep the others; already registered: nothing changes."""
        added = clean_redirect_url(url)
        if added in project.redirect_urls:
            return project
        if len(project.redirect_urls) >= MAX_URLS:
            raise InvalidInput(f"at most {MAX_URLS} redirect URLs")
        # Only the new URL is checked: URLs registered under older rules stay until removed.
        return await self._edit_redirect_urls(project, [*project.redirect_urls, added], actor)

    async def remove_redirect_url(self, project: Project, url: str, *, actor: Actor) -> Project:
        """Unregister one redirect URL (exactly as registered) and keep the others."""
        removed = url.strip()
        if removed not in project.redirect_urls:
            raise NotFound("that redirect URL is not registered for this project (URLs match exactly)")
        return await self._edit_redirect_urls(
            project, [kept for kept in project.redirect_urls if kept != removed], actor
        )

    async def _edit_redirect_urls(self, project: Project, wanted: list[str], actor: Actor) -> Project:
        """Change the list to `wanted`, derived from the list as read; if another request changed the
        list meanwhile, refuse rather than overwrite its change."""
        read = list(project.redirect_urls)
        await self.lifecycle.redirects_changing(self.db, project, wanted)
        # The row lock comes after the lifecycle's network calls (it may leave the machine, G8).
        await self.db.refresh(project, with_for_update=True)
        if project.redirect_urls != read:
            raise Conflict("the project's redirect URLs changed meanwhile: read them again and retry")
        await self._apply(project, {"redirect_urls": wanted}, actor)
        return project

    async def add_origin(self, project: Project, origin: str, *, actor: Actor) -> Project:
        """Allow one more origin and keep the others; already allowed: nothing changes."""
        added = clean_origin(origin)
        if added in project.allowed_origins:
            return project
        if len(project.allowed_origins) >= MAX_URLS:
            raise InvalidInput(f"at most {MAX_URLS} allowed origins")
        # Only the new origin is checked: origins allowed under older rules stay until removed.
        return await self._edit_origins(project, [*project.allowed_origins, added], actor)

    async def remove_origin(self, project: Project, origin: str, *, actor: Actor) -> Project:
        """Stop allowing one origin (exactly as listed) and keep the others."""
        removed = origin.strip()
        if removed not in project.allowed_origins:
            raise NotFound(f"{removed} is not an allowed origin of this project (origins match exactly)")
        return await self._edit_origins(
            project, [kept for kept in project.allowed_origins if kept != removed], actor
        )

    async def _edit_origins(self, project: Project, wanted: list[str], actor: Actor) -> Project:
        """Change the list to `wanted`, derived from the list as read; if another request changed the
        list meanwhile, refuse rather than overwrite its change."""
        read = list(project.allowed_origins)
        await self.db.refresh(project, with_for_update=True)
        if project.allowed_origins != read:
            raise Conflict("the project's allowed origins changed meanwhile: read them again and retry")
        await self._apply(project, {"allowed_origins": wanted}, actor)
        return project

    async def _apply(self, project: Project, cleaned: dict[str, object], actor: Actor) -> None:
        """Write cleaned changes with their effects: the audit event and the key cache."""
        for field, value in cleaned.items():
            setattr(project, field, value)
        project.updated_at = clock.now()
        # Written now: a later edit in the same transaction re-reads the row under lock (refresh), which
        # would otherwise drop this change unsaved.
        await self.db.flush()
        await record_for_project(self.db, AuditAction.PROJECT_UPDATED, project, actor, {"changed": cleaned})
        # The cached key principals carry the name and origins: every worker must read them afresh.
        on_commit(self.db, partial(self.key_cache.forget_project, project.id))

    async def delete(self, project: Project, *, actor: Actor) -> None:
        await self.delete_many([project], actor=actor)

    async def delete_many(self, projects: list[Project], *, actor: Actor) -> None:
        """Delete projects with their keys; the identity engine's objects go first, all before any
        audit write, so no network call waits inside the audited part of the transaction. Each project
        emits its org-wide `project.deleted`, an org's deletion too (its events stay in the outbox, for
        the record; their users, sessions and keys go without events of their own)."""
        for project in projects:
            await self.lifecycle.deleting(self.db, project)
        for project in projects:
            await record_for_project(
                self.db, AuditAction.PROJECT_DELETED, project, actor, {"name": project.name}
            )
            deleted = {"id": project.id, "org_id": project.org_id, "name": project.name}
            emit(self.db, EventType.PROJECT_DELETED, deleted, org_id=project.org_id)
            await self.db.delete(project)
            on_commit(self.db, partial(self.key_cache.forget_project, project.id))
        # Flushed now: an org deleted next would take them by cascade first, and these deletes find no rows.
        await self.db.flush()


async def _check_project_quota(db: AsyncSession, org: Org) -> None:
    check_quota(plan_for(org.plan), "projects", await projects_used(db, org.id))


@dataclass(frozen=True, slots=True)
class ProjectChanges:
    """What an update asks for; None leaves a field as it is."""

    name: str | None = None
    allowed_origins: list[str] | None = None
    redirect_urls: list[str] | None = None
    sign_in_methods: list[str] | None = None


def _cleaned_changes(project: Project, changes: ProjectChanges) -> dict[str, object]:
    cleaned: dict[str, object] = {}
    if changes.name is not None:
        cleaned["name"] = clean_name(changes.name)
    if changes.allowed_origins is not None:
        cleaned["allowed_origins"] = _clean_list(changes.allowed_origins, clean_origin, "allowed origins")
    if changes.redirect_urls is not None:
        cleaned["redirect_urls"] = _clean_list(changes.redirect_urls, clean_redirect_url, "redirect URLs")
    if changes.sign_in_methods is not None:
        cleaned["sign_in_methods"] = clean_sign_in_methods(changes.sign_in_methods)
    return {field: value for field, value in cleaned.items() if getattr(project, field) != value}


async def record_for_project(
    db: AsyncSession, action: AuditAction, project: Project, actor: Actor, metadata: dict[str, object]
) -> None:
    await record(
        db,
        action,
        actor=actor,
        org_id=project.org_id,
        project_id=project.id,
        target=project.id,
        metadata=metadata,
    )
