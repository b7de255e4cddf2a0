"""deploy/systemd: the units systemd itself accepts (`systemd-analyze verify`, no warning), each running a
real `silver-auth` command from the shared environment file as the unprivileged service user."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.test_runbooks import COMMANDS

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
INSTALLED_CLI = "/opt/silver-auth/bin/silver-auth"
ENVIRONMENT_FILE = "/etc/silver-auth/silver-auth.env"
OURS = (
    "silver-auth.service",
    "silver-auth-worker.service",
    "silver-auth-purge.service",
    "silver-auth-purge.timer",
)
"""The API, the worker and the daily purge (the launch monitor's units have tests of their own)."""
SERVICES = [UNITS / name for name in OURS if name.endswith(".service")]


def _service(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser["Service"]


def test_the_units_are_the_api_the_worker_and_the_daily_purge() -> None:
    assert all((UNITS / name).is_file() for name in OURS)


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.name)
def test_each_service_runs_a_real_command_as_the_service_user(path: Path) -> None:
    service = _service(path)
    assert service["User"] == service["Group"] == "silver-auth"
    assert service["EnvironmentFile"] == ENVIRONMENT_FILE
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert service["StateDirectoryMode"] == "0700"  # the data directory, owner-only (G23)
    for key in ("ExecStartPre", "ExecStart"):
        if key in service:
            binary, *words = service[key].split()
            assert binary == INSTALLED_CLI
            assert tuple(words) in COMMANDS and not getattr(COMMANDS[tuple(words)], "commands", None)


def test_systemd_accepts_every_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    environment = tmp_path / "silver-auth.env"
    environment.write_text("SILVER_ENV=production\n")
    cli = Path(sys.executable).parent / "silver-auth"
    for name in OURS:
        text = (
            (UNITS / name)
            .read_text()
            .replace(INSTALLED_CLI, str(cli))
            .replace(ENVIRONMENT_FILE, str(environment))
        )
        (tmp_path / name).write_text(text)
    units = [str(tmp_path / name) for name in OURS]
    done = subprocess.run(
        [analyze, "verify", *units], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr  # an unknown key is only a warning, but a mistake
