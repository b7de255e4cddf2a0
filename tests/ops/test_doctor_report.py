"""`doctor`'s report, on either database: every guide line in the output with one of the four statuses,
the vendored guide word for word, exit codes, development's warnings, an unreachable database, the
Authentik lines against the contract server, and no secret in any output (canaries)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from silver_auth.ops.doctor import DoctorOptions, DoctorReport, run_doctor
from silver_auth.ops.doctor.catalogue import GUIDE
from silver_auth.ops.doctor.checks import AREAS, area_lines
from silver_auth.ops.doctor.checks.steps import ENFORCED_BY_CODE, OPERATOR_STEPS
from silver_auth.ops.doctor.report import STATUSES, Scrubber
from silver_auth.settings import Settings
from tests.authentik.conftest import authentik_settings, contract, contract_server, least_privilege_token
from tests.conftest import base_settings
from tests.ops.doctor_support import Records, production_settings, seed, strong
from tests.peers.authentik_contract import RunningContract
from tests.processes import free_port

__all__ = ["contract", "contract_server"]  # the contract server's fixtures, used by the Authentik tests

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).with_name("silver-auth")
EVERY_LINE = [f"G{n}" for n in range(1, 40)] + [f"L{n}" for n in range(1, 9)]
GUIDE_LINE = re.compile(r"^- ([GL]\d+)\s+(.+)$", re.MULTILINE)


def test_the_catalogue_is_the_vendored_guide_word_for_word() -> None:
    vendored = (ROOT / "docs" / "hardening-guide.md").read_text()
    assert [(line.id, line.text) for line in GUIDE] == GUIDE_LINE.findall(vendored)
    assert [line.id for line in GUIDE] == EVERY_LINE


def test_every_line_has_exactly_one_check_area() -> None:
    owners = [line for area in AREAS for line in area_lines(area)]
    assert sorted(owners) == sorted(EVERY_LINE), "a line with no check, or with two"


def test_every_test_named_as_enforcing_a_line_exists() -> None:
    """ "enforced by the code" is a pass only while the test that proves it is there."""
    for line, (_, node) in ENFORCED_BY_CODE.items():
        path, _, name = node.partition("::")
        source = (ROOT / path).read_text()
        assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), f"{line}: {node} is gone"
        assert name.startswith(f"test_{line.lower()}_") or line in ("G25",), node


def test_operator_steps_link_a_runbook_anchor_of_their_line() -> None:
    for line, (_, anchor, _) in OPERATOR_STEPS.items():
        # a section may serve several lines: `g9-g19-token-and-secret-rotation`
        assert re.fullmatch(rf"(g\d+-)*{line.lower()}-[a-z0-9-]+", anchor), anchor


def doctor(settings: Settings, **options: Any) -> DoctorReport:
    return asyncio.run(run_doctor(settings, DoctorOptions(**options)))


def statuses(report: DoctorReport) -> dict[str, str]:
    return {finding.line: finding.status for finding in report.findings}


def test_development_reports_every_line_and_fails_none(settings: Settings) -> None:
    """The embedded default breaks production's lines by design: they warn, saying so."""
    report = doctor(settings)
    assert list(statuses(report)) == EVERY_LINE
    assert set(statuses(report).values()) <= set(STATUSES)
    assert report.exit_code() == 0
    g11 = next(finding for finding in report.findings if finding.line == "G11")
    assert g11.status == "warn" and g11.detail.startswith("development: "), g11
    assert report.exit_code(strict=True) == 1  # warnings fail only with --strict


def test_without_url_the_edge_lines_warn_not_pass(tmp_path: Path, database_url: str) -> None:
    settings = production_settings(tmp_path, database_url, free_port(), password=strong())
    report = doctor(settings)
    for line in ("G1", "G2", "G3"):
        finding = next(f for f in report.findings if f.line == line)
        assert finding.status == "warn" and "pass --url" in finding.detail, finding


