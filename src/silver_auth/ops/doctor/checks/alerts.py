"""Monitoring and alerting (L1, L2): the launch checks ran recently (`silver-auth monitor` records
each run), and alerts go to an attended, non-email channel that has taken one lately."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from silver_auth.alerts.models import AlertDelivery
from silver_auth.core import clock
from silver_auth.core import production_guard as guard
from silver_auth.ops.doctor.checks.backups import ago
from silver_auth.ops.doctor.context import DatabaseUnavailable, Doctor
from silver_auth.ops.doctor.report import Finding, failed, from_problems, passed, warned
from silver_auth.ops.runs import age_seconds, latest_run

LINES = ("L1", "L2")
MONITOR_FIX = "schedule `silver-auth monitor` (deploy/: the systemd unit and timer, or `--every 60s`)"


async def check(doctor: Doctor) -> list[Finding]:
    return [await _monitored(doctor), await _alert_channel(doctor)]


async def _monitored(doctor: Doctor) -> Finding:
    minutes = doctor.settings.monitor_max_age_minutes
    check = f"a monitor run within {minutes:g} min"
    try:
        sessionmaker = await doctor.database()
    except DatabaseUnavailable as exc:
        return failed("L1", check, exc.reason)
    async with sessionmaker() as db:
        run = await latest_run(db, "monitor", outcome=None)
    if run is None:
        return failed("L1", check, "no monitor run recorded", MONITOR_FIX)
    age = age_seconds(run.finished_at)
    if age is None or age > minutes * 60:
        return failed("L1", check, f"the last monitor run was {ago(age)}", MONITOR_FIX)
    if run.outcome != "succeeded":
        # Monitored, and the monitor has raised its alert (L2): the service is what needs fixing.
        return warned(
            "L1",
            check,
            f"monitored ({ago(age)}), and that run failed: {run.error or 'no reason recorded'}",
            "see the monitor's alert; `silver-auth monitor` shows which check fails",
        )
    return passed("L1", check, f"the last run {ago(age)} passed every launch check")


async def _alert_channel(doctor: Doctor) -> Finding:
    settings = doctor.settings
    days = settings.doctor_alert_delivery_max_age_days
    check = f"SILVER_ALERT_URLS non-email, and a delivery within {days:g} days"
    configured = guard.alert_channel_violations(settings)
    if configured:
        return from_problems(
            "L2",
            check,
            configured,
            "set SILVER_ALERT_URLS to your on-call channel's apprise URL (docs/alerts.md)",
        )
    try:
        sessionmaker = await doctor.database()
    except DatabaseUnavailable as exc:
        return failed("L2", check, exc.reason)
    async with sessionmaker() as db:
        newest = await db.scalar(
            select(AlertDelivery.at)
            .where(AlertDelivery.status == "sent")
            .order_by(AlertDelivery.at.desc())
            .limit(1)
        )
    channels = len(settings.alert_channel_urls())
    if newest is None or newest < clock.now() - timedelta(days=days):
        when = "never" if newest is None else f"last {ago(age_seconds(newest))}"
        return warned(
            "L2",
            check,
            f"{channels} channel(s) configured; an alert reached one {when}",
            "run `silver-auth alerts test` and confirm someone saw it",
        )
    return passed("L2", check, f"{channels} channel(s); an alert reached one {ago(age_seconds(newest))}")
