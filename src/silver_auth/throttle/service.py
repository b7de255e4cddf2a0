"""Failure throttling for passwords, second factors and sign-up, shared by every worker through the
database.

An attempt is reserved BEFORE its secret is checked: one AuthFailure row per limit, committed and
counted under a lock per limit. Counting first and recording the failure afterwards let N parallel
requests all pass the count before any failure was written. A wrong secret
keeps the reservation as its failure record (and audits it); a right one deletes it; an attempt
that never reaches its secret releases it. Pending attempts count: at most `max_failures` secrets
are checked per window, however many requests arrive together (G35).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.crypto import Hasher
from silver_auth.core.errors import ProblemError
from silver_auth.core.ids import new_id
from silver_auth.core.metrics import count_throttle_refusal
from silver_auth.db.session import after_settle, transaction, write_lock
from silver_auth.throttle.models import AuthFailure


class TooManyAttempts(ProblemError):
    status, slug, title = 429, "too-many-attempts", "Too many failed attempts"


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `max_failures` attempts of `scope` per `subject` within `window` are evaluated."""

    scope: str
    subject: str
    max_failures: int
    window: timedelta


def per_subject_and_ip(
    scope: str,
    subject: tuple[str, str],
    ip: str | None,
    *,
    max_per_subject: int,
    max_per_ip: int,
    window: timedelta,
) -> list[Limit]:
    """Failures counted per subject (`{scope}_{kind}` for `subject=(kind, value)`) and, when the client
    address is known, per IP (`{scope}_ip`). The subject's limit comes first: a success forgets it."""
    kind, value = subject
    limits = [Limit(f"{scope}_{kind}", value, max_per_subject, window)]
    if ip:
        limits.append(Limit(f"{scope}_ip", ip, max_per_ip, window))
    return limits


def per_pair_ip_and_subject(
    scope: str,
    subject: str,
    ip: str | None,
    *,
    max_per_pair: int,
    max_per_ip: int,
    max_per_subject: int,
    window: timedelta,
) -> list[Limit]:
    """Password sign-in: the tight limit counts a subject's failures from one IP (`{scope}_pair`), so
    guessing from elsewhere cannot lock the owner out; a per-IP limit stops one source trying many
    subjects; a larger per-subject limit across IPs bounds distributed guessing. A success forgets the
    pair only (the first limit)."""
    return [
        Limit(f"{scope}_pair", f"{subject}|{ip or '-'}", max_per_pair, window),
        *([Limit(f"{scope}_ip", ip, max_per_ip, window)] if ip else []),
        Limit(f"{scope}_subject", subject, max_per_subject, window),
    ]