def test_an_unreachable_database_fails_its_lines_with_the_reason(tmp_path: Path) -> None:
    closed = free_port()
    password = strong()
    settings = production_settings(
        tmp_path, f"postgresql+asyncpg://silver@127.0.0.1:{closed}/silver", free_port(), password=password
    )
    report = doctor(settings)
    database_lines = ["G6", "G7", "G22", "G24", "G30", "L1", "L2", "L3", "L4", "L5", "L6"]
    for line in database_lines:
        finding = next(f for f in report.findings if f.line == line)
        assert finding.status == "fail" and "database unreachable" in finding.detail, finding
    assert password not in report.json_text()
    assert report.exit_code() == 1


def test_a_database_not_migrated_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    settings = base_settings(tmp_path, DATABASE_URL=f"sqlite+aiosqlite:///{empty}", SILVER_ENV="development")
    report = doctor(settings)
    g30 = next(f for f in report.findings if f.line == "G30")
    assert "not migrated" in g30.detail and "silver-auth migrate" in g30.detail, g30


def test_the_scrubber_removes_every_configured_secret_and_secret_shapes(tmp_path: Path) -> None:
    canary = "canary-" + secrets.token_hex(12)
    settings = base_settings(
        tmp_path, SESSION_SECRET=canary + "-session", SILVER_ALERT_URLS=f"ntfy://{canary}@ntfy.sh/x"
    )
    scrub = Scrubber(settings)
    text = f"got {canary}-session and ntfy://{canary}@ntfy.sh/x and sk_live_{'a' * 24}"
    assert canary not in scrub(text) and "sk_live_" not in scrub(text)


# --- the command ---------------------------------------------------------------------------------------


