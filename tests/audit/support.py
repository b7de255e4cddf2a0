"""Helpers for the audit tests: rows in insertion or chain order, sealing on demand, tampering as
someone with database access would (plain SQL on a connection, never the ORM), the CLI as run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.audit.chain import ChainReport, seal_pending, verify_chain
from silver_auth.audit.models import AuditEvent
from tests.factories import ConsoleUser, Harness


def events(harness: Harness) -> list[AuditEvent]:
    """Every event in insertion order, sealed or not."""

    async def work() -> list[AuditEvent]:
        async with harness.runtime.sessionmaker() as db:
            return list((await db.scalars(select(AuditEvent).order_by(AuditEvent.row_id))).all())

    return harness.run(work)


def seal(harness: Harness) -> int:
    """Seal now, rather than wait for the app's own sealer."""
    return harness.run(lambda: seal_pending(harness.runtime.sessionmaker))


def sealed_events(harness: Harness) -> list[AuditEvent]:
    """Seal, then every event in chain order."""
    seal(harness)

    async def work() -> list[AuditEvent]:
        async with harness.runtime.sessionmaker() as db:
            return list((await db.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all())

    return harness.run(work)


async def verify_with(sessionmaker: async_sessionmaker[AsyncSession]) -> ChainReport:
    async with sessionmaker() as db:
        return await verify_chain(db)


def verify(harness: Harness) -> ChainReport:
    return harness.run(lambda: verify_with(harness.runtime.sessionmaker))


def tamper(harness: Harness, *statements: Any) -> None:
    """Run statements in one transaction on a bare connection: what an intruder in the database does."""

    async def work() -> None:
        async with harness.runtime.engine.begin() as connection:
            for statement in statements:
                await connection.execute(statement)

    harness.run(work)


def cli(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`silver-auth audit …` as an operator runs it: a separate process, settings from the env."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": database_url,
        "SILVER_DATA_DIR": str(tmp_path / "cli-data"),
        "COLUMNS": "80",
    }
    script = Path(sys.executable).with_name("silver-auth")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "silver_auth.cli"]
    return subprocess.run(  # noqa: PLW1510 - the exit code is asserted by the callers
        [*command, "audit", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def cli_verify(harness: Harness, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return cli(harness.settings.sqlalchemy_url, tmp_path, "verify")


def assert_cli_names(harness: Harness, tmp_path: Path, *fragments: str) -> str:
    """`audit verify` fails with one line that names the broken link."""
    result = cli_verify(harness, tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.stderr
    return lines[0]


def audit(user: ConsoleUser, org_id: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = user.ok("GET", f"/console/api/orgs/{org_id}/audit", params=params)
    return body


def busy_org(harness: Harness) -> tuple[ConsoleUser, dict[str, Any], dict[str, Any]]:
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    for _ in range(3):
        harness.key(owner, project["id"])
    return owner, org, project
