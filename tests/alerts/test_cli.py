"""`silver-auth alerts test` and `alerts list`, run as an operator runs them (the console script in a
subprocess) against this test's database and a real JSON receiver (L2)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from tests.alerts.support import closed_port, json_url, port_of
from tests.test_cli import Result, cli_env, run_many
from tests.test_settings import good_production_env
from tests.webhooks.support import receiver

pytestmark = pytest.mark.slow  # every test runs the CLI in a subprocess


def silver_auth(tmp_path: Path, database_url: str, *args: str, **env: str) -> Result:
    merged = cli_env(tmp_path / "cli-data", DATABASE_URL=database_url, **env)
    return run_many([(args, merged, "")], tmp_path)[0]


def test_l2_alerts_test_sends_to_every_channel_and_prints_each_outcome(
    tmp_path: Path, database_url: str
) -> None:
    with receiver() as first, receiver() as second:
        urls = f"{json_url(first)}, {json_url(second)}"
        sent = silver_auth(tmp_path, database_url, "alerts", "test", SILVER_ALERT_URLS=urls)
        listed = silver_auth(tmp_path, database_url, "alerts", "list")
    assert sent.returncode == 0, sent
    for target in (first, second):
        [got] = [json.loads(r.body) for r in target.received]
        assert got["type"] == "info" and "test alert" in got["title"]
        assert f"json://127.0.0.1:{port_of(target)}" in sent.stdout
    assert "/hooks" not in sent.stdout  # scheme://host only
    assert "sent to 2 channel(s)" in sent.stdout
    assert listed.returncode == 0, listed
    assert "alert_test" in listed.stdout and "delivered 2/2" in listed.stdout


def test_l2_alerts_test_fails_when_a_channel_fails(tmp_path: Path, database_url: str) -> None:
    token = "tok" + secrets.token_hex(12)
    dead = f"json://127.0.0.1:{closed_port()}/{token}"
    with receiver() as target:
        result = silver_auth(
            tmp_path, database_url, "alerts", "test", SILVER_ALERT_URLS=f"{json_url(target)} {dead}"
        )
    assert result.returncode == 1, result
    assert "failed" in result.stdout and "sent" in result.stdout
    assert "1 of 2 channel(s) failed" in result.stderr
    assert token not in result.stdout + result.stderr
    assert len(target.received) == 1


def test_l2_alerts_test_without_a_channel_fails_in_one_line(tmp_path: Path, database_url: str) -> None:
    line = silver_auth(tmp_path, database_url, "alerts", "test").one_line_failure()
    assert "SILVER_ALERT_URLS" in line


def test_l2_the_worker_refuses_production_without_a_channel(tmp_path: Path) -> None:
    env = {k: v for k, v in good_production_env().items() if k != "SILVER_ALERT_URLS"}
    merged = cli_env(tmp_path / "data", **env)
    line = run_many([(("worker", "--once"), merged, "")], tmp_path)[0].one_line_failure()
    assert "L2" in line and "SILVER_ALERT_URLS" in line
