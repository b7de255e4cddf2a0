"""The hot path: turn a presented key into its project with one indexed lookup, cached per process.

Bound on revocation: the worker that revokes (or rotates) a key drops it from its cache after the
commit, so it refuses the key at once; every other worker refuses it at most
SILVER_KEY_CACHE_TTL_SECONDS later, when its cached entry expires. Rotation grace periods end
exactly: the expiry is checked on every request, cached or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cachetools import TTLCache
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.core import clock
from silver_auth.core.crypto import keyed_hash
from silver_auth.db.session import transaction
from silver_auth.keys.models import ApiKey
from silver_auth.keys.service import KeyKind, well_formed
from silver_auth.projects.models import Project

CACHE_SIZE: Final = 100_000


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    """What a valid key proves: which project and environment the caller acts for."""

    key_id: str
    kind: str
    environment: str
    prefix: str
    project_id: str
    org_id: str
    project_name: str
    sign_in_methods: tuple[str, ...]
    expires_at: float | None
    """Epoch seconds when a rotated key stops working; None for no end."""


_UNKNOWN: Final = object()


class KeyVerifier:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], pepper: bytes, ttl_seconds: float
    ) -> None:
        self._sessionmaker = sessionmaker
        self._pepper = pepper
        # Misses are cached too (as None), so a flood of unknown keys costs one query per key per TTL.
        self._cache: TTLCache[str, KeyPrincipal | None] = TTLCache(
            CACHE_SIZE, ttl_seconds, timer=clock.monotonic
        )

    async def verify(self, raw: str, kind: KeyKind) -> KeyPrincipal | None:
        if not well_formed(raw, kind):
            return None
        digest = keyed_hash(self._pepper, raw)
        principal = self._cache.get(digest, _UNKNOWN)
        if principal is _UNKNOWN:
            principal = await self._load(digest)
            self._cache[digest] = principal
        if not isinstance(principal, KeyPrincipal) or principal.kind != kind:
            return None
        if principal.expires_at is not None and principal.expires_at <= clock.now().timestamp():
            return None
        return principal

    async def _load(self, digest: str) -> KeyPrincipal | None:
        async with transaction(self._sessionmaker) as db:
            row = (
                await db.execute(
                    select(ApiKey, Project)
                    .join(Project, Project.id == ApiKey.project_id)
                    .where(ApiKey.lookup_hash == digest, ApiKey.revoked_at.is_(None))
                )
            ).one_or_none()
            if row is None:
                return None
            key, project = row
            # Last use is recorded on cache fills, so it is accurate to within the cache TTL.
            await db.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=clock.now()))
            return _principal(key, project)

    def forget_key(self, lookup_hash: str) -> None:
        self._cache.pop(lookup_hash, None)

    def forget_project(self, project_id: str) -> None:
        stale = [
            h for h, p in self._cache.items() if isinstance(p, KeyPrincipal) and p.project_id == project_id
        ]
        for digest in stale:
            self._cache.pop(digest, None)

    def forget_all(self) -> None:
        self._cache.clear()


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _principal(key: ApiKey, project: Project) -> KeyPrincipal:
    return KeyPrincipal(
        key_id=key.id,
        kind=key.kind,
        environment=key.environment,
        prefix=key.prefix,
        project_id=project.id,
        org_id=project.org_id,
        project_name=project.name,
        sign_in_methods=tuple(project.sign_in_methods),
        expires_at=_epoch(key.expires_at),
    )


def lookup_hash(pepper: bytes, raw: str) -> str:
    return keyed_hash(pepper, raw)
