"""The operator's commands against the production edge: `silver-auth monitor` and `silver-auth doctor --url`
run, as an operator runs them, against Debian's Caddy serving deploy/Caddyfile (internal CA, loopback
ports) in front of `silver-auth serve`. The monitor's launch checks pass through the edge (L1); with the
API stopped behind a running Caddy the alert channel hears one failure, and one recovery when the API is
back (L2); doctor sees the live edge serve HTTPS only, with HSTS, nosniff and Referrer-Policy (G1-G3)."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.alerts.support import json_url, messages
from tests.caddy import ACCOUNTS_HOST, AUTH_HOST, SILVER_AUTH, Edge, edge_on_test_database
from tests.processes import free_port, settings_env
from tests.webhooks.support import receiver

pytestmark = pytest.mark.slow
PASSWORD = "an operator's canary passphrase"
CHECKS = ["health", "config", "client-config", "backend-key", "console-boundary"]


@dataclass
class Canary:
    """A project of the edge's database with its publishable key and, in a 0600 file, its secret key."""

    publishable_key: str
    secret_key: str
    secret_key_file: Path


@pytest.fixture(scope="module")
def edge(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with edge_on_test_database(
        request, tmp_path_factory.mktemp("edge-ops"), SILVER_METRICS_PORT=str(free_port())
    ) as running:
        yield running


def _command_env(edge: Edge, **extra: str) -> dict[str, str]:
    """The environment of the API behind the edge (its database, secrets and public URLs)."""
    assert edge.settings is not None
    return settings_env(
        edge.settings,
        PATH=f"{SILVER_AUTH.parent}:/usr/bin:/bin",
        NO_COLOR="1",
        SILVER_ACCOUNTS_URL=edge.accounts,
        SILVER_AUTH_URL=edge.auth,
        SILVER_BIND_PORT=str(edge.api.port),
        **extra,
    )


def _silver_auth(edge: Edge, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SILVER_AUTH), *args],
        env=_command_env(edge, **env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def canary(edge: Edge, tmp_path_factory: pytest.TempPathFactory) -> Canary:
    """Made as a customer would: an account from the CLI, then org, project and keys through the edge."""
    assert edge.settings is not None
    email = f"canary-{secrets.token_hex(4)}@example.com"
    created = _silver_auth(edge, "account", "create", email, "--password-stdin", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    with edge.client(base_url=edge.accounts) as console:
        signed_in = console.post("/console/api/sign-in", json={"email": email, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        # Sent by hand: the loopback transport rewrites the request's host, which the cookie jar would
        # then file the session cookie under.
        name = edge.settings.session_cookie_name
        headers = {
            "x-csrf-token": signed_in.json()["csrf_token"],
            "cookie": f"{name}={signed_in.cookies[name]}",
        }

        def made(path: str, body: dict[str, Any]) -> dict[str, Any]:
            answer = console.post(path, json=body, headers=headers)
            assert answer.status_code == 201, answer.text
            result: dict[str, Any] = answer.json()
            return result

        org = made("/console/api/orgs", {"name": "Canary"})
        project = made(f"/console/api/orgs/{org['id']}/projects", {"name": "Canary"})
        keys = f"/console/api/projects/{project['id']}/keys"
        publishable = made(keys, {"kind": "publishable", "environment": "live"})["key"]
        secret = made(keys, {"kind": "secret", "environment": "live"})["key"]
    key_file = tmp_path_factory.mktemp("canary") / "monitor.key"
    key_file.write_text(secret + "\n")
    key_file.chmod(0o600)
    return Canary(publishable, secret, key_file)


def _pins(edge: Edge) -> list[str]:
    """`--resolve` for both host names on both of Caddy's ports: the names resolve nowhere."""
    ports = (edge.caddy.https_port, edge.caddy.http_port)
    return [f"--resolve={host}:{port}:127.0.0.1" for host in (ACCOUNTS_HOST, AUTH_HOST) for port in ports]


def _monitor(edge: Edge, canary: Canary, **env: str) -> tuple[int, dict[str, Any], str]:
    done = _silver_auth(
        edge,
        "monitor",
        "--json",
        edge.auth,
        f"--accounts-url={edge.accounts}",
        f"--ca-file={edge.caddy.root_certificate}",
        f"--publishable-key={canary.publishable_key}",
        f"--secret-key-file={canary.secret_key_file}",
        *_pins(edge),
        **env,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert canary.secret_key not in done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def _outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["outcome"] for check in report["checks"]}


def test_l1_l2_monitor_through_caddy_passes_then_pages_once_for_an_outage_and_once_for_its_end(
    edge: Edge, canary: Canary
) -> None:
    with receiver() as channel:
        alerts = {"SILVER_ALERT_URLS": json_url(channel)}
        code, report, stderr = _monitor(edge, canary, **alerts)
        assert code == 0, (report, stderr)
        assert _outcomes(report) == dict.fromkeys(CHECKS, "pass")
        assert messages(channel) == []

        edge.api.stop()  # Caddy stays up and answers 502 for the API behind it
        try:
            for _ in range(2):
                code, report, _ = _monitor(edge, canary, **alerts)
                assert code == 1 and _outcomes(report)["health"] == "fail", report
            down = messages(channel)
        finally:
            edge.api.start()
        for _ in range(2):
            code, report, _ = _monitor(edge, canary, **alerts)
            assert code == 0, report
        received = messages(channel)
        bodies = b"".join(got.body for got in channel.received).decode()

    subject = f"health@{AUTH_HOST}:{edge.caddy.https_port}"
    [failure] = down
    assert failure["type"] == "failure" and subject in failure["title"]
    assert [message["type"] for message in received] == ["failure", "success"]
    assert subject in received[1]["title"]
    assert canary.secret_key not in bodies


def test_g1_g3_doctor_sees_the_live_edge_serve_https_only_with_its_headers(
    edge: Edge, canary: Canary
) -> None:
    done = _silver_auth(
        edge,
        "doctor",
        "--json",
        f"--url={edge.auth}",
        f"--accounts-url={edge.accounts}",
        f"--ca-file={edge.caddy.root_certificate}",
        f"--http-port={edge.caddy.http_port}",
        *_pins(edge),
    )
    assert "Traceback" not in done.stderr, done.stderr
    findings = {finding["line"]: finding for finding in json.loads(done.stdout)["lines"]}
    for line in ("G1", "G2", "G3", "G5"):
        assert findings[line]["status"] == "pass", findings[line]
    assert {f"G{n}" for n in range(1, 40)} | {f"L{n}" for n in range(1, 9)} == set(findings)
    assert canary.secret_key not in done.stdout + done.stderr
