"""The `silver-auth` command, run as a newcomer runs it: the real console script in a subprocess.

Every command has `--help`; every failure is one line on stderr with a non-zero exit, never a traceback,
never a secret (README "Commands"; G15 for the password on stdin; G7 for `--platform-admin`).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from silver_auth import cli
from silver_auth.accounts.models import Account
from silver_auth.db.migrate import alembic_config
from tests.factories import PASSWORD, Harness

SILVER_AUTH = Path(sys.executable).parent / "silver-auth"
TIMEOUT = 120
UNREACHABLE_PASSWORD = "unreachable-db-password-7Qx2"
UNREACHABLE_DB = f"postgresql://silver:{UNREACHABLE_PASSWORD}@127.0.0.1:1/silver"

pytestmark = pytest.mark.slow  # every test runs the CLI in a subprocess


@dataclass
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        command = " ".join(("silver-auth", *self.args))
        return f"{command} -> {self.returncode}\nstdout: {self.stdout}\nstderr: {self.stderr}"

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.stdout)
        return body

    def one_line_failure(self) -> str:
        """A failure: non-zero, nothing on stdout, exactly one line on stderr, no traceback."""
        assert self.returncode != 0, self
        assert "Traceback" not in self.stdout + self.stderr, self
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, self
        assert self.stdout.strip() == "", self
        return lines[0]


Runner = Callable[..., Result]


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SILVER_", "SESSION_", "DATABASE_URL", "AUTHENTIK_"))
    }
    env.update({"SILVER_DATA_DIR": str(data_dir), "NO_COLOR": "1", **extra})
    return env


def run_many(calls: list[tuple[tuple[str, ...], dict[str, str], str]], cwd: Path) -> list[Result]:
    """Run independent CLI calls at the same time (each pays the interpreter start-up)."""
    started = []
    for args, env, stdin in calls:
        process = subprocess.Popen(
            [str(SILVER_AUTH), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append((args, process, stdin))
    results = []
    for args, process, stdin in started:
        stdout, stderr = process.communicate(stdin, timeout=TIMEOUT)
        results.append(Result(args, process.returncode, stdout, stderr))
    return results


@pytest.fixture
def run(database_url: str, tmp_path: Path) -> Runner:
    """`run(*args, stdin=..., **env)`: the CLI against this test's migrated database."""

    def call(*args: str, stdin: str = "", **env: str) -> Result:
        merged = cli_env(tmp_path / "cli-data", DATABASE_URL=database_url, **env)
        return run_many([(args, merged, stdin)], tmp_path)[0]

    return call


def account_rows(harness: Harness, email: str) -> int:
    async def work() -> int:
        async with harness.runtime.sessionmaker() as db:
            count = await db.scalar(select(func.count()).select_from(Account).where(Account.email == email))
            return int(count or 0)

    return harness.run(work)


def command_paths() -> list[tuple[str, ...]]:
    """Every command and command group of the Typer app, so a new command is covered by the help test."""
    paths: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:  # typer's (vendored) click command
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(cli.app), ())
    return paths


def test_every_command_has_help(tmp_path: Path) -> None:
    paths = command_paths()
    assert {
        (),
        ("dev",),
        ("serve",),
        ("migrate",),
        ("account",),
        ("account", "create"),
        ("audit",),
        ("audit", "verify"),
        ("account", "deactivate"),
        ("account", "reset-mfa"),
        ("account", "revoke-sessions"),
        ("account", "group"),
        ("account", "group", "add"),
        ("account", "group", "remove"),
    } <= set(paths)
    env = cli_env(tmp_path / "data")
    results = run_many([((*path, "--help"), env, "") for path in paths], tmp_path)
    for path, result in zip(paths, results, strict=True):
        assert result.returncode == 0, result
        assert "Usage:" in result.stdout, result
        assert result.stderr == "", result
        assert " ".join(("silver-auth", *path)) in " ".join(result.stdout.split()), result
    top = " ".join(results[0].stdout.split())
    for name in ("dev", "serve", "migrate", "account", "audit"):
        assert f" {name} " in top, f"`silver-auth --help` does not list {name}"
    create = results[paths.index(("account", "create"))].stdout
    assert "--password-stdin" in create and "--platform-admin" in create
    # help must not touch the data dir (no secrets generated, no database created)
    assert not (tmp_path / "data").exists()


def test_g15_account_create_needs_password_stdin(run: Runner, harness: Harness) -> None:
    line = run("account", "create", "argv@example.com").one_line_failure()
    assert "--password-stdin" in line
    assert account_rows(harness, "argv@example.com") == 0


