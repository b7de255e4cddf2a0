"""Backup and drill tests' helpers: seeded data with canary credentials, env.backup for a local restic
repository or an age directory, the real CLI in a subprocess, wiping the live database, reading ops_runs."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyrage import x25519
from sqlalchemy import select, text

from silver_auth.alerts.models import Alert
from silver_auth.audit.chain import seal_pending
from silver_auth.ops.backup.manifest import TableDigest, table_digests
from silver_auth.ops.models import OpsRun
from silver_auth.settings import Settings
from tests.conftest import TABLES
from tests.factories import PASSWORD, Harness
from tests.processes import settings_env
from tests.test_cli import Result

SILVER_AUTH = Path(sys.executable).parent / "silver-auth"
TIMEOUT = 180
needs_restic = pytest.mark.skipif(shutil.which("restic") is None, reason="restic is not installed")


@dataclass
class Seed:
    email: str
    secret_key: str
    key_file: Path
    password_file: Path

    @property
    def canary_options(self) -> list[str]:
        return [
            "--canary-key-file",
            str(self.key_file),
            "--canary-account",
            self.email,
            "--canary-password-file",
            str(self.password_file),
        ]


def private(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    path.chmod(0o600)
    return path


def seed(harness: Harness, tmp_path: Path) -> Seed:
    """An org with a project and a live secret key, owned by a console account with a password; the
    canary files the drill reads; every audit event sealed (so nothing changes behind the test)."""
    email = f"canary-{secrets.token_hex(4)}@example.com"
    owner = harness.user(email)
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    key = harness.key(owner, project["id"])["key"]
    harness.key(owner, project["id"], kind="publishable")
    harness.member(owner, org["id"], "developer")
    harness.run(lambda: seal_pending(harness.runtime.sessionmaker))
    return Seed(
        email,
        key,
        private(tmp_path / "canary" / "key", key + "\n"),
        private(tmp_path / "canary" / "password", PASSWORD + "\n"),
    )


@dataclass
class Offsite:
    kind: str
    secrets: list[str]
    """What must never be printed or recorded: the restic password, the age identity."""
    repository: Path | None = None
    age_dir: Path | None = None
    identity: x25519.Identity | None = None
    env_file: Path | None = None

    def restic_env(self) -> dict[str, str]:
        assert self.env_file is not None
        values = dict(line.split("=", 1) for line in self.env_file.read_text().splitlines() if "=" in line)
        return {"PATH": "/usr/bin:/bin", **values}


def write_env_backup(settings: Settings, tmp_path: Path, kind: str) -> Offsite:
    path = settings.backup_env_path
    if kind == "restic":
        password = f"restic-canary-{secrets.token_hex(8)}"
        repository = tmp_path / "offsite" / "restic"
        private(
            path,
            f"RESTIC_REPOSITORY={repository}\nRESTIC_PASSWORD={password}\n"
            f"RESTIC_CACHE_DIR={tmp_path / 'restic-cache'}\n",
        )
        return Offsite("restic", [password], repository=repository, env_file=path)
    identity = x25519.Identity.generate()
    identity_file = private(tmp_path / "age" / "identity.txt", f"# drill key\n{identity}\n")
    age_dir = tmp_path / "offsite" / "age"
    age_dir.mkdir(parents=True)
    private(
        path,
        f"SILVER_BACKUP_AGE_RECIPIENT={identity.to_public()}\nSILVER_BACKUP_AGE_DIR={age_dir}\n"
        f"SILVER_BACKUP_AGE_IDENTITY_FILE={identity_file}\n",
    )
    return Offsite("age", [str(identity)], age_dir=age_dir, identity=identity, env_file=path)


def cli_env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    prefix = f"backup_drill_{secrets.token_hex(3)}_"
    return settings_env(
        settings,
        HOME=str(tmp_path / "home"),
        NO_COLOR="1",
        SILVER_RESTORE_DRILL_DATABASE_PREFIX=prefix,
        SILVER_LOG_LEVEL="INFO",
        **extra,
    )


def silver_auth(env: dict[str, str], cwd: Path, *args: str) -> Result:
    done = subprocess.run(  # noqa: PLW1510 - the result carries the code
        [str(SILVER_AUTH), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT
    )
    return Result(args, done.returncode, done.stdout, done.stderr)


def live_digests(harness: Harness) -> dict[str, TableDigest]:
    async def work() -> dict[str, TableDigest]:
        async with harness.runtime.engine.connect() as connection:
            return await table_digests(connection)

    return harness.run(work)


def wipe(harness: Harness) -> None:
    """The disaster: every row of every table deleted (children first), straight in SQL."""

    async def work() -> None:
        async with harness.runtime.engine.begin() as connection:
            for table in TABLES:
                await connection.execute(text(f"DELETE FROM {table}"))

    harness.run(work)


def runs(harness: Harness, kind: str) -> list[OpsRun]:
    async def work() -> list[OpsRun]:
        async with harness.runtime.sessionmaker() as db:
            return list(
                await db.scalars(select(OpsRun).where(OpsRun.kind == kind).order_by(OpsRun.started_at))
            )

    return harness.run(work)


def alerts(harness: Harness, kind: str) -> list[Alert]:
    async def work() -> list[Alert]:
        async with harness.runtime.sessionmaker() as db:
            return list(await db.scalars(select(Alert).where(Alert.kind == kind).order_by(Alert.raised_at)))

    return harness.run(work)


def recorded_text(harness: Harness) -> str:
    """Every ops_runs and alerts row, as text: where a leaked secret would be found."""
    parts = []
    for kind in ("backup", "restore_drill"):
        for run in runs(harness, kind):
            parts.append(json.dumps([run.error, run.detail, run.backup_id], default=str))

    async def work() -> list[str]:
        async with harness.runtime.sessionmaker() as db:
            rows = await db.scalars(select(Alert))
            return [
                json.dumps([row.kind, row.subject, row.message, row.context], default=str) for row in rows
            ]

    return "\n".join(parts + harness.run(work))


def scratch_databases(settings: Settings, env: dict[str, str]) -> list[str]:
    """Postgres databases this test's drills left behind (none, if each drill dropped its own)."""
    if settings.is_sqlite:
        return []
    prefix = env["SILVER_RESTORE_DRILL_DATABASE_PREFIX"]
    query = f"SELECT datname FROM pg_database WHERE starts_with(datname, '{prefix}')"
    done = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", query],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()
