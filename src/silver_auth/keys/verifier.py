"""The hot path: turn a presented key into its project with one indexed lookup, cached per process.

Bound on revocation: the worker that revokes (or rotates) a key drops it from its cache after the
commit, so it refuses the key at once; every other worker refuses it at most
SILVER_KEY_CACHE_TTL_SECONDS later, when its cached entry expires. A rotation's grace period ends
exactly on every worker that has seen the rotation (the expiry travels with the cached entry); a
worker that cached the key before the rotation learns of it within the same TTL, so the old key is
refused everywhere by the later of the grace end and rotation + TTL.

Concurrent misses on one key share a single lookup (and a single last-used note): when an entry
expires under load, the requests that arrive meanwhile wait for that lookup instead of each running
their own. A lookup that overlaps an invalidation is neither cached nor shared with later requests.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.core import clock
from silver_auth.core.crypto import Hasher
from silver_auth.db.session import transaction
from silver_auth.keys.last_used import LastUsedRecorder
from silver_auth.keys.models import ApiKey
from silver_auth.keys.service import KeyKind, well_formed
from silver_auth.orgs.models import Org
from silver_auth.plans.service import plan_for
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
    allowed_origins: frozenset[str]
    """Browser origins whose pages may read answers given for this key (CORS)."""
    expires_at: float | None
    """Epoch seconds when a rotated key stops working; None for no end."""
    requests_per_minute: int
    """The org plan's backend rate for this key (L7); a plan change reaches it within the cache TTL."""


class KeyVerifier:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        hasher: Hasher,
        ttl_seconds: float,
        last_used: LastUsedRecorder,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.last_used = last_used
        self._hash = hasher
        self._ttl = ttl_seconds
        # digest -> (deadline, principal). Misses are cached too (as None), so a flood of unknown keys
        # costs one query per key per TTL. Every entry lives the same TTL and is re-inserted on refill,
        # so insertion order is deadline order: the oldest entries are always at the front.
        self._cache: dict[str, tuple[float, KeyPrincipal | None]] = {}
        self._loading: dict[str, asyncio.Task[KeyPrincipal | None]] = {}
        self._generation = 0  # bumped by every invalidation

    async def verify(self, raw: str, kind: KeyKind) -> KeyPrincipal | None:
        """The key's principal, or None for a malformed, unknown, revoked, expired or wrong-kind key."""
        if not well_formed(raw, kind):
            return None
        digest = self._hash(raw)
        entry = self._cache.get(digest)
        if entry is not None and entry[0] > clock.monotonic():
            return _valid(entry[1], kind)
        return _valid(await self._lookup(digest), kind)

    def cached(self, raw: str, kind: KeyKind) -> KeyPrincipal | None:
        """`verify` answered from the cache alone: None also when the key is not cached (no I/O)."""
        if not well_formed(raw, kind):
            return None
        entry = self._cache.get(self._hash(raw))
        if entry is None or entry[0] <= clock.monotonic():
            return None
        return _valid(entry[1], kind)

    async def _lookup(self, digest: str) -> KeyPrincipal | None:
        task = self._loading.get(digest)
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.ensure_future(self._fill(digest, self._generation))
            self._loading[digest] = task
            task.add_done_callback(lambda done: self._loaded(digest, done))
        # shield: a caller that goes away does not cancel the lookup the others wait for
        return await asyncio.shield(task)

    async def _fill(self, digest: str, generation: int) -> KeyPrincipal | None:
        principal = await self._load(digest)
        if generation == self._generation:  # no invalidation raced this lookup
            self._store(digest, principal)
        return principal

    def _store(self, digest: str, principal: KeyPrincipal | None) -> None:
        now = clock.monotonic()
        self._cache.pop(digest, None)  # re-insert at the back: order stays deadline order
        while self._cache:  # drop expired entries from the front, and the oldest when full
            oldest = next(iter(self._cache))
            if self._cache[oldest][0] > now and len(self._cache) < CACHE_SIZE:
                break
            del self._cache[oldest]
        self._cache[digest] = (now + self._ttl, principal)

    def _loaded(self, digest: str, task: asyncio.Task[KeyPrincipal | None]) -> None:
        if self._loading.get(digest) is task:
            del self._loading[digest]
        if not task.cancelled():
            task.exception()  # seen here, so an error nobody awaited is not logged as unretrieved

    async def _load(self, digest: str) -> KeyPrincipal | None:
        async with transaction(self._sessionmaker) as db:
            row = (
                await db.execute(
                    select(ApiKey, Project, Org.plan)
                    .join(Project, Project.id == ApiKey.project_id)
                    .join(Org, Org.id == Project.org_id)
                    .where(ApiKey.lookup_hash == digest, ApiKey.revoked_at.is_(None))
                )
            ).one_or_none()
            if row is None:
                return None
            key, project, plan = row
            # Last use is noted on cache fills, so it is accurate to within the cache TTL (and the flush).
            await self.last_used.record(db, key.id, clock.now())
            return _principal(key, project, plan_for(plan).requests_per_minute)

    def _invalidate(self) -> None:
        self._generation += 1
        self._loading.clear()  # lookups in flight may have read the old row: later callers start afresh

    def forget_key(self, lookup_hash: str) -> None:
        self._invalidate()
        self._cache.pop(lookup_hash, None)

    def forget_project(self, project_id: str) -> None:
        self._invalidate()
        stale = [
            h
            for h, (_, p) in self._cache.items()
            if isinstance(p, KeyPrincipal) and p.project_id == project_id
        ]
        for digest in stale:
            self._cache.pop(digest, None)

    def forget_all(self) -> None:
        self._invalidate()
        self._cache.clear()


def _valid(principal: KeyPrincipal | None, kind: KeyKind) -> KeyPrincipal | None:
    if principal is None or principal.kind != kind:
        return None
    if principal.expires_at is not None and principal.expires_at <= clock.now().timestamp():
        return None  # a rotated key's grace period ends exactly, cached or not
    return principal


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _principal(key: ApiKey, project: Project, requests_per_minute: int) -> KeyPrincipal:
    return KeyPrincipal(
        key_id=key.id,
        kind=key.kind,
        environment=key.environment,
        prefix=key.prefix,
        project_id=project.id,
        org_id=project.org_id,
        project_name=project.name,
        sign_in_methods=tuple(project.sign_in_methods),
        allowed_origins=frozenset(project.allowed_origins),
        expires_at=_epoch(key.expires_at),
        requests_per_minute=requests_per_minute,
    )
