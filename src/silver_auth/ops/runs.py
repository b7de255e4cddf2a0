"""The record of operations runs (`ops_runs`): begin one, end it with its outcome, read the newest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core import clock
from silver_auth.core.ids import new_id
from silver_auth.core.redaction import redact, redact_text
from silver_auth.ops.models import OpsRun, RunKind

ERROR_LENGTH = 500


async def begin_run(db: AsyncSession, kind: RunKind, *, trigger: str = "command") -> OpsRun:
    """A `running` record of `kind`, flushed (not committed: the caller owns the transaction)."""
    run = OpsRun(
        id=new_id("opr"), kind=kind, outcome="running", started_at=clock.now(), trigger=trigger, detail={}
    )
    db.add(run)
    await db.flush()
    return run


async def finish_run(
    db: AsyncSession,
    run_id: str,
    *,
    succeeded: bool,
    backup_id: str | None = None,
    error: str | None = None,
    detail: dict[str, Any] | None = None,
) -> OpsRun:
    """End the run with its outcome; `error` and `detail` are redacted before they are written (G28)."""
    run = await db.get_one(OpsRun, run_id)
    finished = clock.now()
    run.outcome = "succeeded" if succeeded else "failed"
    run.finished_at = finished
    run.duration_ms = int((finished - run.started_at).total_seconds() * 1000)
    if backup_id is not None:
        run.backup_id = backup_id
    run.error = redact_text(error.splitlines()[0])[:ERROR_LENGTH] if error else None
    if detail is not None:
        run.detail = redact(detail)
    await db.flush()
    return run


async def latest_run(db: AsyncSession, kind: RunKind, *, outcome: str | None = "succeeded") -> OpsRun | None:
    """The newest finished run of `kind` (with `outcome`, unless None: any finished run)."""
    query = select(OpsRun).where(OpsRun.kind == kind, OpsRun.finished_at.is_not(None))
    if outcome is not None:
        query = query.where(OpsRun.outcome == outcome)
    return await db.scalar(query.order_by(OpsRun.finished_at.desc()).limit(1))


async def recent_runs(db: AsyncSession, kind: RunKind | None = None, *, limit: int = 20) -> list[OpsRun]:
    """The newest runs first, of one kind or all."""
    query = select(OpsRun)
    if kind is not None:
        query = query.where(OpsRun.kind == kind)
    return list(await db.scalars(query.order_by(OpsRun.started_at.desc()).limit(limit)))


def age_seconds(moment: datetime | None) -> float | None:
    return None if moment is None else (clock.now() - moment).total_seconds()