def run_cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), "LANG": "C.UTF-8", "COLUMNS": "200"}
    return subprocess.run(
        [str(CLI), "doctor", *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def canary_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """A production deployment whose every secret is a canary, with weak spots so lines fail."""
    return {
        "SILVER_ENV": "production",
        "SILVER_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": database_url,
        "SESSION_SECRET": "canary-session-" + secrets.token_hex(16),
        "SILVER_KEY_PEPPER": "canary-pepper-" + secrets.token_hex(16),
        "SILVER_SEALING_KEYS": "c1:" + "Y2FuYXJ5LXNlYWxpbmcta2V5LTMyLWJ5dGVzLi4uLi4=",
        "AUTHENTIK_PG_PASS": "canary-authentik-" + secrets.token_hex(8),
        "SILVER_ALERT_URLS": f"ntfy://canary-alert-{secrets.token_hex(8)}@ntfy.invalid/topic",
        "SILVER_REDIS_URL": f"redis://:canary-redis-{secrets.token_hex(8)}@127.0.0.1:{free_port()}/0",
        "SILVER_ACCOUNTS_URL": "https://accounts.seqn.in",
        "SILVER_AUTH_URL": "http://auth.seqn.in",  # G1 fails
        "SESSION_COOKIE_SECURE": "false",  # G11 fails
    }


@pytest.mark.slow
def test_json_lists_every_line_with_a_status_and_prints_no_secret(tmp_path: Path, database_url: str) -> None:
    env = canary_env(tmp_path, database_url)
    result = run_cli(env, "--json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    body = json.loads(result.stdout)
    assert [entry["line"] for entry in body["lines"]] == EVERY_LINE
    for entry in body["lines"]:
        assert entry["status"] in STATUSES, entry
        assert set(entry) == {"line", "title", "status", "check", "detail", "fix", "runbook"}
        assert (entry["runbook"] is not None) == (entry["status"] == "operator step"), entry
    by_line = {entry["line"]: entry for entry in body["lines"]}
    assert by_line["G1"]["status"] == "fail" and by_line["G11"]["status"] == "fail"
    assert by_line["G6"]["runbook"] is None
    assert by_line["G9"]["runbook"] == "docs/runbooks.md#g9-g19-token-and-secret-rotation"
    assert body["environment"] == "production" and body["counts"]["fail"] >= 2
    output = result.stdout + result.stderr
    for name in (
        "SESSION_SECRET",
        "SILVER_KEY_PEPPER",
        "AUTHENTIK_PG_PASS",
        "SILVER_ALERT_URLS",
        "SILVER_REDIS_URL",
    ):
        secret = env[name].split("://", 1)[-1].split("@", 1)[0].lstrip(":")
        assert secret not in output, name
    assert "canary-" not in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_the_table_names_every_line_and_exits_0_without_a_fail(tmp_path: Path, database_url: str) -> None:
    env = {"SILVER_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": database_url}
    result = run_cli(env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for line in EVERY_LINE:
        assert re.search(rf"^│ {line} ", result.stdout, re.MULTILINE), line
    assert "operator step" in result.stdout and "docs/runbooks.md#g6" not in result.stdout
    strict = run_cli(env, "--strict", cwd=tmp_path)
    assert strict.returncode == 1  # development warns on production's lines
    assert not (tmp_path / "data" / "secrets.json").exists(), "doctor only looks: it writes nothing"


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["--url", "http://auth.seqn.in"],
        ["--accounts-url", "auth.seqn.in"],
        ["--ca-file", "/nonexistent/ca.pem"],
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str]) -> None:
    result = run_cli({"SILVER_DATA_DIR": str(tmp_path / "data")}, *args, cwd=tmp_path)
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr


# --- Authentik (SILVER_IDENTITY=authentik), against the contract server ---------------------------------


def authentik_doctor(
    tmp_path: Path, database_url: str, contract: RunningContract, token: str
) -> DoctorReport:
    settings = authentik_settings(tmp_path, database_url, contract.url, token)
    return doctor(settings)


def test_g8_a_least_privilege_token_passes_and_seqn_a_is_read_from_authentik(
    tmp_path: Path, database_url: str, contract: RunningContract
) -> None:
    state = contract.state
    token = least_privilege_token(state)
    admin = state.add_user("ops-admin", groups=("SEQN-A",))
    state.add_device(admin["pk"])
    report = authentik_doctor(tmp_path, database_url, contract, token)
    found = statuses(report)
    assert (found["G6"], found["G7"], found["G8"], found["L5"], found["L6"]) == ("pass",) * 5, (
        report.json_text()
    )
    g6 = next(f for f in report.findings if f.line == "G6")
    assert "ops-admin@example.com" in g6.detail


def test_g8_an_over_privileged_token_fails(
    tmp_path: Path, database_url: str, contract: RunningContract
) -> None:
    state = contract.state
    user = state.add_user("silver-provisioner", superuser=True)
    token = state.add_token(user["pk"])
    report = authentik_doctor(tmp_path, database_url, contract, token)
    g8 = next(f for f in report.findings if f.line == "G8")
    assert g8.status == "warn" and "development: over-privileged" in g8.detail, g8  # development: a warning
    assert token not in report.json_text()


def test_g6_g7_an_authentik_admin_without_a_device_or_deactivated_is_named(
    tmp_path: Path, database_url: str, contract: RunningContract
) -> None:
    state = contract.state
    token = least_privilege_token(state)
    state.add_user("no-device", groups=("SEQN-A",))
    gone = state.add_user("left-the-company", groups=("SEQN-A",))
    gone["is_active"] = False
    settings = authentik_settings(tmp_path, database_url, contract.url, token, SILVER_ENV="production")
    report = doctor(settings)
    by_line = {f.line: f for f in report.findings}
    assert by_line["G6"].status == "fail" and "no-device@example.com" in by_line["G6"].detail
    assert by_line["G7"].status == "fail" and "left-the-company@example.com" in by_line["G7"].detail
    assert "left-the-company" not in by_line["G6"].detail  # a deactivated member is G7's, not G6's


def test_records_seeded_for_a_deployment_are_what_doctor_reads(tmp_path: Path, database_url: str) -> None:
    """The seeding itself, on either database: a production deployment with every record in place
    passes the database's lines (the acceptance test runs on Postgres with the rest of the stack)."""
    from tests.alerts.support import json_url  # noqa: PLC0415
    from tests.webhooks.support import receiver  # noqa: PLC0415

    with receiver() as channel:
        settings = production_settings(
            tmp_path, database_url, free_port(), password=strong(), SILVER_ALERT_URLS=json_url(channel)
        )
        seed(settings, Records())
        report = doctor(settings)
    found = statuses(report)
    for line in ("G6", "G7", "G22", "G24", "G30", "L1", "L2", "L3", "L4", "L5", "L6"):
        assert found[line] == "pass", (line, report.json_text())
