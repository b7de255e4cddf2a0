"""The restore drill end to end, on this run's backend (SQLite or Postgres), through the real CLI: seed,
back up (restic or age), delete every row, drill; every row comes back, the canary key verifies and the
canary account signs in on the restored copy; a backup edited after it was made fails the drill, which
is recorded and alerted (G22, G24, L3, L4). No secret reaches any output or record."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pyrage
import pytest

from silver_auth.ops.backup.manifest import MANIFEST_NAME
from silver_auth.settings import Settings
from tests.factories import PASSWORD, Harness
from tests.ops.backup_support import (
    Offsite,
    alerts,
    cli_env,
    live_digests,
    needs_restic,
    recorded_text,
    runs,
    scratch_databases,
    seed,
    silver_auth,
    wipe,
    write_env_backup,
)

OFFSITE_KINDS = [pytest.param("restic", marks=needs_restic), "age"]
pytestmark = pytest.mark.slow  # the CLI and the drill's app run in subprocesses


def _no_secret_in(secrets: list[str], *texts: str) -> None:
    for secret in secrets:
        for where in texts:
            assert secret not in where


@pytest.mark.parametrize("kind", OFFSITE_KINDS)
def test_g24_backup_wipe_drill_every_row_comes_back_and_the_canary_signs_in(
    harness: Harness, settings: Settings, tmp_path: Path, kind: str
) -> None:
    planted = seed(harness, tmp_path)
    offsite = write_env_backup(settings, tmp_path, kind)
    before = live_digests(harness)
    env = cli_env(settings, tmp_path)

    made = silver_auth(env, tmp_path, "backup", "--json")
    assert made.returncode == 0, made
    backup = made.json()
    assert backup["ok"] and backup["offsite"][0]["kind"] == kind
    local = Path(backup["local_directory"])
    assert local.parent.stat().st_mode & 0o777 == 0o700
    assert {path.stat().st_mode & 0o777 for path in local.iterdir()} == {0o600}
    manifest = json.loads((local / MANIFEST_NAME).read_text())
    # The manifest describes exactly what the database held (ops_runs gains the backup's own run).
    for name, digest in before.items():
        if name != "ops_runs":
            assert manifest["tables"][name] == {"rows": digest.rows, "sha256": digest.sha256}, name
    assert manifest["tables"]["accounts"]["rows"] >= 2 and manifest["tables"]["api_keys"]["rows"] == 2

    wipe(harness)
    assert all(digest.rows == 0 for digest in live_digests(harness).values())

    drilled = silver_auth(env, tmp_path, "restore-drill", "--json", *planted.canary_options)
    assert drilled.returncode == 0, drilled
    report = drilled.json()
    assert report["backup_id"] == backup["backup_id"] and report["source"] == kind
    assert (
        report["rows"]
        == backup["rows"]
        == sum(manifest_table["rows"] for manifest_table in manifest["tables"].values())
    )
    checks = report["checks"]
    assert checks["row_counts"] == f"{len(before)} tables, {backup['rows']} rows"
    assert checks["checksums"] == f"{len(before)} tables match"
    assert checks["dump_digest"] == checks["manifest_seal"] == "matches"
    assert checks["canary_sign_in"] == "signed in"
    assert checks["canary_backend_key"].startswith("verified (project prj_")
    assert checks["audit_chain"].endswith("events verified") and not checks["audit_chain"].startswith("0 ")

    # Recorded in the live database (wiped, so the backup's own record is gone: the drill said so).
    assert checks["live_record"] == "not in this database (skipped)"
    (drill,) = runs(harness, "restore_drill")
    assert (drill.outcome, drill.trigger, drill.backup_id) == ("succeeded", "command", backup["backup_id"])
    assert drill.detail["checks"] == checks and drill.duration_ms is not None
    assert scratch_databases(settings, env) == []
    _no_secret_in(
        [*offsite.secrets, planted.secret_key, PASSWORD],
        made.stdout,
        made.stderr,
        drilled.stdout,
        drilled.stderr,
        recorded_text(harness),
        (local / MANIFEST_NAME).read_text(),
    )


def _tamper_restic(offsite: Offsite, tmp_path: Path, what: str, backup_id: str) -> None:
    """What someone holding the repository password can do: restore, edit, back up again (newest)."""
    import subprocess  # noqa: PLC0415

    work = tmp_path / "attacker"
    env = offsite.restic_env()
    subprocess.run(
        ["restic", "restore", "latest", "--target", str(work)], env=env, check=True, capture_output=True
    )
    _edit(work / backup_id, what)
    subprocess.run(
        ["restic", "backup", "--tag", "silver-auth", "--tag", backup_id, backup_id],
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
    )


def _tamper_age(offsite: Offsite, tmp_path: Path, what: str, backup_id: str) -> None:
    """What anyone holding the public recipient can do: a new file under the same name."""
    assert offsite.age_dir is not None and offsite.identity is not None
    encrypted = offsite.age_dir / f"{backup_id}.tar.age"
    work = tmp_path / "attacker"
    work.mkdir()
    (work / "b.tar").write_bytes(pyrage.decrypt(encrypted.read_bytes(), [offsite.identity]))
    with tarfile.open(work / "b.tar") as archive:
        archive.extractall(work, filter="data")
    _edit(work / backup_id, what)
    with tarfile.open(work / "edited.tar", "w") as archive:
        archive.add(work / backup_id, arcname=backup_id)
    encrypted.write_bytes(pyrage.encrypt((work / "edited.tar").read_bytes(), [offsite.identity.to_public()]))


def _edit(directory: Path, what: str) -> None:
    manifest_path = directory / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    if what == "dump":
        dump = directory / manifest["dump"]["name"]
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0x01
        dump.write_bytes(bytes(data))
    else:  # one more account than there was, as a forger hiding a deletion would claim
        manifest["tables"]["accounts"]["rows"] += 1
        manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("what", ["dump", "manifest"])
@pytest.mark.parametrize("kind", OFFSITE_KINDS)
def test_g24_a_backup_edited_after_it_was_made_fails_the_drill(
    harness: Harness, settings: Settings, tmp_path: Path, kind: str, what: str
) -> None:
    planted = seed(harness, tmp_path)
    offsite = write_env_backup(settings, tmp_path, kind)
    env = cli_env(settings, tmp_path)
    made = silver_auth(env, tmp_path, "backup", "--json")
    assert made.returncode == 0, made
    backup_id = made.json()["backup_id"]
    (_tamper_restic if kind == "restic" else _tamper_age)(offsite, tmp_path, what, backup_id)

    drilled = silver_auth(env, tmp_path, "restore-drill", *planted.canary_options)
    line = drilled.one_line_failure()
    assert "was edited after the backup was made" in line, line
    assert ("the dump of" if what == "dump" else "the manifest of") in line
    (drill,) = runs(harness, "restore_drill")
    assert drill.outcome == "failed" and drill.backup_id == backup_id
    assert drill.error is not None and "was edited after the backup was made" in drill.error
    (alert,) = alerts(harness, "restore_drill_failed")
    assert alert.state == "raised" and "edited" in alert.message
    assert scratch_databases(settings, env) == []

    # A good backup made afterwards drills clean, and the alert clears.
    again = silver_auth(env, tmp_path, "backup")
    assert again.returncode == 0, again
    fixed = silver_auth(env, tmp_path, "restore-drill", *planted.canary_options)
    assert fixed.returncode == 0, fixed
    assert "passed" in fixed.stdout
    (alert,) = alerts(harness, "restore_drill_failed")
    assert alert.state == "cleared"
    _no_secret_in(
        [*offsite.secrets, planted.secret_key, PASSWORD],
        *(result.stdout + result.stderr for result in (made, drilled, again, fixed)),
        recorded_text(harness),
    )


def test_g24_the_drill_refuses_without_canary_credentials(
    harness: Harness, settings: Settings, tmp_path: Path
) -> None:
    write_env_backup(settings, tmp_path, "age")
    env = cli_env(settings, tmp_path)
    result = silver_auth(env, tmp_path, "restore-drill")
    line = result.one_line_failure()
    assert "no canary secret key" in line and "SILVER_RESTORE_DRILL_CANARY_KEY_FILE" in line
    (drill,) = runs(harness, "restore_drill")
    assert drill.outcome == "failed"
