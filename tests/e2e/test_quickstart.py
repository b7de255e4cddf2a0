"""Issue 2 acceptance, tried the way a newcomer does: `silver-auth dev` in a fresh directory, an account
from the CLI, an org, a project and a secret key through the API; the key works, and then the full key
never appears again — not in any answer, not in the database files, not in the logs (G16, G17, G18).

The real console script runs as a subprocess on a free port; nothing is mocked. The embedded default is
SQLite, so this module does not use the test database and is skipped on the Postgres run.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("SILVER_TEST_DB", "sqlite") == "postgres",
        reason="the embedded default is SQLite; this test does not use the test database",
    ),
]

SILVER_AUTH = Path(sys.executable).parent / "silver-auth"
PASSWORD = "newcomer passphrase, long enough"
EMAIL = "newcomer@example.com"
STARTUP_SECONDS = 60  # bounded; generous because a loaded CI box imports slowly
STOP_SECONDS = 20


def newcomer_env(port: int | None = None) -> dict[str, str]:
    """The shell of someone who just cloned the repo: no SILVER_*/SESSION_*/DATABASE_URL settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SILVER_", "SESSION_", "DATABASE_URL", "AUTHENTIK_"))
    }
    env["NO_COLOR"] = "1"
    if port is not None:
        env["SILVER_BIND_PORT"] = str(port)
    return env


@dataclass
class DevServer:
    """`silver-auth dev` run in `cwd`; its stdout/stderr go to files beside (not in) the data dir."""

    cwd: Path
    logs: Path
    runs: list[tuple[Path, Path]] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None
        self.port = free_port()
        run = len(self.runs) + 1
        stdout, stderr = self.logs / f"dev-{run}.stdout", self.logs / f"dev-{run}.stderr"
        self.runs.append((stdout, stderr))
        with stdout.open("wb") as out, stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [str(SILVER_AUTH), "dev"],
                cwd=self.cwd,
                env=newcomer_env(self.port),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"silver-auth dev exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"silver-auth dev did not answer /health within {STARTUP_SECONDS}s:\n{self.output()}")

    def stop(self) -> bool:
        """SIGTERM, then wait; True when it shut down by itself in time.

        uvicorn re-raises the captured SIGTERM after its graceful shutdown, so a clean stop exits with
        -SIGTERM (or 0), never 1 or a kill.
        """
        process, self.process = self.process, None
        if process is None:
            return True
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return False
        return code in (0, -signal.SIGTERM)

    def output(self) -> str:
        return "\n".join(
            path.read_text(errors="replace") for pair in self.runs for path in pair if path.exists()
        )

    def log_bytes(self) -> dict[str, bytes]:
        return {path.name: path.read_bytes() for pair in self.runs for path in pair}


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[DevServer]:
    cwd, logs = tmp_path / "fresh-clone", tmp_path / "logs"
    cwd.mkdir()
    logs.mkdir()
    server = DevServer(cwd, logs)
    try:
        yield server
    finally:
        server.stop()


def cli(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SILVER_AUTH), *args],
        cwd=cwd,
        env=newcomer_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url}: {response.text}"
    )
    return response.json()


def data_files(data_dir: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(data_dir)): path.read_bytes() for path in data_dir.rglob("*") if path.is_file()
    }