@dataclass(slots=True)
class Attempt:
    """A reserved attempt (its AuthFailure rows are committed); settle it with one verdict."""

    sessionmaker: async_sessionmaker[AsyncSession]
    limits: Sequence[Limit]
    row_ids: list[str]
    settled: bool = field(default=False)

    async def failed(
        self,
        db: AsyncSession,
        *,
        action: AuditAction,
        actor: Actor,
        target: str | None = None,
        org_id: str | None = None,
        project_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """The secret was wrong: the reservation stays as the failure, and the failure is audited. An
        error follows and the request's transaction rolls back, so the event is written in a
        transaction of its own once the request's is over, whichever way it ended: exactly once."""
        self.settled = True

        async def audit_on_its_own() -> None:
            async with transaction(self.sessionmaker) as own:
                await record(
                    own,
                    action,
                    actor=actor,
                    target=target,
                    org_id=org_id,
                    project_id=project_id,
                    metadata=metadata,
                )

        after_settle(db, audit_on_its_own)

    async def succeeded(self, db: AsyncSession) -> None:
        """The secret was right: drop the reservation and the first limit's earlier failures, in the
        request's transaction (the IP's count stays: it may span subjects)."""
        self.settled = True
        await db.execute(delete(AuthFailure).where(AuthFailure.id.in_(self.row_ids)))
        await clear(db, self.limits[0].scope, self.limits[0].subject)

    async def release(self, db: AsyncSession) -> None:
        """The request failed before reaching the secret: the reservation (committed on its own) goes, in
        a transaction of its own once the request's is over."""
        self.settled = True

        async def drop_on_its_own() -> None:
            async with transaction(self.sessionmaker) as own:
                await own.execute(delete(AuthFailure).where(AuthFailure.id.in_(self.row_ids)))

        after_settle(db, drop_on_its_own)


class Throttle:
    """Books attempts on connections of its own (its own pool): a request never waits for a second
    connection from the pool it holds one of, so a burst of sign-ins cannot starve the pool."""

    def __init__(self, engine: AsyncEngine, hasher: Hasher) -> None:
        self.engine = engine
        self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        self._hasher = hasher

    def email_subject(self, email: str) -> str:
        """A keyed hash of a normalized email (G17): failures and audit events of unknown emails
        never store the address."""
        return self._hasher(email)[:32]

    async def reserve(self, limits: Sequence[Limit]) -> Attempt:
        """Count one attempt against every limit, committed before the secret is checked; 429 with
        Retry-After (and nothing written) when any limit is exhausted. Without a verdict the rows stay
        (sign-up counts every attempt this way).

        Counting and inserting happen in one transaction that holds, per limit, a lock no other
        reservation of the same scope and subject can pass: the write lock on SQLite (BEGIN IMMEDIATE),
        transaction-scoped advisory locks on Postgres. So exactly `max_failures` attempts get through.

        The reservation is committed on a connection of its own; the request's transaction is not
        touched. Call it before the request writes anything: on SQLite a request that has written holds
        the database's write lock, and the reservation would wait for it.
        """
        now = clock.now()
        rows = [AuthFailure(id=new_id("af"), scope=x.scope, subject=x.subject, at=now) for x in limits]
        retry: int | None = None
        exhausted: str | None = None
        async with transaction(self.sessionmaker) as own:
            await write_lock(own)
            if own.get_bind().dialect.name == "postgresql":
                for key in sorted({_lock_key(x) for x in limits}):  # one order everywhere: no deadlock
                    await own.execute(select(func.pg_advisory_xact_lock(key)))
            for limit in limits:
                count, oldest = (
                    await own.execute(
                        select(func.count(), func.min(AuthFailure.at)).where(
                            AuthFailure.scope == limit.scope,
                            AuthFailure.subject == limit.subject,
                            AuthFailure.at > now - limit.window,
                        )
                    )
                ).one()
                if count >= limit.max_failures:
                    retry = max(retry or 1, int((oldest + limit.window - now).total_seconds()) + 1)
                    exhausted = exhausted or limit.scope
            if retry is None:
                own.add_all(rows)
        if retry is not None:
            count_throttle_refusal(exhausted or "unknown")
            raise TooManyAttempts(
                "too many failed attempts; try again later", headers={"Retry-After": str(retry)}
            )
        return Attempt(self.sessionmaker, limits, [row.id for row in rows])

    @asynccontextmanager
    async def attempt(self, db: AsyncSession, limits: Sequence[Limit]) -> AsyncIterator[Attempt]:
        """Reserve (see `reserve`), then check the secret inside and call `failed` or `succeeded`. An error
        raised before a verdict releases the reservation; leaving without one counts as a success."""
        reserved = await self.reserve(limits)
        try:
            yield reserved
        except Exception:
            if not reserved.settled:
                with suppress(Exception):  # the original error is the one to report
                    await reserved.release(db)
            raise
        if not reserved.settled:
            await reserved.succeeded(db)


def _lock_key(limit: Limit) -> int:
    digest = hashlib.blake2b(f"{limit.scope}\x00{limit.subject}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def clear(db: AsyncSession, scope: str, subject: str) -> None:
    """Forget a subject's failures (after a success, so a user who got there is not penalised later)."""
    await db.execute(delete(AuthFailure).where(AuthFailure.scope == scope, AuthFailure.subject == subject))


async def purge_older_than(db: AsyncSession, age: timedelta) -> int:
    result = await db.execute(delete(AuthFailure).where(AuthFailure.at < clock.now() - age))
    return int(result.rowcount)  # type: ignore[attr-defined]
