"""Backups and restore drills (G22, G24, L3, L4), read from the record of operations runs (`ops_runs`):
the newest good backup is young enough and made an offsite copy (`detail["offsite"]`), a restore drill
succeeded recently, and one ever did."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.ops.doctor.context import DatabaseUnavailable, Doctor
from silver_auth.ops.doctor.report import Finding, failed, passed, warned
from silver_auth.ops.models import OpsRun
from silver_auth.ops.runs import age_seconds, latest_run

LINES = ("G22", "G24", "L3", "L4")
BACKUP_FIX = "run `silver-auth backup`, and schedule it (`silver-auth worker`, SILVER_BACKUP_INTERVAL_HOURS)"
DRILL_FIX = "run `silver-auth restore-drill` (and schedule it, e.g. monthly)"


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "at an unknown time"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


async def check(doctor: Doctor) -> list[Finding]:
    try:
        sessionmaker = await doctor.database()
    except DatabaseUnavailable as exc:
        return [failed(line, "the record of backup and drill runs", exc.reason) for line in LINES]
    async with sessionmaker() as db:
        g22, l3 = await _backups(doctor, db)
        g24, l4 = await _drills(doctor, db)
    return [g22, g24, l3, l4]


async def _backups(doctor: Doctor, db: AsyncSession) -> tuple[Finding, Finding]:
    settings = doctor.settings
    max_age = settings.backup_max_age_hours * 3600
    check = f"a good backup younger than {settings.backup_max_age_hours:g} h, with an offsite copy"
    newest_good = await latest_run(db, "backup")
    newest_any = await latest_run(db, "backup", outcome=None)
    if newest_good is None:
        detail = "no backup has succeeded" + (
            f"; the last one failed: {newest_any.error}" if newest_any else ""
        )
        return failed("G22", check, detail, BACKUP_FIX), failed(
            "L3", _schedule_check(doctor), detail, BACKUP_FIX
        )
    age = age_seconds(newest_good.finished_at)
    seen = f"{newest_good.backup_id or newest_good.id}, {ago(age)}"
    problems = []
    if age is None or age > max_age:
        problems.append(f"the newest good backup ({seen}) is older than SILVER_BACKUP_MAX_AGE_HOURS")
    if not newest_good.detail.get("offsite"):
        problems.append(f"the newest good backup ({seen}) made no offsite copy")
    if problems:
        fix = BACKUP_FIX + "; set the offsite repository in env.backup (G23)"
        detail = "; ".join(problems)
        return failed("G22", check, detail, fix), failed("L3", _schedule_check(doctor), detail, fix)
    g22 = passed("G22", check, f"{seen}, local and offsite")
    if newest_any is not None and newest_any.outcome == "failed" and newest_any.id != newest_good.id:
        g22 = warned("G22", check, f"{seen}, but the run after it failed: {newest_any.error}", BACKUP_FIX)
    return g22, await _schedule(doctor, db, seen)


def _schedule_check(doctor: Doctor) -> str:
    return "backups arrive on a schedule, with their offsite copies"


async def _schedule(doctor: Doctor, db: AsyncSession, seen: str) -> Finding:
    """The newest backup is fresh (G22 said so); whose schedule made it is what L3 adds."""
    settings = doctor.settings
    check = _schedule_check(doctor)
    if settings.backup_interval_hours == 0:
        return warned(
            "L3",
            check,
            f"{seen}; the worker's schedule is off (SILVER_BACKUP_INTERVAL_HOURS=0)",
            "have cron or a systemd timer run `silver-auth backup`, or set SILVER_BACKUP_INTERVAL_HOURS",
        )
    cutoff_seconds = settings.backup_max_age_hours * 3600
    scheduled = await db.scalar(
        select(OpsRun)
        .where(
            OpsRun.kind == "backup",
            OpsRun.outcome == "succeeded",
            OpsRun.trigger == "schedule",
            OpsRun.finished_at.is_not(None),
        )
        .order_by(OpsRun.finished_at.desc())
        .limit(1)
    )
    age = age_seconds(scheduled.finished_at) if scheduled is not None else None
    if age is None or age > cutoff_seconds:
        return warned(
            "L3",
            check,
            f"{seen}, but the worker's schedule made none within {settings.backup_max_age_hours:g} h",
            "is `silver-auth worker` running?",
        )
    every = timedelta(hours=settings.backup_interval_hours)
    return passed("L3", check, f"every {every}, the last {ago(age)}, offsite included")


async def _drills(doctor: Doctor, db: AsyncSession) -> tuple[Finding, Finding]:
    days = doctor.settings.restore_drill_max_age_days
    g24_check = f"a restore drill succeeded within {days:g} days"
    l4_check = "a restore drill has succeeded"
    newest_good = await latest_run(db, "restore_drill")
    newest_any = await latest_run(db, "restore_drill", outcome=None)
    if newest_good is None:
        detail = "no restore drill has succeeded" + (
            f"; the last one failed: {newest_any.error}" if newest_any else ""
        )
        return failed("G24", g24_check, detail, DRILL_FIX), failed("L4", l4_check, detail, DRILL_FIX)
    age = age_seconds(newest_good.finished_at)
    seen = f"restored {newest_good.backup_id or 'a backup'} {ago(age)}"
    when = newest_good.finished_at.date().isoformat() if newest_good.finished_at else "?"
    l4 = passed("L4", l4_check, f"the last on {when} ({seen})")
    if age is None or age > days * 86400:
        return failed("G24", g24_check, f"the newest good drill {seen}: too old", DRILL_FIX), l4
    if newest_any is not None and newest_any.outcome == "failed" and newest_any.id != newest_good.id:
        return failed("G24", g24_check, f"the newest drill failed: {newest_any.error}", DRILL_FIX), l4
    return passed("G24", g24_check, seen), l4
