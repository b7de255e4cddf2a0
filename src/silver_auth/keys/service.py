"""Issue, list, rotate and revoke API keys. A secret key exists in clear only in its create answer (G16)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.crypto import Hasher, random_base62
from silver_auth.core.errors import Conflict, InvalidInput, NotFound
from silver_auth.core.ids import new_id
from silver_auth.core.text import has_control_characters
from silver_auth.db.session import on_commit
from silver_auth.keys.cache import KeyCache
from silver_auth.keys.models import ApiKey
from silver_auth.orgs.models import Org
from silver_auth.plans.service import api_keys_used, check_quota, plan_for
from silver_auth.projects.models import Project
from silver_auth.webhooks.events import EventType
from silver_auth.webhooks.outbox import emit

KeyKind = Literal["secret", "publishable"]
Environment = Literal["test", "live"]
RANDOM_CHARS = 43  # 43 base62 characters carry 256 bits
DISPLAY_CHARS = 6
MAX_GRACE = timedelta(days=7)
KIND_PREFIX: dict[str, str] = {"secret": "sk", "publishable": "pk"}
KEY_PATTERN = re.compile(r"(sk|pk)_(live|test)_[A-Za-z0-9]{43}")


def mint(kind: KeyKind, environment: Environment) -> str:
    return f"{KIND_PREFIX[kind]}_{environment}_{random_base62(RANDOM_CHARS)}"


def display_prefix(raw: str) -> str:
    head = raw.rsplit("_", 1)[0]
    return raw[: len(head) + 1 + DISPLAY_CHARS]


def well_formed(raw: str, kind: KeyKind) -> bool:
    match = KEY_PATTERN.fullmatch(raw)
    return match is not None and match.group(1) == KIND_PREFIX[kind]


def _clean_key_name(name: str | None) -> str | None:
    if name is None:
        return None
    if has_control_characters(name):
        raise InvalidInput("name must not contain control characters")
    return " ".join(name.split())[:100] or None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    raw: str
    """The whole key: returned in this one answer and never stored."""


async def get_key(db: AsyncSession, key_id: str) -> ApiKey:
    key = await db.get(ApiKey, key_id)
    if key is None:
        raise NotFound("no such key")
    return key


async def list_keys(db: AsyncSession, project_id: str) -> list[ApiKey]:
    rows = await db.scalars(
        select(ApiKey).where(ApiKey.project_id == project_id).order_by(ApiKey.created_at.desc())
    )
    return list(rows.all())


def api_key_status(key: ApiKey) -> str:
    """`active`, `expiring` (rotated, in its grace period), `expired` or `revoked`."""
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None:
        return "expired" if key.expires_at <= clock.now() else "expiring"
    return "active"


async def org_of_key(db: AsyncSession, key_id: str) -> str | None:
    """The org a key belongs to, for org-role checks on `/keys/{key_id}` routes."""
    return await db.scalar(
        select(Project.org_id).join(ApiKey, ApiKey.project_id == Project.id).where(ApiKey.id == key_id)
    )


class KeyService:
    """Key changes with their effects: keyed hashing (G17) and this worker's key cache, whoever calls."""

    def __init__(self, db: AsyncSession, hasher: Hasher, key_cache: KeyCache) -> None:
        self.db = db
        self.hasher = hasher
        self.key_cache = key_cache

    def _issue(
        self, project: Project, kind: KeyKind, environment: Environment, name: str | None, actor: Actor
    ) -> IssuedKey:
        raw = mint(kind, environment)
        key = ApiKey(
            id=new_id("key"),
            project_id=project.id,
            kind=kind,
            environment=environment,
            lookup_hash=self.hasher(raw),
            prefix=display_prefix(raw),
            publishable_key=raw if kind == "publishable" else None,
            name=_clean_key_name(name),
            created_by=actor.id,
            created_at=clock.now(),
            last_used_at=None,
            expires_at=None,
            revoked_at=None,
            replaced_by=None,
        )
        self.db.add(key)
        return IssuedKey(key, raw)

    async def create(
        self,
        project: Project,
        kind: KeyKind,
        environment: Environment,
        *,
        name: str | None = None,
        actor: Actor,
    ) -> IssuedKey:
        db = self.db
        # Lock the project row so two concurrent creates cannot both squeeze under the quota.
        await db.execute(select(Project.id).where(Project.id == project.id).with_for_update())
        org = await db.get(Org, project.org_id)
        used = await api_keys_used(db, project.id)
        check_quota(
            plan_for(org.plan if org else ""), "api_keys_per_project", used, advice="revoke unused ones"
        )
        issued = self._issue(project, kind, environment, name, actor)
        # G16/G18: the audit record names the key by id and display prefix, never the key.
        await _record_for_key(
            db,
            AuditAction.KEY_CREATED,
            issued.key,
            project.org_id,
            actor,
            {"kind": kind, "environment": environment, "prefix": issued.key.prefix},
        )
        _emit_key_event(db, EventType.KEY_CREATED, issued.key)
        return issued

    async def rotate(self, key: ApiKey, *, grace_seconds: int, actor: Actor) -> tuple[IssuedKey, ApiKey]:
        """A new key of the same kind; the old one stays valid for `grace_seconds` (0: refused at once)."""
        if grace_seconds < 0 or timedelta(seconds=grace_seconds) > MAX_GRACE:
            raise InvalidInput(f"grace_seconds must be between 0 and {int(MAX_GRACE.total_seconds())}")
        status = api_key_status(key)
        if status in ("revoked", "expired"):
            raise Conflict(f"the key is {status}; create a new one instead")
        if key.replaced_by is not None:
            raise Conflict("the key was already rotated")
        project = await self.db.get(Project, key.project_id)
        if project is None:
            raise NotFound("no such key")
        kind: KeyKind = "secret" if key.kind == "secret" else "publishable"
        environment: Environment = "live" if key.environment == "live" else "test"
        issued = self._issue(project, kind, environment, key.name, actor)
        now = clock.now()
        key.replaced_by = issued.key.id
        if grace_seconds == 0:
            key.revoked_at = now
        else:
            key.expires_at = now + timedelta(seconds=grace_seconds)
        await _record_for_key(
            self.db,
            AuditAction.KEY_ROTATED,
            key,
            project.org_id,
            actor,
            {
                "new_key": issued.key.id,
                "prefix": key.prefix,
                "new_prefix": issued.key.prefix,
                "grace_seconds": grace_seconds,
            },
        )
        _emit_key_event(self.db, EventType.KEY_ROTATED, issued.key, replaces=key.id)
        # The cached entry carries no expiry yet: this worker must learn of the grace end at once.
        on_commit(self.db, partial(self.key_cache.forget_key, key.lookup_hash))
        return issued, key

    async def revoke(self, key: ApiKey, *, actor: Actor) -> ApiKey:
        if key.revoked_at is None:
            key.revoked_at = clock.now()
            project = await self.db.get(Project, key.project_id)
            await _record_for_key(
                self.db,
                AuditAction.KEY_REVOKED,
                key,
                project.org_id if project else None,
                actor,
                {"prefix": key.prefix},
            )
            _emit_key_event(self.db, EventType.KEY_REVOKED, key)
            on_commit(self.db, partial(self.key_cache.forget_key, key.lookup_hash))
        return key


def _emit_key_event(db: AsyncSession, kind: EventType, key: ApiKey, **extra: str) -> None:
    """The key as a receiver sees it: its display prefix, never the key or its hash (G16, G18)."""
    data = {
        "id": key.id,
        "project_id": key.project_id,
        "environment": key.environment,
        "kind": key.kind,
        "prefix": key.prefix,
        "name": key.name,
        "status": api_key_status(key),
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        **extra,
    }
    emit(db, kind, data, project_id=key.project_id, environment=key.environment)


async def _record_for_key(
    db: AsyncSession,
    action: AuditAction,
    key: ApiKey,
    org_id: str | None,
    actor: Actor,
    metadata: dict[str, object],
) -> None:
    await record(
        db, action, actor=actor, org_id=org_id, project_id=key.project_id, target=key.id, metadata=metadata
    )
