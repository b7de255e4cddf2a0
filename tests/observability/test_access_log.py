"""The access log: one `request` event per request (404, 405 and errors included), with the route
template, never the raw path or query, through the redaction processor (G18, G28).

The app here writes JSON lines to the stderr capfd reads: `logged` starts the capture before the app
configures logging, and every test first finds the lines of its own requests (a positive control), so
an assertion that something is absent cannot pass on an empty capture.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from silver_auth.core import logging as core_logging
from silver_auth.web import http as api_http
from tests.concurrent import send, send_together
from tests.conftest import AppPool, base_settings
from tests.factories import Harness
from tests.observability.support import json_lines, read, request_lines, request_lines_in, sample

GENERATED_ID = re.compile(r"[0-9a-f]{24}")


@pytest.fixture
def logged(
    capfd: pytest.CaptureFixture[str], apps: AppPool, tmp_path: Path, database_url: str
) -> Iterator[Harness]:
    """An app logging JSON lines (capfd is set up first: the app's logger writes where it reads)."""
    settings = base_settings(tmp_path, DATABASE_URL=database_url, SILVER_LOG_FORMAT="json")
    with apps.serve(settings) as client:
        yield Harness(client, settings)


def call(harness: Harness, method: str, path: str, request_id: str | bytes, **kwargs: Any) -> httpx.Response:
    harness.client.cookies.clear()
    headers = {"x-request-id": request_id, **kwargs.pop("headers", {})}
    return harness.client.request(method, path, headers=headers, **kwargs)


def by_id(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        found.setdefault(line["request_id"], []).append(line)
    return found


def test_every_request_is_one_json_line_with_its_fields(
    logged: Harness, capfd: pytest.CaptureFixture[str]
) -> None:
    owner = logged.user()
    org_id = logged.org(owner)["id"]
    project_id = logged.project(owner, org_id)["id"]
    secret = logged.key(owner, project_id, "secret", "live")
    key_id = secret["id"]
    read(capfd)
    calls = {
        "health": ("GET", "/health", {}),
        "missing": ("GET", "/no/such/page", {}),
        "wrong-method": ("POST", "/health", {}),
        "wrong-method-2": ("DELETE", "/v1/backend/project", {}),
        "no-key": ("GET", "/v1/backend/project", {}),
        "cold": ("GET", "/v1/backend/project", {"authorization": f"Bearer {secret['key']}"}),
        "hot": ("GET", "/v1/backend/project", {"authorization": f"Bearer {secret['key']}"}),
        "user": ("GET", "/v1/backend/users/usr_nobody", {"authorization": f"Bearer {secret['key']}"}),
        "console": ("GET", "/console/api/me", {"cookie": f"{owner.cookie_name}={owner.cookie}"}),
    }
    answers = {rid: call(logged, method, path, rid, headers=h) for rid, (method, path, h) in calls.items()}
    assert logged.runtime.keys.cached(secret["key"], "secret") is not None  # "hot" took the short cut
    lines = by_id(request_lines(capfd))

    expected = {
        "health": ("GET", "/health", 200, "info", None),
        "missing": ("GET", "unmatched", 404, "warning", None),
        "wrong-method": ("POST", "/health", 405, "warning", None),
        "wrong-method-2": ("DELETE", "/v1/backend/project", 405, "warning", None),
        "no-key": ("GET", "/v1/backend/project", 401, "warning", None),
        "cold": ("GET", "/v1/backend/project", 200, "info", key_id),
        "hot": ("GET", "/v1/backend/project", 200, "info", key_id),
        "user": ("GET", "/v1/backend/users/{user_id}", 404, "warning", key_id),
        "console": ("GET", "/console/api/me", 200, "info", owner.account_id),
    }
    for rid, (method, route, status, level, actor) in expected.items():
        assert answers[rid].status_code == status, (rid, answers[rid].text)
        assert answers[rid].headers["x-request-id"] == rid
        assert len(lines.get(rid, [])) == 1, f"{rid}: {lines.get(rid)}"
        line = lines[rid][0]
        assert {k: line[k] for k in ("method", "route", "status", "level", "actor")} == {
            "method": method,
            "route": route,
            "status": status,
            "level": level,
            "actor": actor,
        }, rid
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert line["client_ip"] == "testclient"  # the test client's peer
        assert line["timestamp"].endswith("Z")


def test_the_client_ip_is_the_peer_or_x_forwarded_for_behind_a_trusted_proxy(
    logged: Harness, capfd: pytest.CaptureFixture[str]
) -> None:
    forwarded = {"x-forwarded-for": "203.0.113.9"}
    send(logged, "GET", "/health", "127.0.0.1", headers={"x-request-id": "via-caddy", **forwarded})
    send(logged, "GET", "/health", "198.51.100.4", headers={"x-request-id": "direct", **forwarded})
    lines = by_id(request_lines(capfd))
    assert lines["via-caddy"][0]["client_ip"] == "203.0.113.9"  # 127.0.0.1 is a trusted proxy (default)
    assert lines["direct"][0]["client_ip"] == "198.51.100.4"  # anyone else's X-Forwarded-For is ignored


def test_request_id_is_echoed_when_short_and_plain_else_replaced(
    logged: Harness, capfd: pytest.CaptureFixture[str]
) -> None:
    kept = ["a", "req-1.2_3", "A" * 64]
    replaced: list[str | bytes] = ["A" * 65, "two words", "semi;colon", "ünïcode".encode(), "", "x\ty"]
    answers = [call(logged, "GET", "/health", rid) for rid in [*kept, *replaced]]
    logged.client.cookies.clear()
    answers.append(logged.client.get("/no/such/page"))  # none sent: one is made
    echoed = [a.headers["x-request-id"] for a in answers]
    assert echoed[: len(kept)] == kept
    made = echoed[len(kept) :]
    assert all(GENERATED_ID.fullmatch(rid) for rid in made), made
    assert len(set(made)) == len(made)
    assert sorted(line["request_id"] for line in request_lines(capfd)) == sorted(echoed)


def test_every_line_of_a_request_carries_its_request_id(
    logged: Harness, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error handler's own line names the request it belongs to, as the access log's does."""
    owner = logged.user()
    sink = io.StringIO()
    config = structlog.get_config()
    # The handler's module logger keeps the configuration of its first use (another app's, maybe):
    # here it gets this app's processors, writing where the test reads.
    errors = structlog.wrap_logger(
        structlog.PrintLogger(sink), processors=config["processors"], wrapper_class=config["wrapper_class"]
    )
    monkeypatch.setattr(api_http, "log", errors)
    monkeypatch.setattr(logged.runtime, "sessionmaker", _unreachable_database)
    read(capfd)
    response = owner.post("/console/api/orgs", json={"name": "Acme"}, headers={"x-request-id": "broken-1"})
    assert response.status_code == 503  # a dependency outage answers 503, logged at error level
    [error] = json_lines(sink.getvalue())
    assert error["event"] == "unhandled_error" and error["request_id"] == "broken-1"
    [access] = request_lines(capfd)
    assert (access["request_id"], access["level"], access["status"]) == ("broken-1", "error", 503)


def _unreachable_database() -> Any:
    raise ConnectionRefusedError("the database is down")


def test_g18_g28_canary_secrets_never_reach_the_log(
    logged: Harness, capfd: pytest.CaptureFixture[str]
) -> None:
    owner = logged.user()
    project_id = logged.project(owner, logged.org(owner)["id"])["id"]
    real_key = logged.key(owner, project_id, "secret", "live")["key"]
    canary = "canary" + secrets.token_hex(12)
    fake_key = "sk_live_" + canary
    calls = [
        ("GET", "/v1/backend/project", {"authorization": f"Bearer {fake_key}"}),
        ("GET", "/v1/backend/project", {"authorization": f"Bearer {real_key}"}),
        ("GET", "/v1/backend/project", {"authorization": f"Bearer {real_key}"}),  # the hot path
        ("GET", f"/v1/backend/users/{canary}", {"authorization": f"Bearer {real_key}"}),
        ("GET", "/console/api/me", {"cookie": f"{owner.cookie_name}={canary}"}),
        ("GET", f"/v1/client-config?publishable_key=pk_live_{canary}&token={canary}", {}),
        ("GET", f"/p/{canary}/oops?code={canary}", {}),
        ("POST", f"/{canary}", {}),
    ]
    read(capfd)
    for n, (method, path, headers) in enumerate(calls):
        call(logged, method, path, f"canary-{n}", headers=headers)
    # A client that sends its own secret as a request id gets it back, and the log does not keep it.
    echoed = call(logged, "GET", "/health", fake_key)
    assert echoed.headers["x-request-id"] == fake_key
    out, err = read(capfd)
    lines = request_lines_in(err)
    assert sorted(line["request_id"] for line in lines) == sorted(
        [f"canary-{n}" for n in range(len(calls))] + ["[REDACTED]"]
    )
    for secret in (canary, real_key, owner.cookie, real_key.removeprefix("sk_live_")):
        assert secret not in out + err


def test_development_prints_one_readable_line(
    apps: AppPool, tmp_path: Path, database_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = base_settings(tmp_path, DATABASE_URL=database_url)
    assert settings.log_format == "console"  # the embedded default
    with apps.serve(settings) as client:
        client.get("/health", headers={"x-request-id": "dev-1"})
        client.get("/nothing", headers={"x-request-id": "dev-2"})
    err = capfd.readouterr().err
    assert re.search(r"^\S+Z GET /health 200 [\d.]+ms req=dev-1 ip=testclient actor=-$", err, re.MULTILINE), (
        err
    )
    assert re.search(r"^\S+Z GET unmatched 404 [\d.]+ms req=dev-2 ip=testclient actor=-$", err, re.MULTILINE)


def test_the_access_log_can_be_turned_off_and_requests_are_still_counted(
    apps: AppPool, tmp_path: Path, database_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = base_settings(
        tmp_path, DATABASE_URL=database_url, SILVER_LOG_FORMAT="json", SILVER_ACCESS_LOG="false"
    )
    before = sample("silver_http_requests_total", route="/health", method="GET", status="200")
    with apps.serve(settings) as client:
        answer = client.get("/health", headers={"x-request-id": "quiet-1"})
    assert answer.headers["x-request-id"] == "quiet-1"
    assert sample("silver_http_requests_total", route="/health", method="GET", status="200") == before + 1
    assert request_lines_in(capfd.readouterr().err) == []


def test_production_logs_json_and_development_readable_lines(tmp_path: Path) -> None:
    assert base_settings(tmp_path).log_format == "console"
    assert base_settings(tmp_path, SILVER_ENV="production").log_format == "json"
    assert (
        base_settings(tmp_path, SILVER_ENV="production", SILVER_LOG_FORMAT="console").log_format == "console"
    )


def test_a_server_writes_the_lines_of_a_loop_turn_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batched (as create_app configures it): one system call per turn of the event loop, not one per
    request; nothing waits past the turn."""
    writes: list[str] = []
    monkeypatch.setattr(core_logging._Stderr, "msg", lambda _self, message: writes.append(message))
    core_logging.configure_logging("INFO", "json", batched=True)  # as in a server (tests: False)

    async def a_turn() -> tuple[int, int]:
        for n in range(3):
            core_logging.access_log().write(logging.INFO, {"route": "/health", "status": 200, "n": n})
        during = len(writes)
        await asyncio.sleep(0)  # the turn ends: the batch goes out
        return during, len(writes)

    try:
        assert asyncio.run(a_turn()) == (0, 1)
        assert [json.loads(line)["n"] for line in writes[0].splitlines()] == [0, 1, 2]
        core_logging.access_log().write(logging.INFO, {"route": "/health", "status": 200, "n": 3})
        assert len(writes) == 2  # no loop running: at once
    finally:
        core_logging.configure_logging("INFO", "json", batched=False)


def test_lines_written_together_keep_their_own_request(
    logged: Harness, capfd: pytest.CaptureFixture[str]
) -> None:
    """Concurrent requests on a batched server: each line, rendered at the end of the loop's turn,
    names its own request, not the one whose context happens to be current then."""
    core_logging.configure_logging("INFO", "json", batched=True)
    try:
        calls = [("GET", "/health", {"headers": {"x-request-id": f"together-{n}"}}) for n in range(20)]
        answers = send_together(logged, calls)  # type: ignore[arg-type]
        logged.run(lambda: asyncio.sleep(0))  # a turn of the app's loop: what waits is written
    finally:
        core_logging.configure_logging("INFO", "json", batched=False)
    assert all(a.status_code == 200 for a in answers)
    lines = request_lines(capfd)
    assert sorted(line["request_id"] for line in lines) == sorted(f"together-{n}" for n in range(20))
