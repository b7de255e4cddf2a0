"""The worker's backup schedule (L3): due at the newest run's start plus the interval (so a restart keeps
it), one claim among many workers, `backup_failed` and `backup_missed` raised and cleared, and the real
`silver-auth worker` making a scheduled backup."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from silver_auth.alerts.dispatcher import drain
from silver_auth.alerts.service import clear_alert, standing
from silver_auth.core import clock
from silver_auth.ops.backup.schedule import (
    MISSED_KIND,
    BackupSchedule,
    check_missed,
    claim_due,
    schedule_active,
)
from silver_auth.ops.backup.service import FAILED_KIND, database_label
from silver_auth.settings import Settings
from tests.factories import Harness
from tests.ops.backup_support import (
    SILVER_AUTH,
    alerts,
    cli_env,
    needs_restic,
    recorded_text,
    runs,
    write_env_backup,
)

HOUR = 3600.0


@pytest.fixture
def hourly(settings: Settings) -> Settings:
    return settings.model_copy(update={"backup_interval_hours": 1.0, "backup_max_age_hours": 2.0})


@pytest.fixture(autouse=True)
def _no_standing_backup_alerts(harness: Harness, settings: Settings) -> Iterator[None]:
    """The process remembers standing alerts by (kind, subject), and a Postgres test database keeps
    its name from test to test: each test starts and ends with none."""

    async def clear() -> None:
        for kind in (FAILED_KIND, MISSED_KIND):
            clear_alert(kind, database_label(settings), "test boundary")
        await drain()

    harness.run(clear)
    yield
    harness.run(clear)


def _standing_kinds(harness: Harness, settings: Settings) -> set[str]:
    harness.run(drain)
    return {alert["kind"] for alert in standing() if alert["subject"] == database_label(settings)}


def test_l3_schedule_is_off_at_zero_and_waits_for_env_backup_in_development(settings: Settings) -> None:
    assert not schedule_active(settings.model_copy(update={"backup_interval_hours": 0.0}))
    assert not schedule_active(settings)  # development, no env.backup yet
    settings.backup_env_path.parent.mkdir(parents=True, exist_ok=True)
    settings.backup_env_path.write_text("")
    assert schedule_active(settings)
    assert schedule_active(
        settings.model_copy(update={"env": "production", "backup_env_file": Path("/nope")})
    )


@needs_restic
def test_l3_a_backup_is_due_each_interval_and_a_restart_keeps_the_schedule(
    harness: Harness, hourly: Settings, tmp_path: Path
) -> None:
    write_env_backup(hourly, tmp_path, "restic")
    sessionmaker = harness.runtime.sessionmaker
    first = harness.run(lambda: BackupSchedule(sessionmaker, hourly).tick())
    assert first is not None
    restarted = BackupSchedule(sessionmaker, hourly)  # a new worker process reads the same runs
    assert harness.run(restarted.tick) is None
    clock.advance(HOUR - 60)
    assert harness.run(restarted.tick) is None
    clock.advance(120)
    second = harness.run(restarted.tick)
    assert second is not None
    made = runs(harness, "backup")
    assert [(run.id, run.trigger, run.outcome) for run in made] == [
        (first, "schedule", "succeeded"),
        (second, "schedule", "succeeded"),
    ]
    assert made[0].detail["offsite"][0]["kind"] == "restic"


def test_l3_of_workers_claiming_at_once_exactly_one_makes_the_backup(
    harness: Harness, hourly: Settings
) -> None:
    async def claim_together() -> list[str | None]:
        return list(
            await asyncio.gather(*(claim_due(harness.runtime.sessionmaker, hourly) for _ in range(4)))
        )

    claimed = harness.run(claim_together)
    assert sum(run_id is not None for run_id in claimed) == 1
    assert len(runs(harness, "backup")) == 1


def test_l3_a_failed_backup_alerts_is_retried_and_the_next_good_one_clears(
    harness: Harness, hourly: Settings, tmp_path: Path
) -> None:
    daily = hourly.model_copy(update={"backup_interval_hours": 24.0, "backup_max_age_hours": 26.0})
    write_env_backup(daily, tmp_path, "age")
    daily.backup_env_path.chmod(0o640)  # G23: refused, so the scheduled backup fails
    schedule = BackupSchedule(harness.runtime.sessionmaker, daily)
    assert harness.run(schedule.tick) is not None
    assert _standing_kinds(harness, daily) == {FAILED_KIND}
    (failed,) = runs(harness, "backup")
    assert failed.outcome == "failed" and failed.trigger == "schedule" and "G23" in (failed.error or "")
    (alert,) = alerts(harness, FAILED_KIND)
    assert alert.state == "raised" and alert.subject == database_label(daily)

    daily.backup_env_path.chmod(0o600)
    assert harness.run(schedule.tick) is None  # retried an hour after a failure, not a day
    clock.advance(HOUR + 1)
    assert harness.run(schedule.tick) is not None
    assert [run.outcome for run in runs(harness, "backup")] == ["failed", "succeeded"]
    assert _standing_kinds(harness, daily) == set()
    (alert,) = alerts(harness, FAILED_KIND)
    assert alert.state == "cleared"


def test_l3_no_good_backup_within_the_max_age_raises_backup_missed(
    harness: Harness, hourly: Settings, tmp_path: Path
) -> None:
    sessionmaker = harness.runtime.sessionmaker
    assert harness.run(lambda: check_missed(sessionmaker, hourly)) is False  # nothing tried yet
    write_env_backup(hourly, tmp_path, "age")
    assert harness.run(BackupSchedule(sessionmaker, hourly).tick) is not None
    clock.advance(2 * HOUR + 60)
    hourly.backup_env_path.unlink()  # the next ones fail: the good backup only grows older
    assert harness.run(BackupSchedule(sessionmaker, hourly).tick) is not None
    assert _standing_kinds(harness, hourly) == {FAILED_KIND, MISSED_KIND}
    (missed,) = alerts(harness, MISSED_KIND)
    assert missed.state == "raised" and "No good backup for 2.0 h" in missed.message

    write_env_backup(hourly, tmp_path / "again", "age")
    clock.advance(HOUR + 1)
    assert harness.run(BackupSchedule(sessionmaker, hourly).tick) is not None
    assert _standing_kinds(harness, hourly) == set()
    (missed,) = alerts(harness, MISSED_KIND)
    assert missed.state == "cleared"


@pytest.mark.slow
def test_l3_the_worker_process_makes_the_scheduled_backup(
    harness: Harness, settings: Settings, tmp_path: Path
) -> None:
    offsite = write_env_backup(settings, tmp_path, "age")
    env = cli_env(settings, tmp_path, SILVER_BACKUP_INTERVAL_HOURS="24")
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [str(SILVER_AUTH), "worker"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not [run for run in runs(harness, "backup") if run.finished_at]:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.3)
        (run,) = runs(harness, "backup")
        assert (run.trigger, run.outcome) == ("schedule", "succeeded"), run.error
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()
        log.close()
    output = (tmp_path / "worker.log").read_text()
    assert "backups every 24 h" in output and "backup_made" in output
    assert offsite.secrets[0] not in output + recorded_text(harness)
