"""The monitor's parts that need no process: its arguments, the secret-shape scan of public answers (on
the service's real answers), the canary key file, and which alerts a run raises or clears (L1, L2)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from silver_auth.ops.monitor import CHECK_NAMES, CheckResult, MonitorTarget, TargetError, interval_seconds
from silver_auth.ops.monitor.checks import Outcome, read_secret_key, secret_shaped_paths
from silver_auth.ops.monitor.target import public_url
from silver_auth.ops.monitor.watch import MonitorReport, transitions
from tests.factories import Harness

KEY = "sk_live_" + "A1b2C3d4E5" * 4 + "xyz"


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("60", 60), (" 2M ", 120)]
)
def test_l1_intervals(text: str, seconds: int) -> None:
    assert interval_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "1.5m", "3d", "-1s", "0s", "25h", "1 minute"])
def test_l1_bad_intervals_are_refused(text: str) -> None:
    with pytest.raises(TargetError, match="--every"):
        interval_seconds(text)


def test_l1_base_urls() -> None:
    assert public_url("https://auth.seqn.in/", "BASE_URL") == "https://auth.seqn.in"
    assert public_url("http://127.0.0.1:8000/prefix/", "BASE_URL") == "http://127.0.0.1:8000/prefix"
    target = MonitorTarget.parse("https://auth.seqn.in:8443", accounts_url="https://accounts.seqn.in")
    assert (target.host, target.console_url) == ("auth.seqn.in:8443", "https://accounts.seqn.in")
    for bad in (
        "auth.seqn.in",
        "ftp://auth.seqn.in",
        "https://a:b@auth.seqn.in",
        "https://x/?q=1",
        "https://x:99999",
    ):
        with pytest.raises(TargetError, match="BASE_URL"):
            public_url(bad, "BASE_URL")


def test_l1_the_service_public_answers_hold_nothing_secret_shaped(harness: Harness) -> None:
    """No false alarm on the real answers: /health, /v1/config (webhook samples and all), client-config."""
    owner = harness.user()
    project = harness.project(owner, harness.org(owner)["id"])
    publishable = harness.key(owner, project["id"], "publishable", "live")["key"]
    secret = harness.key(owner, project["id"], "secret", "live")["key"]
    answers = [
        harness.client.get("/health"),
        harness.client.get("/v1/config"),
        harness.client.get("/v1/client-config", headers={"x-publishable-key": publishable}),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [secret_shaped_paths(answer.json(), [secret]) for answer in answers] == [[], [], []]


def test_l1_secret_shapes_are_found_by_path_never_by_value() -> None:
    authentik_token = "aB3" * 20  # letters of both cases and digits, 60 long: Authentik's default
    body = {
        "plans": [{"name": "Free"}, {"name": f"leak {KEY}"}],
        "webhooks": {"secret": "whsec_" + "c2VjcmV0LXZhbHVlLWhlcmU="},
        "auth": "Bearer abcdefghijklmnop",
        "jwt": "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c3JfMSJ9.c2lnbmF0dXJl",
        "dsn": "postgresql://silver:hunter22@db/silver",
        "authentik": authentik_token,
        "known": "prefix-known-canary-value-suffix",
        KEY: {"nested": KEY},
        # Not secrets: a digest, a long word, an id, a publishable key, a URL without credentials.
        "sha256": "9f" * 32,
        "word": "a" * 80,
        "id": "prj_01m8ssn6z6kv8dn3j2cacsa5k1",
        "publishable": "pk_live_" + "Q" * 43,
        "url": "https://auth.seqn.in/v1/projects/prj_1/jwks",
    }
    found = secret_shaped_paths(body, ["known-canary-value"])
    assert found == [
        "$.plans[1].name",
        "$.webhooks.secret",
        "$.auth",
        "$.jwt",
        "$.dsn",
        "$.authentik",
        "$.known",
        "$ (a key)",
        "$.[REDACTED].nested",
    ]
    assert not [path for path in found if KEY in path or authentik_token in path]


def test_l1_the_canary_key_file(tmp_path: Path) -> None:
    path = tmp_path / "canary"
    assert read_secret_key(None).problem is not None and "SILVER_MONITOR_SECRET_KEY_FILE" in str(
        read_secret_key(None).problem
    )
    assert read_secret_key(path).problem == f"the secret key file {path} does not exist"
    path.touch(mode=0o600)
    path.write_text("not-a-key-but-maybe-a-password\n")
    wrong = read_secret_key(path)
    assert wrong.key is None and "does not hold one sk_live_" in str(wrong.problem)
    assert "not-a-key" not in str(wrong.problem)
    path.write_text(f"\n{KEY}\n")
    good = read_secret_key(path)
    assert (good.key, good.problem, good.warning) == (KEY, None, None)
    assert KEY not in repr(good)
    path.chmod(0o644)  # G23: a secret readable by others is a warning the check passes on
    assert f"chmod 600 {path}" in str(read_secret_key(path).warning)


def _checks(**outcomes: str) -> list[CheckResult]:
    return [
        CheckResult(name, cast("Outcome", outcomes.get(name, "pass")), f"{name} said so", 1)
        for name in CHECK_NAMES
    ]


TARGET = MonitorTarget.parse("https://auth.seqn.in")


def _changes(checks: list[CheckResult], standing: set[str]) -> list[tuple[str, str]]:
    return [(change.action, change.subject) for change in transitions(TARGET, checks, standing)]


def test_l2_an_outage_is_one_health_alert_naming_every_failing_check() -> None:
    down = _checks(**dict.fromkeys(CHECK_NAMES, "fail"))
    [change] = transitions(TARGET, down, set())
    assert (change.action, change.subject) == ("raise", "health@auth.seqn.in")
    assert "config, client-config, backend-key, console-boundary" in change.message
    assert change.context == {"base_url": "https://auth.seqn.in", "failing": ", ".join(CHECK_NAMES)}
    assert _changes(down, {"health@auth.seqn.in"}) == []  # standing: not again
    # While health fails the others are unknown: an earlier alert of theirs is neither cleared nor raised.
    assert _changes(_checks(health="fail"), {"backend-key@auth.seqn.in"}) == [
        ("raise", "health@auth.seqn.in")
    ]


def test_l2_each_check_alerts_and_clears_on_its_own_while_the_service_answers() -> None:
    standing = {"health@auth.seqn.in", "config@auth.seqn.in"}
    assert _changes(_checks(**{"backend-key": "fail", "config": "warn"}), standing) == [
        ("clear", "health@auth.seqn.in"),
        ("clear", "config@auth.seqn.in"),  # a warning is no failure
        ("raise", "backend-key@auth.seqn.in"),
    ]
    assert _changes(_checks(), set()) == []


def test_l1_the_overall_outcome_and_json_shape() -> None:
    started = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    warned = MonitorReport(TARGET, started, 5, _checks(health="warn"))
    assert warned.overall == "warn" and warned.failed == []
    failed = MonitorReport(TARGET, started, 5, _checks(health="warn", config="fail"), "opr_1", ["config@x"])
    assert failed.overall == "fail"
    as_json = failed.as_json()
    assert list(as_json) == [
        "base_url",
        "accounts_url",
        "started_at",
        "duration_ms",
        "overall",
        "checks",
        "run_id",
        "alerts",
    ]
    assert as_json["started_at"] == "2026-12-01T12:00:00Z"
    assert as_json["checks"][1] == {
        "name": "config",
        "outcome": "fail",
        "reason": "config said so",
        "duration_ms": 1,
    }
    assert as_json["alerts"] == {"raised": ["config@x"], "cleared": []}