def test_account_create_then_sign_in(run: Runner, harness: Harness) -> None:
    created = run("account", "create", "New@Example.com", "--password-stdin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created
    assert created.stderr == "", created
    assert "new@example.com" in created.stdout
    assert "SEQN-A" not in created.stdout
    assert PASSWORD not in created.stdout + created.stderr
    me = harness.sign_in("new@example.com").ok("GET", "/console/api/me")
    assert me["account"]["email"] == "new@example.com"
    assert me["account"]["groups"] == []


def test_account_create_duplicate_email_is_one_line(run: Runner, harness: Harness) -> None:
    first = run("account", "create", "dup@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    assert first.returncode == 0, first
    other_password = "another perfectly fine passphrase"
    again = run("account", "create", " DUP@example.COM", "--password-stdin", stdin=other_password + "\n")
    line = again.one_line_failure()
    assert "already exists" in line
    assert other_password not in line
    assert account_rows(harness, "dup@example.com") == 1
    # the first account is untouched: its password still works, the second one does not
    harness.sign_in("dup@example.com")
    refused = harness.client.post(
        "/console/api/sign-in", json={"email": "dup@example.com", "password": other_password}
    )
    assert refused.status_code == 401


def test_account_create_weak_password_is_refused(run: Runner, harness: Harness) -> None:
    password = "short pass"
    result = run("account", "create", "weak@example.com", "--password-stdin", stdin=password + "\n")
    line = result.one_line_failure()
    assert "at least 12 characters" in line
    assert password not in line
    assert account_rows(harness, "weak@example.com") == 0


def test_g7_platform_admin_goes_to_seqn_a(run: Runner, harness: Harness) -> None:
    created = run(
        "account",
        "create",
        "admin@example.com",
        "--password-stdin",
        "--platform-admin",
        stdin=PASSWORD + "\n",
    )
    assert created.returncode == 0, created
    assert "in SEQN-A" in created.stdout
    me = harness.sign_in("admin@example.com").ok("GET", "/console/api/me")
    assert me["account"]["groups"] == ["SEQN-A"]
    # the CLI's account creation is in the audit chain once sealed, and the chain verifies
    assert run("audit", "seal").returncode == 0
    verified = run("audit", "verify")
    assert verified.returncode == 0, verified
    assert "intact" in verified.stdout
    assert " 0 events" not in verified.stdout


def test_account_create_prints_odd_emails_literally(run: Runner, harness: Harness) -> None:
    """Output is plain text: an email that looks like rich markup is neither swallowed nor a crash."""
    created = run("account", "create", "[/b]@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created
    assert "Traceback" not in created.stderr
    assert "([/b]@example.com)" in created.stdout
    assert account_rows(harness, "[/b]@example.com") == 1


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_migrate_is_idempotent(run: Runner, harness: Harness) -> None:
    account = harness.create_account("kept@example.com")
    for _ in range(2):
        result = run("migrate")
        assert result.returncode == 0, result
        assert "newest migration" in result.stdout

    async def versions() -> list[str]:
        async with harness.runtime.sessionmaker() as db:
            return list((await db.scalars(text("SELECT version_num FROM alembic_version"))).all())

    assert harness.run(versions) == [_head()]
    assert account_rows(harness, "kept@example.com") == 1
    assert harness.sign_in("kept@example.com").account_id == account


def test_migrate_creates_the_embedded_default_once(tmp_path: Path) -> None:
    """Without DATABASE_URL: SQLite in the data dir, created 0600 by the first run, left alone by the
    second."""
    data = tmp_path / "fresh"
    env = cli_env(data)
    previous = os.umask(0o022)  # the usual umask, which would leave a new file world-readable
    try:
        (first,) = run_many([(("migrate",), env, "")], tmp_path)
    finally:
        os.umask(previous)
    assert first.returncode == 0, first
    database = data / "silver.db"
    assert database.is_file()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600  # like secrets.json beside it
    secrets_file = (data / "secrets.json").read_bytes()
    (second,) = run_many([(("migrate",), env, "")], tmp_path)
    assert second.returncode == 0, second
    assert "newest migration" in second.stdout
    assert (data / "secrets.json").read_bytes() == secrets_file


def test_an_unmigrated_database_is_refused_in_one_line_that_says_what_to_run(tmp_path: Path) -> None:
    """Pointed at a database that was never migrated, a command says so, not `no such table`."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "silver.db").touch()  # an empty SQLite file: a database with no tables
    env = cli_env(tmp_path / "empty")
    calls: list[tuple[tuple[str, ...], dict[str, str], str]] = [
        (("account", "create", "x@example.com", "--password-stdin"), env, PASSWORD + "\n"),
        (("audit", "verify"), env, ""),
        (("purge",), env, ""),
    ]
    for result in run_many(calls, tmp_path):
        line = result.one_line_failure()
        assert "not migrated" in line and "silver-auth migrate" in line, result
        assert "no such table" not in line, result


def test_failures_are_one_line_without_traceback_or_secret(tmp_path: Path) -> None:
    unreachable = cli_env(tmp_path / "data", DATABASE_URL=UNREACHABLE_DB)
    calls: list[tuple[tuple[str, ...], dict[str, str], str]] = [
        (("migrate",), unreachable, ""),
        (("audit", "verify"), unreachable, ""),
        (("account", "create", "x@example.com", "--password-stdin"), unreachable, PASSWORD + "\n"),
        (("migrate",), cli_env(tmp_path / "data", SILVER_BIND_PORT="not-a-port"), ""),
        (("serve", "--server", "nope"), cli_env(tmp_path / "data"), ""),
    ]
    results = run_many(calls, tmp_path)
    for result in results:
        line = result.one_line_failure()
        assert UNREACHABLE_PASSWORD not in line, result
        assert PASSWORD not in line, result
    for result in results[:3]:
        assert "unreachable" in result.stderr, result
    assert "SILVER_BIND_PORT" in results[3].stderr
    assert "not-a-port" not in results[3].stderr  # names the setting, never echoes its value
    assert "--server" in results[4].stderr


# --- account security commands (G7, G29), audited with the CLI actor -------------------------


def _account_events(harness: Harness, account_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    from silver_auth.audit.models import AuditEvent  # noqa: PLC0415

    async def work() -> list[tuple[str, str, dict[str, Any]]]:
        async with harness.runtime.sessionmaker() as db:
            rows = await db.scalars(
                select(AuditEvent).where(AuditEvent.target == account_id).order_by(AuditEvent.row_id)
            )
            return [(row.action, row.actor, row.metadata_) for row in rows]

    return harness.run(work)


def test_account_deactivate_and_revoke_sessions_end_every_session(run: Runner, harness: Harness) -> None:
    gone = harness.user("gone@example.com")
    lost = harness.user("lost@example.com")
    lost_again = harness.sign_in(lost.email)
    bystander = harness.user()
    deactivated = run("account", "deactivate", "Gone@Example.com")
    assert deactivated.returncode == 0, deactivated
    assert "deactivated gone@example.com; 1 session(s) revoked" in deactivated.stdout
    revoked = run("account", "revoke-sessions", "lost@example.com")
    assert revoked.returncode == 0, revoked
    assert "2 session(s) of lost@example.com revoked" in revoked.stdout
    for user in (gone, lost, lost_again):
        assert user.get("/console/api/me").status_code == 401
    assert bystander.get("/console/api/me").status_code == 200
    refused = harness.client.post("/console/api/sign-in", json={"email": gone.email, "password": PASSWORD})
    assert refused.status_code == 401
    harness.sign_in(lost.email)  # revoking sessions does not lock the account out
    *_, deactivation, refusal = _account_events(harness, gone.account_id)
    assert deactivation == ("account.deactivated", "cli", {"sessions_revoked": 1})
    assert refusal == ("account.sign_in_failed", gone.account_id, {})  # counted and audited
    assert _account_events(harness, lost.account_id)[-1] == (
        "account.sessions_revoked",
        "cli",
        {"sessions_revoked": 2},
    )


def test_account_reset_mfa_removes_the_factor(run: Runner, harness: Harness) -> None:
    from tests.accounts.support import enable_mfa  # noqa: PLC0415

    user = harness.user("phone-lost@example.com")
    enable_mfa(user)
    result = run("account", "reset-mfa", "phone-lost@example.com")
    assert result.returncode == 0, result
    assert "1 factor(s) removed" in result.stdout
    assert user.get("/console/api/mfa").status_code == 401  # its sessions ended
    fresh = harness.sign_in(user.email)  # password only now
    assert fresh.ok("GET", "/console/api/mfa")["enabled"] is False
    assert _account_events(harness, user.account_id)[-1] == (
        "account.mfa_reset",
        "cli",
        {"factors_removed": 1, "sessions_revoked": 1},
    )


def test_g7_account_group_add_and_remove_seqn_a(run: Runner, harness: Harness) -> None:
    admin = harness.user("staff@example.com")
    added = run("account", "group", "add", "staff@example.com", "SEQN-A")
    assert added.returncode == 0, added
    assert "staff@example.com is in SEQN-A" in added.stdout
    assert admin.ok("GET", "/console/api/me")["account"]["groups"] == ["SEQN-A"]
    other = run("account", "group", "add", "staff@example.com", "support", "--create")
    assert other.returncode == 0, other
    removed_other = run("account", "group", "remove", "staff@example.com", "support")
    assert removed_other.returncode == 0, removed_other
    assert admin.get("/console/api/me").status_code == 200  # an ordinary group: sessions stay

    removed = run("account", "group", "remove", "staff@example.com", "SEQN-A")
    assert removed.returncode == 0, removed
    assert "removed from SEQN-A; 1 session(s) revoked" in removed.stdout
    assert admin.get("/console/api/me").status_code == 401  # G29: no stale admin session survives
    assert harness.sign_in(admin.email).ok("GET", "/console/api/me")["account"]["groups"] == []
    actions = [(action, actor) for action, actor, _ in _account_events(harness, admin.account_id)]
    assert actions[-4:] == [
        ("account.group_added", "cli"),
        ("account.group_added", "cli"),
        ("account.group_removed", "cli"),
        ("account.group_removed", "cli"),
    ]


def test_account_security_commands_fail_in_one_line(
    run: Runner, harness: Harness, database_url: str, tmp_path: Path
) -> None:
    harness.create_account("member@example.com")
    env = cli_env(tmp_path / "cli-data", DATABASE_URL=database_url)
    calls: list[tuple[tuple[str, ...], dict[str, str], str]] = [
        (("account", "deactivate", "nobody@example.com"), env, ""),
        (("account", "reset-mfa", "nobody@example.com"), env, ""),
        (("account", "revoke-sessions", "not an email"), env, ""),
        (("account", "group", "add", "nobody@example.com", "SEQN-A"), env, ""),
        (("account", "group", "remove", "member@example.com", "SEQN-A"), env, ""),
        (("account", "group", "add", "member@example.com", " "), env, ""),
        (("account", "deactivate"), env, ""),
    ]
    results = run_many(calls, tmp_path)
    lines = [result.one_line_failure() for result in results[:-1]]
    assert "no account with this email" in lines[0] and "no account with this email" in lines[1]
    assert "not a valid address" in lines[2]
    assert "no account with this email" in lines[3]
    assert "not in the group SEQN-A" in lines[4]
    assert "group name" in lines[5]
    assert results[-1].returncode != 0 and "Traceback" not in results[-1].stderr  # usage error
    assert harness.sign_in("member@example.com")  # nothing changed


# --- the first hour: what a newcomer trips over ------------------------------------------------------


def test_account_create_with_nothing_on_stdin_says_no_password_was_given(
    run: Runner, harness: Harness
) -> None:
    for stdin in ("", "\n"):
        line = run("account", "create", "x@example.com", "--password-stdin", stdin=stdin).one_line_failure()
        assert "no password was given" in line, line
    assert account_rows(harness, "x@example.com") == 0


def test_group_names_are_case_checked_and_unknown_ones_need_create(run: Runner, harness: Harness) -> None:
    user = harness.user("groups@example.com")
    wrong_case = run("account", "group", "add", user.email, "seqn-a").one_line_failure()
    assert "did you mean SEQN-A" in wrong_case, wrong_case
    unknown = run("account", "group", "add", user.email, "support").one_line_failure()
    assert "--create" in unknown, unknown
    assert user.ok("GET", "/console/api/me")["account"]["groups"] == []  # neither was added
    created = run("account", "group", "add", user.email, "support", "--create")
    assert created.returncode == 0, created
    again = run("account", "group", "add", user.email, "support")  # known now: no --create needed
    assert again.returncode == 0, again
    assert user.ok("GET", "/console/api/me")["account"]["groups"] == ["support"]


def test_account_list_shows_every_account_with_groups_mfa_and_state(run: Runner, harness: Harness) -> None:
    admin = harness.user("listed-admin@example.com")
    harness.user("listed-other@example.com")
    assert run("account", "group", "add", admin.email, "SEQN-A").returncode == 0
    assert run("account", "deactivate", "listed-other@example.com").returncode == 0
    listed = run("account", "list")
    assert listed.returncode == 0, listed
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if "@" in line}
    assert "groups=SEQN-A" in lines[admin.email] and " active" in lines[admin.email]
    assert admin.account_id in lines[admin.email]
    assert "deactivated" in lines["listed-other@example.com"]
    assert "mfa=off" in lines["listed-other@example.com"]
    assert PASSWORD not in listed.stdout


def test_a_command_run_away_from_the_data_dir_says_where_it_looked_and_creates_nothing(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = cli_env(tmp_path / "x")
    del env["SILVER_DATA_DIR"]  # the default: .silver in the working directory
    calls: list[tuple[tuple[str, ...], dict[str, str], str]] = [
        (("account", "list"), env, ""),
        (("account", "create", "x@example.com", "--password-stdin"), env, PASSWORD + "\n"),
    ]
    for result in run_many(calls, elsewhere):
        line = result.one_line_failure()
        assert str(elsewhere / ".silver" / "silver.db") in line, line
        assert "SILVER_DATA_DIR" in line, line
    assert list(elsewhere.iterdir()) == []  # no stray data dir, no secrets.json
