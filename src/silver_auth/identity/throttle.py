"""Failure throttling for second factors and sign-in, shared by every worker through the database.

A failure is recorded in its own transaction: the request's transaction rolls back when it answers
with an error, and the failure (and its audit event) must survive that. note_failure rolls the
request's transaction back itself, first (see there why).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.errors import ProblemError
from silver_auth.core.ids import new_id
from silver_auth.db.session import transaction
from silver_auth.identity.models import AuthFailure


class TooManyAttempts(ProblemError):
    status, slug, title = 429, "too-many-attempts", "Too many failed attempts"


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `max_failures` failures of `scope` per `subject` within `window`."""

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
    address is known, per IP (`{scope}_ip`). The subject's limit comes first (see forget_subject)."""
    kind, value = subject
    limits = [Limit(f"{scope}_{kind}", value, max_per_subject, window)]
    if ip:
        limits.append(Limit(f"{scope}_ip", ip, max_per_ip, window))
    return limits


async def check(db: AsyncSession, limits: Sequence[Limit]) -> None:
    """Refuse (429 with Retry-After) while any limit is exhausted; call before checking the secret."""
    now = clock.now()
    for limit in limits:
        since = now - limit.window
        count, oldest = (
            await db.execute(
                select(func.count(), func.min(AuthFailure.at)).where(
                    AuthFailure.scope == limit.scope,
                    AuthFailure.subject == limit.subject,
                    AuthFailure.at > since,
                )
            )
        ).one()
        if count >= limit.max_failures:
            retry = max(1, int((oldest + limit.window - now).total_seconds()) + 1)
            raise TooManyAttempts(
                "too many failed attempts; try again later", headers={"Retry-After": str(retry)}
            )


async def note_failure(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    limits: Sequence[Limit],
    *,
    action: AuditAction,
    actor: Actor,
    target: str | None = None,
    org_id: str | None = None,
    project_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Roll back the request's transaction `db`, then count one failure against every limit and audit
    it in a transaction of its own, committed although the request then answers with an error.

    The rollback comes first because the request's work is void anyway (an error follows) and because
    on SQLite every transaction takes the write lock at BEGIN (IMMEDIATE): a second transaction opened
    while the request's is still open would wait on it until the busy timeout. Rows loaded through
    `db` are expired afterwards: read what you need (ids, org of a project) before calling this.
    """
    await db.rollback()
    now = clock.now()
    async with transaction(sessionmaker) as own:
        for limit in limits:
            own.add(AuthFailure(id=new_id("af"), scope=limit.scope, subject=limit.subject, at=now))
        await record(
            own, action, actor=actor, target=target, org_id=org_id, project_id=project_id, metadata=metadata
        )


async def clear(db: AsyncSession, scope: str, subject: str) -> None:
    """Forget a subject's failures (after a success, so a user who got there is not penalised later)."""
    await db.execute(delete(AuthFailure).where(AuthFailure.scope == scope, AuthFailure.subject == subject))


async def forget_subject(db: AsyncSession, limits: Sequence[Limit]) -> None:
    """After a success, forget the subject's failures (per_subject_and_ip's first limit); the IP's count
    stays: it may span subjects."""
    await clear(db, limits[0].scope, limits[0].subject)


async def purge_older_than(db: AsyncSession, age: timedelta) -> int:
    result = await db.execute(delete(AuthFailure).where(AuthFailure.at < clock.now() - age))
    return int(result.rowcount)  # type: ignore[attr-defined]
