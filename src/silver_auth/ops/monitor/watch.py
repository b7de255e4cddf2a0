"""Running the launch checks (L1) as a watch: each run is recorded in `ops_runs` (what `doctor` reads),
and each check's failure and recovery goes to the alert path (L2) once per transition, never once per run.

An alert is `monitor_check_failed` for `<check>@<host>`. While `health` fails the service is down, and
every other check fails with it: the one `health@<host>` alert names them all, and the other checks'
alerts are neither raised nor cleared until health answers again (one outage pages once).

Which alerts stand is read from the database when the watch starts (a one-shot run from cron or a
systemd timer takes over from the run before it) and kept in the process after (`--every`). Without a
database, alerts go to the log only: channel delivery and dedupe across runs need it."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.alerts.dispatcher import dispatching, drain
from silver_auth.alerts.records import standing_keys
from silver_auth.alerts.service import clear_alert, raise_alert
from silver_auth.core import clock
from silver_auth.core.redaction import redact_text
from silver_auth.db.session import transaction
from silver_auth.ops.monitor.checks import CheckResult, Outcome, run_checks
from silver_auth.ops.monitor.target import MonitorTarget
from silver_auth.ops.runs import begin_run, finish_run
from silver_auth.settings import Settings

ALERT_KIND = "monitor_check_failed"
DRAIN_GRACE_SECONDS = 5.0


def _log() -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("silver_auth.monitor")
    return logger


def alert_subject(check: str, host: str) -> str:
    return f"{check}@{host}"


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """One run: every check's outcome, whether it was recorded, and the alerts it raised or cleared."""

    target: MonitorTarget
    started_at: datetime
    duration_ms: int
    checks: list[CheckResult]
    run_id: str | None = None
    raised: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)

    @property
    def overall(self) -> Outcome:
        outcomes = {check.outcome for check in self.checks}
        return "fail" if "fail" in outcomes else "warn" if "warn" in outcomes else "pass"

    @property
    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if check.outcome == "fail"]

    def as_json(self) -> dict[str, Any]:
        """The `--json` object: stable names, for cron, systemd timers and `doctor`."""
        return {
            "base_url": self.target.base_url,
            "accounts_url": self.target.accounts_url,
            "started_at": self.started_at.isoformat().replace("+00:00", "Z"),
            "duration_ms": self.duration_ms,
            "overall": self.overall,
            "checks": [
                {"name": c.name, "outcome": c.outcome, "reason": c.reason, "duration_ms": c.duration_ms}
                for c in self.checks
            ],
            "run_id": self.run_id,
            "alerts": {"raised": self.raised, "cleared": self.cleared},
        }


@dataclass(frozen=True, slots=True)
class Transition:
    action: str
    """`raise` or `clear`."""
    subject: str
    message: str
    context: dict[str, Any] = field(default_factory=dict)


def transitions(target: MonitorTarget, checks: list[CheckResult], standing: set[str]) -> list[Transition]:
    """The alerts to raise (a check failing whose alert does not stand) and clear (a check passing, or
    warning, whose alert stands). While health fails, the other checks' state is not known."""
    failing = [check for check in checks if check.outcome == "fail"]
    down = any(check.name == "health" for check in failing)
    found = []
    for check in checks:
        subject = alert_subject(check.name, target.host)
        if down and check.name != "health":
            continue
        if check.outcome == "fail" and subject not in standing:
            message = f"{check.name} fails at {target.base_url}: {check.reason}"
            others = [other.name for other in failing if other is not check]
            if down and others:
                message += f" (failing with it: {', '.join(others)})"
            context = {"base_url": target.base_url, "failing": ", ".join(c.name for c in failing)}
            found.append(Transition("raise", subject, message, context))
        elif check.outcome != "fail" and subject in standing:
            found.append(
                Transition(
                    "clear", subject, f"{check.name} passes again at {target.base_url}: {check.reason}"
                )
            )
    return found


