"""The worker's backup schedule (L3): a backup every SILVER_BACKUP_INTERVAL_HOURS, due at the newest backup
run's start plus the interval, so the schedule survives restarts; claimed in the database (the `running`
row, inserted under an advisory lock on Postgres, SQLite's write lock) so that of N workers exactly one
makes each backup. A failed or missed backup raises an alert; the next good one clears it."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from datetime import timedelta

import structlog
from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.alerts.service import clear_alert, raise_alert
from silver_auth.core import clock
from silver_auth.db.session import transaction, write_lock
from silver_auth.ops.backup.errors import BackupError
from silver_auth.ops.backup.service import database_label, run_backup
from silver_auth.ops.models import OpsRun
from silver_auth.ops.runs import begin_run, latest_run
from silver_auth.settings import Settings

SCHEDULE_LOCK = 0x5B4C_0B4C  # pg_advisory_xact_lock key: one claim at a time across workers
MISSED_KIND = "backup_missed"
CHECK_SECONDS = 60.0
RETRY_AFTER_FAILURE = timedelta(hours=1)
"""A failed scheduled backup is tried again this soon (or after the interval, if that is shorter)."""


def _log() -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("silver_auth.backup")
    return logger


def schedule_active(settings: Settings) -> bool:
    """On when the interval is not 0; in development only once env.backup exists (a laptop's worker is
    not alerted about backups nobody set up), in production always (a missing env.backup is a failure)."""
    if settings.backup_interval_hours <= 0:
        return False
    return settings.is_production or settings.backup_env_path.exists()


async def _lock(db: AsyncSession) -> None:
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(select(func.pg_advisory_xact_lock(literal(SCHEDULE_LOCK))))
    else:
        await write_lock(db)


async def claim_due(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> str | None:
    """If a backup is due, record it as running (the claim) and answer its run id; else None."""
    interval = timedelta(hours=settings.backup_interval_hours)
    async with transaction(sessionmaker) as db:
        await _lock(db)
        newest = (
            await db.execute(
                select(OpsRun.started_at, OpsRun.outcome)
                .where(OpsRun.kind == "backup")
                .order_by(OpsRun.started_at.desc())
                .limit(1)
            )
        ).first()
        if newest is not None:
            wait = min(interval, RETRY_AFTER_FAILURE) if newest.outcome == "failed" else interval
            if newest.started_at + wait > clock.now():
                return None
        return (await begin_run(db, "backup", trigger="schedule")).id


async def check_missed(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> bool:
    """Raise `backup_missed` when the newest good backup is older than SILVER_BACKUP_MAX_AGE_HOURS (or
    there is none, though backups were tried that long ago); clear it otherwise. True if missed."""
    max_age = timedelta(hours=settings.backup_max_age_hours)
    async with sessionmaker() as db:
        good = await latest_run(db, "backup")
        since = (
            good.finished_at
            if good is not None
            else await db.scalar(
                select(OpsRun.started_at).where(OpsRun.kind == "backup").order_by(OpsRun.started_at).limit(1)
            )
        )
    subject = database_label(settings)
    if since is None or clock.now() - since <= max_age:
        clear_alert(MISSED_KIND, subject, "A good backup is recent again.")
        return False
    hours = (clock.now() - since).total_seconds() / 3600
    raise_alert(
        MISSED_KIND,
        subject,
        f"No good backup for {hours:.1f} h (SILVER_BACKUP_MAX_AGE_HOURS={settings.backup_max_age_hours:g})",
        last_good_backup=good.backup_id if good is not None else "none",
        guide="G22, L3",
    )
    return True


class BackupSchedule:
    """The schedule as one task of `silver-auth worker`; stop() lets a backup in progress finish."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker, self.settings = sessionmaker, settings
        self._stopping = asyncio.Event()

    async def tick(self) -> str | None:
        """Make the backup if one is due, then check for a missed one; answers the run id made, if any."""
        run_id = await claim_due(self.sessionmaker, self.settings)
        if run_id is not None:
            try:
                report = await run_backup(self.sessionmaker, self.settings, trigger="schedule", run_id=run_id)
                _log().info("backup_made", backup_id=report.backup_id, rows=report.manifest.total_rows)
            except BackupError as exc:  # recorded and alerted by run_backup
                _log().warning("backup_failed", error=exc.detail)
        await check_missed(self.sessionmaker, self.settings)
        return run_id

    async def run_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception as exc:  # the database away for a moment: the next round tries again
                _log().warning("backup_schedule_error", error=f"{type(exc).__name__}")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), CHECK_SECONDS)

    def stop(self) -> None:
        self._stopping.set()
