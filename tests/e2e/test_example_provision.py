"""`make example`'s provisioning on a fresh machine: against `silver-auth dev` in a new directory,
examples/fastapi-app/provision.py makes a developer account (CLI), an org, a project with the app's
callback as a redirect URL and a secret key (console API); a second run reuses them all; the state
file is 0600 and the secret key is never printed. SQLite only, like the quick-start test."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_quickstart import DevServer, newcomer_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("SILVER_TEST_DB", "sqlite") == "postgres",
        reason="the embedded default is SQLite; this test does not use the test database",
    ),
]

PROVISION = Path(__file__).resolve().parents[2] / "examples" / "fastapi-app" / "provision.py"
CALLBACK = "http://127.0.0.1:3000/callback"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevServer]:
    cwd, logs = tmp_path / "fresh-clone", tmp_path / "logs"
    cwd.mkdir()
    logs.mkdir()
    dev = DevServer(cwd, logs)
    dev.start()
    try:
        yield dev
    finally:
        dev.stop()


def _provision(server: DevServer) -> subprocess.CompletedProcess[str]:
    env = newcomer_env() | {"SEQN_AUTH_URL": server.url}
    return subprocess.run(
        [sys.executable, str(PROVISION)],
        cwd=server.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_provisioning_is_idempotent_and_keeps_the_key_in_a_0600_file(server: DevServer) -> None:
    first = _provision(server)
    assert first.returncode == 0, first.stderr
    state_path = server.cwd / ".silver" / "example-app.json"
    assert stat.S_IMODE(state_path.stat().st_mode) == 0o600
    state = json.loads(state_path.read_text())
    key = state["secret_key"]
    assert key.startswith("sk_test_") and state["project_id"] in first.stdout
    assert key not in first.stdout + first.stderr and state["password"] not in first.stdout + first.stderr

    answer = httpx.get(f"{server.url}/v1/backend/project", headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 200 and answer.json()["project"]["id"] == state["project_id"]
    assert answer.json()["environment"] == "test"

    second = _provision(server)
    assert second.returncode == 0, second.stderr
    assert json.loads(state_path.read_text()) == state  # nothing made again
    assert key not in second.stdout + second.stderr

    # The callback is registered exactly: the hosted page accepts it as the redirect URL.
    page = httpx.get(
        f"{server.url}/p/{state['project_id']}/test/sign-in",
        params={
            "redirect_url": CALLBACK,
            "state": "s",
            "code_challenge": "x" * 43,
            "code_challenge_method": "S256",
        },
    )
    assert page.status_code == 200, page.text

    # A revoked or lost key is replaced on the next run; the account, org and project are kept.
    state["secret_key"] = "sk_test_" + "0" * 40
    state_path.write_text(json.dumps(state))
    third = _provision(server)
    assert third.returncode == 0, third.stderr
    again = json.loads(state_path.read_text())
    assert again["secret_key"] not in (key, state["secret_key"])
    assert (again["project_id"], again["org_id"], again["email"]) == (
        state["project_id"],
        state["org_id"],
        state["email"],
    )
