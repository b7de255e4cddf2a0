"""`silver-auth backup` (G22, G23, L3): the owner-only env.backup, local copies and their retention, the
dump and manifest agreeing under concurrent writes, and no credential in any output or record."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

import pytest
from pyrage import x25519

from silver_auth.db.session import transaction
from silver_auth.ops.backup import drill
from silver_auth.ops.backup.credentials import read_credentials
from silver_auth.ops.backup.errors import BackupError
from silver_auth.ops.backup.manifest import MANIFEST_NAME, load
from silver_auth.ops.backup.postgres import PgServer
from silver_auth.ops.backup.service import BackupReport, run_backup
from silver_auth.ops.runs import begin_run
from silver_auth.settings import Settings
from tests.factories import Harness
from tests.ops.backup_support import (
    alerts,
    cli_env,
    needs_restic,
    private,
    recorded_text,
    runs,
    seed,
    silver_auth,
    write_env_backup,
)


@pytest.mark.slow
@needs_restic
def test_g23_env_backup_open_to_others_is_refused(
    harness: Harness, settings: Settings, tmp_path: Path
) -> None:
    planted = seed(harness, tmp_path)
    offsite = write_env_backup(settings, tmp_path, "restic")
    settings.backup_env_path.chmod(0o644)
    env = cli_env(settings, tmp_path)

    made = silver_auth(env, tmp_path, "backup")
    line = made.one_line_failure()
    assert "env.backup refused (G23)" in line and f"chmod 600 {settings.backup_env_path}" in line
    assert not any(settings.backup_directory.glob("bkp_*"))  # refused before anything was written
    assert offsite.repository is not None and not offsite.repository.exists()
    (run,) = runs(harness, "backup")
    assert run.outcome == "failed" and run.error is not None and "G23" in run.error
    (alert,) = alerts(harness, "backup_failed")
    assert alert.state == "raised"

    drilled = silver_auth(env, tmp_path, "restore-drill", *planted.canary_options)
    assert "env.backup refused (G23)" in drilled.one_line_failure()
    for text in (made.stdout, made.stderr, drilled.stdout, drilled.stderr, recorded_text(harness)):
        assert offsite.secrets[0] not in text

    settings.backup_env_path.chmod(0o600)
    fixed = silver_auth(env, tmp_path, "backup")
    assert fixed.returncode == 0, fixed
    (alert,) = alerts(harness, "backup_failed")
    assert alert.state == "cleared"


@pytest.mark.slow
def test_g22_without_env_backup_only_a_local_only_backup_is_made(
    harness: Harness, settings: Settings, tmp_path: Path
) -> None:
    env = cli_env(settings, tmp_path)
    refused = silver_auth(env, tmp_path, "backup")
    assert "no offsite credentials" in refused.one_line_failure()
    local = silver_auth(env, tmp_path, "backup", "--local-only", "--json")
    assert local.returncode == 0, local
    body = local.json()
    assert body["local_only"] is True and body["offsite"] == []
    assert (Path(body["local_directory"]) / MANIFEST_NAME).is_file()
    assert [run.outcome for run in runs(harness, "backup")] == ["failed", "succeeded"]


def _backup(harness: Harness, settings: Settings, **options: object) -> BackupReport:
    return harness.run(lambda: run_backup(harness.runtime.sessionmaker, settings, **options))  # type: ignore[arg-type]


def test_g22_local_copies_beyond_the_retention_are_deleted(harness: Harness, settings: Settings) -> None:
    keep_two = settings.model_copy(update={"backup_keep_local": 2})
    made = [_backup(harness, keep_two, local_only=True) for _ in range(3)]
    assert made[2].deleted_local == [made[0].backup_id]
    assert sorted(path.name for path in keep_two.backup_directory.iterdir()) == [
        made[1].backup_id,
        made[2].backup_id,
    ]
    (run,) = [run for run in runs(harness, "backup") if run.backup_id == made[2].backup_id]
    assert run.detail["deleted_local"] == [made[0].backup_id] and run.detail["rows"] > 0


def test_g22_the_dump_and_its_manifest_agree_while_the_service_writes(
    harness: Harness, settings: Settings, tmp_path: Path
) -> None:
    """Rows committed while the backup runs are in neither the dump nor the manifest, or in both: the
    restored dump matches the manifest table for table."""
    sessionmaker = harness.runtime.sessionmaker
    prefixed = settings.model_copy(update={"restore_drill_database_prefix": "backup_consistency_"})

    async def work() -> tuple[int, int]:
        backing_up = asyncio.create_task(run_backup(sessionmaker, prefixed, local_only=True))
        during = 0
        while not backing_up.done():
            async with transaction(sessionmaker) as db:
                await begin_run(db, "monitor")
            during += 1
            await asyncio.sleep(0)
        report = await backing_up
        with tempfile.TemporaryDirectory() as scratch:
            manifest, _ = load(report.directory / MANIFEST_NAME)
            checked = drill.DrillReport("opr_test")
            dump = report.directory / manifest.dump.name
            async with drill._scratch(prefixed, manifest, dump, Path(scratch), checked) as url:
                await drill._check_restored(url, manifest, checked)
        return during, manifest.tables["ops_runs"].rows

    during, in_manifest = harness.run(work)
    assert during > 0
    assert len(runs(harness, "monitor")) == during  # every write committed; the manifest holds a prefix
    assert in_manifest <= during + 1


@pytest.mark.slow
def test_backup_env_is_created_owner_only_and_prints_no_secret(settings: Settings, tmp_path: Path) -> None:
    env = cli_env(settings, tmp_path)
    created = silver_auth(env, tmp_path, "backup-env", "--restic-repository", str(tmp_path / "repo"))
    assert created.returncode == 0, created
    path = settings.backup_env_path
    assert path.stat().st_mode & 0o777 == 0o600
    password = next(line for line in path.read_text().splitlines() if line.startswith("RESTIC_PASSWORD="))
    assert len(password.split("=", 1)[1]) >= 40
    assert password.split("=", 1)[1] not in created.stdout + created.stderr
    again = silver_auth(env, tmp_path, "backup-env", "--restic-repository", str(tmp_path / "repo"))
    assert "exists already" in again.one_line_failure()

    (tmp_path / "age").mkdir()
    identity = tmp_path / "keys" / "backup.age"
    aged = silver_auth(
        env,
        tmp_path,
        "backup-env",
        "--force",
        "--age-dir",
        str(tmp_path / "age"),
        "--age-new-identity",
        str(identity),
    )
    assert aged.returncode == 0, aged
    assert identity.stat().st_mode & 0o777 == 0o600 and path.stat().st_mode & 0o777 == 0o600
    secret = next(line for line in identity.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-"))
    assert secret not in aged.stdout + aged.stderr
    credentials = read_credentials(path)
    assert credentials.age is not None and credentials.restic is None
    assert credentials.age.recipients == (str(x25519.Identity.from_str(secret).to_public()),)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("RESTIC_REPOSITORY=/tmp/r\n", "set one of RESTIC_PASSWORD"),
        ("RESTIC_PASSWORD=x\n", "RESTIC_REPOSITORY (or RESTIC_REPOSITORY_FILE) is missing"),
        ("SILVER_BACKUP_AGE_RECIPENT=age1x\n", "unknown variable SILVER_BACKUP_AGE_RECIPENT"),
        ("SILVER_BACKUP_AGE_RECIPIENT=not-a-key\nSILVER_BACKUP_AGE_DIR=/tmp\n", "not an age1… public key"),
        ("AWS_REGION=x\n", "names no offsite target"),
        ("RESTIC_REPOSITORY\n", "RESTIC_REPOSITORY has no value"),
    ],
)
def test_g23_env_backup_mistakes_are_named_in_one_line(tmp_path: Path, content: str, reason: str) -> None:
    path = private(tmp_path / "env.backup", content)
    with pytest.raises(BackupError) as refused:
        read_credentials(path)
    assert reason in refused.value.detail and "\n" not in refused.value.detail


def test_g23_an_age_directory_that_is_not_mounted_is_refused(tmp_path: Path) -> None:
    recipient = x25519.Identity.generate().to_public()
    path = private(
        tmp_path / "env.backup",
        f"SILVER_BACKUP_AGE_RECIPIENT={recipient}\nSILVER_BACKUP_AGE_DIR={tmp_path / 'remote'}\n",
    )
    with pytest.raises(BackupError, match="is the remote mounted"):
        read_credentials(path)


def test_offsite_credentials_are_scrubbed_from_messages(tmp_path: Path) -> None:
    path = private(
        tmp_path / "env.backup",
        "RESTIC_REPOSITORY=s3:https://s3.example.com/b\nRESTIC_PASSWORD=hunter2-canary\n"
        "AWS_SECRET_ACCESS_KEY=aws-canary-secret\n",
    )
    credentials = read_credentials(path)
    scrubbed = credentials.scrub("Fatal: hunter2-canary rejected, aws-canary-secret too")
    assert "canary" not in scrubbed and scrubbed.count("[REDACTED]") == 2


def test_pg_dump_gets_the_password_through_its_environment(settings: Settings) -> None:
    with_password = settings.model_copy(
        update={
            "database_url": type(settings.database_url)(
                "postgresql://silver:pw-canary-9@db.internal:6543/silver"
            )
        }
    )
    server = PgServer.from_settings(with_password)
    env = server.environment()
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGDATABASE"]) == (
        "db.internal",
        "6543",
        "silver",
        "silver",
    )
    assert env["PGPASSWORD"] == "pw-canary-9"
    assert "pw-canary-9" not in server.scrub("could not connect: password pw-canary-9 refused")


@pytest.mark.slow
def test_the_database_password_reaches_no_output(
    harness: Harness, settings: Settings, tmp_path: Path
) -> None:
    """Postgres here trusts loopback, so a password in DATABASE_URL is accepted and ignored: enough to
    show it is not printed or recorded by a backup that uses it."""
    if settings.is_sqlite:
        pytest.skip("Postgres only")
    url = settings.sqlalchemy_url.replace(
        "postgresql+asyncpg://postgres@", "postgresql://postgres:pg-canary-77@"
    )
    env = cli_env(settings, tmp_path, DATABASE_URL=url)
    made = silver_auth(env, tmp_path, "backup", "--local-only", "--json")
    assert made.returncode == 0, made
    assert "pg-canary-77" not in made.stdout + made.stderr + recorded_text(harness)
    assert json.loads(made.stdout)["database"] == "postgresql"