def test_quickstart_newcomer_key_shown_once_then_nowhere(dev_server: DevServer) -> None:
    # 1. the first command brings the service up in a fresh directory, its data under ./.silver
    dev_server.start()
    data_dir = dev_server.cwd / ".silver"
    assert (data_dir / "silver.db").is_file()
    assert stat.S_IMODE((data_dir / "secrets.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) & 0o077 == 0
    # it says where it listens and where its data is, each on one copyable line whatever the width
    assert f"http://127.0.0.1:{dev_server.port}" in dev_server.output()
    assert f"data: {data_dir.resolve()}\n" in dev_server.output()

    # 2. a console account from the CLI, the password on stdin
    created = cli(dev_server.cwd, "account", "create", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    assert EMAIL in created.stdout
    assert PASSWORD not in created.stdout + created.stderr

    # 3. sign in, create an org, a project and a secret key through the API
    with httpx.Client(base_url=dev_server.url, timeout=10) as console:
        me = ok(console.post("/console/api/sign-in", json={"email": EMAIL, "password": PASSWORD}))
        assert me["account"]["email"] == EMAIL
        cookie = console.cookies["silver_session"]
        csrf = {"X-CSRF-Token": me["csrf_token"]}
        org = ok(console.post("/console/api/orgs", json={"name": "Acme"}, headers=csrf), 201)
        project = ok(
            console.post(f"/console/api/orgs/{org['id']}/projects", json={"name": "Web"}, headers=csrf), 201
        )
        keys_path = f"/console/api/projects/{project['id']}/keys"
        created_key = ok(
            console.post(keys_path, json={"kind": "secret", "environment": "live"}, headers=csrf), 201
        )
        secret_key: str = created_key["key"]
        assert secret_key.startswith("sk_live_")
        assert created_key["prefix"] != secret_key and secret_key.startswith(created_key["prefix"])
        publishable = ok(
            console.post(keys_path, json={"kind": "publishable", "environment": "live"}, headers=csrf), 201
        )

        # 4. the key works on the backend-key check; a near miss does not
        bearer = {"Authorization": f"Bearer {secret_key}"}
        answer = ok(httpx.get(f"{dev_server.url}/v1/backend/project", headers=bearer))
        assert answer["project"]["id"] == project["id"]
        assert answer["environment"] == "live"
        assert answer["key"]["id"] == created_key["id"]
        tampered = secret_key[:-1] + ("a" if secret_key[-1] != "a" else "b")
        assert (
            httpx.get(
                f"{dev_server.url}/v1/backend/project", headers={"Authorization": f"Bearer {tampered}"}
            ).status_code
            == 401
        )

        # 5. every other answer leaves the full key out
        answers = {
            "list keys": console.get(keys_path),
            "project": console.get(f"/console/api/projects/{project['id']}"),
            "projects": console.get(f"/console/api/orgs/{org['id']}/projects"),
            "org": console.get(f"/console/api/orgs/{org['id']}"),
            "orgs": console.get("/console/api/orgs"),
            "members": console.get(f"/console/api/orgs/{org['id']}/members"),
            "audit": console.get(f"/console/api/orgs/{org['id']}/audit"),
            "me": console.get("/console/api/me"),
            "sessions": console.get("/console/api/sessions"),
            "config": console.get("/v1/config"),
            "client config": console.get(
                "/v1/client-config", headers={"X-Publishable-Key": publishable["key"]}
            ),
            "openapi": console.get("/openapi.json"),
            "health": console.get("/health"),
            "backend check": httpx.get(f"{dev_server.url}/v1/backend/project", headers=bearer),
            # the key sent where it does not belong must not be echoed back in the error
            "key with junk": httpx.get(
                f"{dev_server.url}/v1/backend/project", headers={"Authorization": f"Bearer {secret_key}x"}
            ),
            "key in a path": console.get(f"/console/api/projects/{secret_key}/keys"),
            "key as a body": console.post(
                keys_path, content=secret_key, headers={**csrf, "content-type": "application/json"}
            ),
        }
        for name, response in answers.items():
            assert response.status_code < 500, f"{name}: {response.status_code} {response.text}"
            assert secret_key not in response.text, f"the full secret key is in the {name} answer"
            assert secret_key not in str(response.headers), f"the full secret key is in the {name} headers"
        listed = {key["id"]: key for key in answers["list keys"].json()["items"]}
        assert listed[created_key["id"]]["prefix"] == created_key["prefix"]  # the list does show the key
        assert answers["key with junk"].status_code == 401
        assert answers["key in a path"].status_code == 404
        assert answers["key as a body"].status_code in (400, 422)
        audit_actions = {event["action"] for event in answers["audit"].json()["items"]}
        assert any("key" in action for action in audit_actions), audit_actions

    # 6. stop the server: the key is in neither its logs nor any file of its data dir
    assert dev_server.stop(), dev_server.output()
    files = data_files(data_dir)
    assert {"silver.db", "secrets.json"} <= set(files)
    assert any(created_key["prefix"].encode() in blob for blob in files.values())  # the scan sees real rows
    leaks = [
        name for name, blob in {**files, **dev_server.log_bytes()}.items() if secret_key.encode() in blob
    ]
    assert not leaks, f"the full secret key was written to {leaks}"
    password_leaks = [
        name for name, blob in {**files, **dev_server.log_bytes()}.items() if PASSWORD.encode() in blob
    ]
    assert not password_leaks, f"the password was written to {password_leaks}"

    # 7. a restart in the same directory reuses the generated secrets: the old session and the key still work
    secrets_before = (data_dir / "secrets.json").read_bytes()
    dev_server.start()
    assert (data_dir / "secrets.json").read_bytes() == secrets_before
    assert stat.S_IMODE((data_dir / "secrets.json").stat().st_mode) == 0o600
    with httpx.Client(base_url=dev_server.url, timeout=10) as again:
        again.cookies.set("silver_session", cookie)
        assert ok(again.get("/console/api/me"))["account"]["email"] == EMAIL
        bearer = {"Authorization": f"Bearer {secret_key}"}
        assert ok(again.get("/v1/backend/project", headers=bearer))["project"]["id"] == project["id"]
        assert ok(again.get(keys_path))["items"]
    assert dev_server.stop(), dev_server.output()
    leaks = [
        name
        for name, blob in {**data_files(data_dir), **dev_server.log_bytes()}.items()
        if secret_key.encode() in blob
    ]
    assert not leaks, f"the full secret key was written to {leaks} after the restart"


def test_the_start_banner_prints_a_working_account_command_only_while_no_account_exists(
    dev_server: DevServer,
) -> None:
    """The hint can be pasted as printed (from the directory `dev` runs in) and is gone once an account
    exists; moving only the port moves the public URLs with it."""
    dev_server.start()
    hint = next(line for line in dev_server.output().splitlines() if "account create" in line)
    assert "/console/setup" in dev_server.output()  # the console's first run
    command = hint.split("create one:", 1)[1].strip()
    pasted = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=dev_server.cwd,
        env=newcomer_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert pasted.returncode == 0, pasted.stderr
    assert "created acc_" in pasted.stdout
    hosts = ok(httpx.get(f"{dev_server.url}/v1/config"))["hosts"]
    assert hosts == {"accounts": dev_server.url, "auth": dev_server.url}  # SILVER_BIND_PORT alone moved them
    assert dev_server.stop(), dev_server.output()

    dev_server.start()
    second_run = dev_server.runs[-1][0].read_text()
    assert "account create" not in second_run, second_run
