"""The README's "Try it as a new user", run exactly as printed: its ```sh blocks, in one bash with
`set -euo pipefail`, against `silver-auth dev` in a fresh directory. Only the server's address and
the virtualenv's path are rewritten, so an edit that breaks a step (a path, a field, a quote) fails here.

Nothing is mocked: the real console script, curl and python3 from PATH, the hosted sign-up form posted
with its CSRF token, a TOTP code computed by pyotp. SQLite only, like the quick-start test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_quickstart import DevServer, newcomer_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("SILVER_TEST_DB", "sqlite") == "postgres",
        reason="the embedded default is SQLite; this test does not use the test database",
    ),
]

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Try it as a new user"
VENV_BIN = Path(sys.executable).parent
# The walkthrough waits for the next TOTP step (up to 30 s); everything else takes a few seconds.
RUN_SECONDS = 180


def walkthrough(port: int) -> str:
    """The section's ```sh blocks joined, with the two rewrites the brief allows and nothing else."""
    section = README.read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)
    assert len(blocks) == 3, f"expected the three ```sh blocks of {SECTION!r}, found {len(blocks)}"
    script = "\n".join(blocks)
    assert "127.0.0.1:8000" in script and ".venv/bin/" in script
    script = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace(".venv/bin/", f"{VENV_BIN}/")
    assert ":8000" not in script, "a URL the rewrite missed (localhost:8000?) would reach no server here"
    return script


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevServer]:
    cwd, logs = tmp_path / "fresh-clone", tmp_path / "logs"
    cwd.mkdir()
    logs.mkdir()
    dev = DevServer(cwd, logs)
    try:
        yield dev
    finally:
        dev.stop()


def json_lines(stdout: str) -> list[Any]:
    found = []
    for line in stdout.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def test_the_readme_walkthrough_runs_as_printed(server: DevServer) -> None:
    server.start()
    started = time.monotonic()
    ran = subprocess.run(
        ["bash", "-c", "set -euo pipefail\nset -x\n" + walkthrough(server.port)],
        cwd=server.cwd,
        env=newcomer_env(),
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    elapsed = time.monotonic() - started
    report = f"exit {ran.returncode} after {elapsed:.1f}s\n--- stdout\n{ran.stdout}\n--- trace\n{ran.stderr}"
    assert ran.returncode == 0, report
    out = ran.stdout
    answers = json_lines(out)

    def answer(test: Any) -> Any:
        matching = [item for item in answers if isinstance(item, dict) and test(item)]
        assert matching, report
        return matching[0]

    # the console: account, sign-in, the backend-key check answering the new project, an intact chain
    assert "created acc_" in out, report
    first = answer(lambda a: "csrf_token" in a)
    assert first["account"]["email"] == "you@example.com" and first["mfa"] is False
    backend = answer(lambda a: "project" in a and "key" in a)
    assert backend["environment"] == "live" and backend["project"]["name"] == "Web"
    project_id = backend["project"]["id"]
    assert re.search(r"\['[^\]]*key\.created", out), report  # the audit actions, as a list
    assert "audit chain intact" in out, report

    # console MFA: ten recovery codes, a two-step sign-in ending in a session that passed MFA
    assert len(answer(lambda a: "recovery_codes" in a)["recovery_codes"]) == 10
    assert answer(lambda a: "mfa_required" in a)["mfa_required"] is True
    mfa_session = answer(lambda a: "csrf_token" in a and a.get("mfa") is True)
    assert mfa_session["account"]["email"] == "you@example.com"
    sessions = answer(lambda a: "items" in a and a["items"] and "current" in a["items"][0])["items"]
    assert [s["mfa"] for s in sessions if s["current"]] == [True], report

    # the end-user: a code on the redirect URL, a JWT the backend calls valid, the JWKS, one refresh,
    # a sign-out
    assert "['http://127.0.0.1:3000/callback']" in out, report
    assert re.search(r"^http://127\.0\.0\.1:3000/callback\?code=[\w-]{20,}$", out, re.MULTILINE), report
    assert "valid: True ada@example.com" in out, report
    jwks = answer(lambda a: "keys" in a)
    assert jwks["keys"] and all("d" not in key for key in jwks["keys"])  # public keys only
    assert re.search(r"^refreshed: sess_\w+ JWT until \S+$", out, re.MULTILINE), report
    assert re.search(r"^signed out: 204$", out, re.MULTILINE), report
    assert "after sign-out, valid: False revoked" in out, report
    users = answer(lambda a: "items" in a and a["items"] and "email" in a["items"][0])["items"]
    assert [(u["email"], u["project_id"], u["environment"]) for u in users] == [
        ("ada@example.com", project_id, "live")
    ]

    # the last line tidied up after itself; the server saw nothing go wrong
    assert not {"jar", "me.json", "user-jar", "session.json"} & {p.name for p in server.cwd.iterdir()}
    assert server.stop(), server.output()
    assert "Traceback" not in server.output(), server.output()
