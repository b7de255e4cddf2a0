"""The systemd unit and timer that run the monitor every minute (L1): valid for systemd (checked by
`systemd-analyze verify` where the machine has it), hardened, and running a `silver-auth monitor`
invocation the command's own parser accepts."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import typer

from silver_auth import cli
from silver_auth.ops.monitor import MonitorTarget
from tests.test_cli import SILVER_AUTH

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
SERVICE = UNITS / "silver-auth-monitor.service"
TIMER = UNITS / "silver-auth-monitor.timer"
INSTALLED_PROGRAM = "/opt/silver-auth/bin/silver-auth"


def directives(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections, each directive with every value it is given (some repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        name, _, value = line.partition("=")
        current.setdefault(name.strip(), []).append(value.strip())
    return sections


def test_l1_the_service_runs_a_valid_monitor_invocation_hardened() -> None:
    service = directives(SERVICE)["Service"]
    [exec_start] = service["ExecStart"]
    program, command, *args = shlex.split(exec_start)
    assert (program, command) == (INSTALLED_PROGRAM, "monitor")
    monitor = typer.main.get_command(cli.app).commands["monitor"]  # type: ignore[attr-defined]
    params = monitor.make_context("monitor", list(args)).params  # raises on anything it would refuse
    assert params["as_json"] is True and params["every"] is None  # one run, its exit code for systemd
    target = MonitorTarget.parse(params["base_url"], accounts_url=params["accounts_url"])
    assert (target.base_url, target.accounts_url) == ("https://auth.seqn.in", "https://accounts.seqn.in")
    assert service["Type"] == ["oneshot"]
    assert service["EnvironmentFile"] == ["/etc/silver-auth/silver-auth.env"]
    assert service["User"] == ["silver-auth"]
    hardening = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }
    assert {name: service.get(name, ["missing"])[-1] for name in hardening} == hardening


def test_l1_the_timer_starts_the_service_every_minute_and_catches_up() -> None:
    timer = directives(TIMER)
    assert timer["Timer"]["OnCalendar"] == ["minutely"]
    assert timer["Timer"]["Persistent"] == ["true"]
    assert timer["Timer"]["Unit"] == [SERVICE.name]
    assert timer["Install"]["WantedBy"] == ["timers.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not on this machine")
def test_l1_systemd_accepts_the_units_and_rates_the_service_well_hardened(tmp_path: Path) -> None:
    """`verify` checks that the program exists: the copies run this checkout's `silver-auth`."""
    for unit in (SERVICE, TIMER):
        text = unit.read_text().replace(INSTALLED_PROGRAM, str(SILVER_AUTH))
        (tmp_path / unit.name).write_text(text)
    copies = [str(tmp_path / SERVICE.name), str(tmp_path / TIMER.name)]
    verify = subprocess.run(
        ["systemd-analyze", "verify", *copies], capture_output=True, text=True, check=False
    )
    # An unknown or misspelt directive is only a warning there (exit 0): any line at all is a failure here.
    assert (verify.returncode, verify.stdout + verify.stderr) == (0, ""), verify
    # Exposure 0.0 (locked down) to 10.0 (nothing restricted); --threshold is ten times that.
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=25", copies[0]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert security.returncode == 0, security.stdout[-2000:] + security.stderr
