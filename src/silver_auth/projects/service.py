"""Projects: creation within plan quotas, allowed origins and redirect URLs checked on write."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.errors import InvalidInput, NotFound, QuotaExceeded
from silver_auth.core.ids import new_id
from silver_auth.core.text import has_control_characters
from silver_auth.orgs.models import Org
from silver_auth.orgs.service import clean_name
from silver_auth.plans.service import plan_for
from silver_auth.projects.models import Project
from silver_auth.provisioning.service import ProjectIdentity

SIGN_IN_METHODS = ("password",)
ENVIRONMENTS = ("test", "live")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
FORBIDDEN_SCHEMES = ("javascript", "data", "file", "vbscript", "blob")
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
    """An absolute URL matched exactly later: https, http on loopback, or an app's own scheme."""
    value = value.strip()
    if has_control_characters(value) or any(c.isspace() for c in value):
        raise InvalidInput(f"{value!r}: redirect URLs have no spaces or control characters")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a URL") from None
    if not parts.scheme or "#" in value or parts.username or parts.password:  # "#" alone too
        raise InvalidInput(f"{value!r}: redirect URLs are absolute, without fragment or credentials")
    if parts.scheme in FORBIDDEN_SCHEMES:
        raise InvalidInput(f"{value!r}: the {parts.scheme}: scheme is not allowed")
    if parts.scheme in ("http", "https") and not parts.hostname:
        raise InvalidInput(f"{value!r} has no host")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InvalidInput(f"{value!r}: plain http is only allowed for localhost")
    if "*" in value:
        raise InvalidInput("wildcards are not allowed: redirect URLs match exactly")
    return value


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


async def create_project(
    db: AsyncSession, org_id: str, name: str, *, actor: Actor, identity: ProjectIdentity | None = None
) -> Project:
    # Lock the org row so two concurrent creates cannot both squeeze under the quota.
    org = await db.scalar(select(Org).where(Org.id == org_id).with_for_update())
    if org is None:
        raise NotFound("no such org")
    plan = plan_for(org.plan)
    count = await db.scalar(select(func.count()).select_from(Project).where(Project.org_id == org_id))
    if int(count or 0) >= plan.projects:
        raise QuotaExceeded(f"the {plan.name} plan allows {plan.projects} projects")
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
    db.add(project)
    await record(
        db,
        AuditAction.PROJECT_CREATED,
        actor=actor,
        org_id=org_id,
        project_id=project.id,
        target=project.id,
        metadata={"name": project.name},
    )
    if identity is not None:  # Authentik backend: the project's OAuth2 provider and application (G8)
        await db.flush()
        await identity.created(db, project, actor=actor)
    return project


async def get_project(db: AsyncSession, project_id: str) -> Project:
    project = await db.get(Project, project_id)
    if project is None:
        raise NotFound("no such project")
    return project


async def list_projects(db: AsyncSession, org_id: str) -> list[Project]:
    rows = await db.scalars(select(Project).where(Project.org_id == org_id).order_by(Project.created_at))
    return list(rows.all())


async def update_project(
    db: AsyncSession,
    project: Project,
    *,
    name: str | None,
    allowed_origins: list[str] | None,
    redirect_urls: list[str] | None,
    sign_in_methods: list[str] | None,
    actor: Actor,
    identity: ProjectIdentity | None = None,
) -> Project:
    changes: dict[str, object] = {}
    if name is not None:
        changes["name"] = clean_name(name)
    if allowed_origins is not None:
        changes["allowed_origins"] = _clean_list(allowed_origins, clean_origin, "allowed origins")
    if redirect_urls is not None:
        changes["redirect_urls"] = _clean_list(redirect_urls, clean_redirect_url, "redirect URLs")
    if sign_in_methods is not None:
        changes["sign_in_methods"] = clean_sign_in_methods(sign_in_methods)
    changes = {field: value for field, value in changes.items() if getattr(project, field) != value}
    if not changes:
        return project
    for field, value in changes.items():
        setattr(project, field, value)
    project.updated_at = clock.now()
    await record(
        db,
        AuditAction.PROJECT_UPDATED,
        actor=actor,
        org_id=project.org_id,
        project_id=project.id,
        target=project.id,
        metadata={"changed": changes},
    )
    if identity is not None and "redirect_urls" in changes:  # Authentik matches them strictly too
        await identity.redirects_changed(db, project)
    return project


async def delete_project(
    db: AsyncSession, project: Project, *, actor: Actor, identity: ProjectIdentity | None = None
) -> None:
    if identity is not None:
        await identity.deleting(db, project)
    await record(
        db,
        AuditAction.PROJECT_DELETED,
        actor=actor,
        org_id=project.org_id,
        project_id=project.id,
        target=project.id,
        metadata={"name": project.name},
    )
    await db.delete(project)