class Monitor:
    """The checks of one target, run again and again (or once), with the alerts that stand."""

    def __init__(
        self,
        target: MonitorTarget,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession] | None,
        verify: ssl.SSLContext,
    ) -> None:
        self.target, self.settings, self.sessionmaker, self.verify = target, settings, sessionmaker, verify
        self.standing: set[str] = set()

    async def load_standing(self) -> None:
        """The subjects of this target whose alerts stand in the database (any earlier run's)."""
        if self.sessionmaker is None:
            return
        suffix = f"@{self.target.host}"
        keys = await standing_keys(self.sessionmaker)
        self.standing = {subject for kind, subject in keys if kind == ALERT_KIND and subject.endswith(suffix)}

    async def run(self) -> MonitorReport:
        """One run: record its start, check, route the transitions, record its end. A database that goes
        away meanwhile is logged; the checks and the alerts (to the log) go on."""
        started_at, started = clock.now(), clock.monotonic()
        run_id = await self._begin()
        checks = await run_checks(
            self.target, timeout_seconds=self.settings.monitor_timeout_seconds, verify=self.verify
        )
        raised, cleared = self._alert(checks)
        report = MonitorReport(
            self.target,
            started_at,
            int((clock.monotonic() - started) * 1000),
            checks,
            run_id,
            raised,
            cleared,
        )
        await self._finish(report)
        return report

    def _alert(self, checks: list[CheckResult]) -> tuple[list[str], list[str]]:
        raised, cleared = [], []
        for change in transitions(self.target, checks, self.standing):
            if change.action == "raise":
                raise_alert(ALERT_KIND, change.subject, change.message, **change.context)
                self.standing.add(change.subject)
                raised.append(change.subject)
            else:
                clear_alert(ALERT_KIND, change.subject, change.message)
                self.standing.discard(change.subject)
                cleared.append(change.subject)
        return raised, cleared

    async def _begin(self) -> str | None:
        if self.sessionmaker is None:
            return None
        try:
            async with transaction(self.sessionmaker) as db:
                return (await begin_run(db, "monitor")).id
        except Exception as exc:
            _log().warning("monitor_record_failed", error_type=type(exc).__name__, error=_first_line(exc))
            return None

    async def _finish(self, report: MonitorReport) -> None:
        if self.sessionmaker is None or report.run_id is None:
            return
        failed = report.failed
        error = "; ".join(f"{check.name}: {check.reason}" for check in failed) if failed else None
        detail = {
            key: value for key, value in report.as_json().items() if key not in ("run_id", "started_at")
        }
        try:
            async with transaction(self.sessionmaker) as db:
                await finish_run(db, report.run_id, succeeded=not failed, error=error, detail=detail)
        except Exception as exc:
            _log().warning("monitor_record_failed", error_type=type(exc).__name__, error=_first_line(exc))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact_text(text.splitlines()[0])[:300] if text else ""


@asynccontextmanager
async def monitoring(
    target: MonitorTarget,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession] | None,
    verify: ssl.SSLContext,
) -> AsyncIterator[Monitor]:
    """A Monitor whose alerts reach the channels of SILVER_ALERT_URLS through a dispatcher of its own
    (with a database), every alert sent before the block ends."""
    monitor = Monitor(target, settings, sessionmaker, verify)
    if sessionmaker is None:
        yield monitor
        return
    async with dispatching(sessionmaker, settings):
        try:
            await monitor.load_standing()
        except Exception as exc:  # the dispatcher's own record still keeps a standing alert from resending
            _log().warning("monitor_standing_unread", error_type=type(exc).__name__, error=_first_line(exc))
        try:
            yield monitor
        finally:
            with suppress(TimeoutError):  # a channel that hangs is the dispatcher's to give up on
                async with asyncio.timeout(settings.alert_timeout_seconds + DRAIN_GRACE_SECONDS):
                    await drain()
