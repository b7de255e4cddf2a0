"""`silver-auth monitor` as an operator runs it, against a real API process on a seeded database, with a
real JSON receiver as the alert channel (L1, L2): every check passes; an outage pages once and its end
once, across cron-style one-shot runs and in an `--every` loop; a broken edge fails the console
boundary; the canary secret key appears in no output, log, record or alert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from silver_auth.ops.monitor import CHECK_NAMES
from tests.alerts.support import json_url, messages
from tests.factories import Harness
from tests.ops.monitor_support import (
    NO_FLAWS,
    Flaws,
    Service,
    monitor_alerts,
    monitor_runs,
    private_ca,
    recorded_text,
    seed_service,
    stand_in_edge,
)
from tests.processes import free_port
from tests.test_cli import Result, cli_env, run_many
from tests.webhooks.support import receiver

pytestmark = pytest.mark.slow  # an API process and the CLI in subprocesses


@pytest.fixture
def service(harness: Harness, tmp_path: Path) -> Iterator[Service]:
    running = seed_service(harness, tmp_path)
    running.api.start()
    try:
        yield running
    finally:
        running.api.stop()


def report(result: Result) -> dict[str, object]:
    assert "Traceback" not in result.stdout + result.stderr, result
    parsed: dict[str, object] = json.loads(result.stdout)
    return parsed


def outcomes(parsed: dict[str, object]) -> dict[str, str]:
    checks = parsed["checks"]
    assert isinstance(checks, list)
    return {check["name"]: check["outcome"] for check in checks}


def reason_of(parsed: dict[str, object], name: str) -> str:
    checks = parsed["checks"]
    assert isinstance(checks, list)
    return str(next(check["reason"] for check in checks if check["name"] == name))


def host_of(url: str) -> str:
    return url.split("://", 1)[1]


def assert_never_shown(secret: str, service: Service, *texts: str) -> None:
    """The secret is nowhere: the given outputs, the API's log, the ops_runs and alerts tables."""
    everywhere = [*texts, service.api.output(), recorded_text(service.harness)]
    assert not [text for text in everywhere if secret in text]


def test_l1_every_launch_check_passes_against_the_service_and_the_run_is_recorded(
    service: Service,
) -> None:
    as_json, human = service.monitors([("--json", service.api.url), (service.api.url,)])
    assert as_json.returncode == 0, as_json
    parsed = report(as_json)
    assert outcomes(parsed) == dict.fromkeys(CHECK_NAMES, "pass")
    assert parsed["overall"] == "pass" and parsed["base_url"] == service.api.url
    assert service.project_id in reason_of(parsed, "client-config")
    assert "Canary" in reason_of(parsed, "client-config")
    assert service.project_id in reason_of(parsed, "backend-key")
    assert human.returncode == 0, human
    assert all(f"PASS {name}" in human.stdout for name in CHECK_NAMES), human
    runs = monitor_runs(service.harness)
    assert len(runs) == 2 and {run.outcome for run in runs} == {"succeeded"}
    recorded = next(run for run in runs if run.id == parsed["run_id"])
    assert [(c["name"], c["outcome"]) for c in recorded.detail["checks"]] == [
        (name, "pass") for name in CHECK_NAMES
    ]
    assert recorded.error is None and recorded.finished_at is not None
    assert_never_shown(service.secret_key, service, *(r.stdout + r.stderr for r in (as_json, human)))


def test_l1_l2_an_outage_pages_once_and_its_end_once_across_one_shot_runs(service: Service) -> None:
    """Cron-style: every run a process of its own; what stands is read from the database."""
    with receiver() as channel:
        env = {"SILVER_ALERT_URLS": json_url(channel)}
        results = [service.monitor("--json", service.api.url, **env)]
        assert results[0].returncode == 0, results[0]
        assert messages(channel) == []

        service.api.stop()
        for _ in range(3):
            results.append(service.monitor("--json", service.api.url, **env))
            assert results[-1].returncode == 1, results[-1]
            assert outcomes(report(results[-1])) == dict.fromkeys(CHECK_NAMES, "fail")
        down = messages(channel)
        standing = monitor_alerts(service.harness)

        service.api.start()
        for _ in range(2):
            results.append(service.monitor("--json", service.api.url, **env))
            assert results[-1].returncode == 0, results[-1]
        received = messages(channel)
        bodies = [got.body.decode() for got in channel.received]

    subject = f"health@{host_of(service.api.url)}"
    [failure] = down
    assert failure["type"] == "failure"
    assert "monitor_check_failed" in failure["title"] and subject in failure["title"]
    assert "cannot connect" in failure["message"] and "config, client-config" in failure["message"]
    [(alert, [delivery])] = standing
    assert (alert.kind, alert.subject, alert.state) == ("monitor_check_failed", subject, "raised")
    assert delivery.status == "sent"
    assert [report(r)["alerts"] for r in results[1:4]] == [
        {"raised": [subject], "cleared": []},
        {"raised": [], "cleared": []},
        {"raised": [], "cleared": []},
    ]

    assert len(received) == 2, received
    recovery = received[1]
    assert recovery["type"] == "success" and "resolved" in recovery["title"] and subject in recovery["title"]
    assert "health passes again" in recovery["message"]
    [(alert, deliveries)] = monitor_alerts(service.harness)
    assert alert.state == "cleared" and [d.event for d in deliveries] == ["raised", "resolved"]
    assert alert.occurrences == 1  # the runs while it stood did not even raise it again
    assert [report(r)["alerts"] for r in results[4:]] == [
        {"raised": [], "cleared": [subject]},
        {"raised": [], "cleared": []},
    ]
    runs = monitor_runs(service.harness)
    assert [run.outcome for run in runs] == ["succeeded"] + ["failed"] * 3 + ["succeeded"] * 2
    assert runs[1].error is not None and runs[1].error.startswith("health: GET")
    assert_never_shown(service.secret_key, service, *bodies, *(r.stdout + r.stderr for r in results))


def test_l2_an_every_loop_pages_once_per_transition_and_stops_on_sigterm(service: Service) -> None:
    with receiver() as channel:
        loop = service.looping(
            "--json", "--every", "1s", service.api.url, SILVER_ALERT_URLS=json_url(channel)
        )
        try:
            loop.wait_for("a first run", lambda: len(loop.reports()) >= 1)
            assert loop.reports()[0]["overall"] == "pass"

            service.api.stop()
            loop.wait_for("the failure alert", lambda: len(channel.received) >= 1)
            loop.runs_after(len(loop.reports()), 3)  # failing runs after the alert: none pages again
            assert [m["type"] for m in messages(channel)] == ["failure"]

            service.api.start()
            loop.wait_for("the recovery", lambda: len(channel.received) >= 2)
            loop.runs_after(len(loop.reports()), 3)
            assert [m["type"] for m in messages(channel)] == ["failure", "success"]
            assert loop.reports()[-1]["overall"] == "pass"
            assert loop.stop() == 0
        finally:
            loop.kill()
        bodies = [got.body.decode() for got in channel.received]
    reports = loop.reports()
    raised = [subject for r in reports for subject in r["alerts"]["raised"]]
    cleared = [subject for r in reports for subject in r["alerts"]["cleared"]]
    subject = f"health@{host_of(service.api.url)}"
    assert raised == [subject] and cleared == [subject]
    assert len(monitor_runs(service.harness)) == len(reports)
    output = loop.stdout.read_text() + loop.stderr.read_text()
    assert "Traceback" not in output
    assert_never_shown(service.secret_key, service, output, *bodies)


@pytest.fixture
def metrics_service(harness: Harness, tmp_path: Path) -> Iterator[tuple[Service, int]]:
    """The API with its metrics listener on (loopback, its own port), as production runs it."""
    port = free_port()
    running = seed_service(harness, tmp_path, SILVER_METRICS_PORT=str(port))
    running.api.start()
    try:
        yield running, port
    finally:
        running.api.stop()


def test_l1_a_broken_edge_fails_the_console_boundary_and_pages_for_it(
    metrics_service: tuple[Service, int],
) -> None:
    """The edge serves a signed-in user's cached console answer to anyone, routes /metrics to the
    metrics listener, and merges a debug field holding a webhook secret into /v1/config."""
    service, metrics_port = metrics_service
    me = service.owner.get("/console/api/me")
    assert me.status_code == 200
    leaked = "whsec_" + "Zm9yZ2V0LW1lLW5vdC1hLXJlYWwtc2VjcmV0"
    flaws = Flaws(
        cached={"/console/api/me": me.content},
        routes={"/metrics": f"http://127.0.0.1:{metrics_port}"},
        injected={"/v1/config": {"debug": {"signing": leaked}}},
    )
    with receiver() as channel, stand_in_edge(service.api.url, flaws) as edge:
        env = {"SILVER_ALERT_URLS": json_url(channel)}
        broken_edge, broken_accounts_host, broken_auth_host = service.monitors(
            [
                ("--json", edge),
                ("--json", service.api.url, "--accounts-url", edge),  # the console host is the broken one
                ("--json", edge, "--accounts-url", service.api.url),  # the auth host serves console routes
            ],
            **env,
        )
        sent = messages(channel)
    for result in (broken_edge, broken_accounts_host, broken_auth_host):
        assert result.returncode == 1, result
        assert outcomes(report(result)) == {**dict.fromkeys(CHECK_NAMES, "pass"), "console-boundary": "fail"}
    reason = reason_of(report(broken_edge), "console-boundary")
    assert f"GET {edge}/console/api/me anonymously answered 200" in reason
    assert f"GET {edge}/console/api/me with the backend key answered 200" in reason
    assert f"GET {edge}/metrics answered 200" in reason
    assert "/v1/config holds a secret-shaped value at $.debug.signing" in reason
    for result in (broken_accounts_host, broken_auth_host):
        reason = reason_of(report(result), "console-boundary")
        assert f"GET {edge}/console/api/me anonymously answered 200" in reason
        assert f"{service.api.url}/console" not in reason  # the API refuses where it serves
    # The first and third runs watch the same base URL: one alert between them, sent once.
    subjects = sorted(m["title"].rsplit("(", 1)[1].rstrip(")") for m in sent)
    assert subjects == sorted(
        [f"console-boundary@{host_of(edge)}", f"console-boundary@{host_of(service.api.url)}"]
    )
    assert {m["type"] for m in sent} == {"failure"}
    outputs = [r.stdout + r.stderr for r in (broken_edge, broken_accounts_host, broken_auth_host)]
    for secret in (service.secret_key, leaked):
        assert_never_shown(secret, service, *outputs, *(json.dumps(m) for m in sent))


def test_l1_a_private_ca_is_trusted_only_when_given(service: Service, tmp_path: Path) -> None:
    """Behind TLS from a CA of its own (as Caddy's internal CA): untrusted by default, in one line per
    check; trusted with --ca-file, or SSL_CERT_FILE."""
    ca_file, tls = private_ca(tmp_path)
    with stand_in_edge(service.api.url, NO_FLAWS, tls) as edge:
        untrusted, given = service.monitors([("--json", edge), ("--json", edge, "--ca-file", str(ca_file))])
        [from_env] = service.monitors([("--json", edge)], SSL_CERT_FILE=str(ca_file))
    assert untrusted.returncode == 1, untrusted
    assert outcomes(report(untrusted)) == dict.fromkeys(CHECK_NAMES, "fail")
    assert "TLS certificate not trusted" in reason_of(report(untrusted), "health")
    assert "--ca-file" in reason_of(report(untrusted), "health")
    for trusted in (given, from_env):
        assert trusted.returncode == 0, trusted
        assert outcomes(report(trusted)) == dict.fromkeys(CHECK_NAMES, "pass")


def test_l1_without_a_database_the_checks_run_and_alerts_go_to_the_log(tmp_path: Path) -> None:
    """A monitor on a host with no database: nothing recorded, nothing created, the alert in the log."""
    data = tmp_path / "nothing-here"
    dead = f"http://127.0.0.1:{free_port()}"
    [result] = run_many([(("monitor", dead), cli_env(data), "")], tmp_path)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stdout + result.stderr
    assert "FAIL health" in result.stdout and "cannot connect: connection refused" in result.stdout
    assert "runs are not recorded, and alerts go to the log only" in result.stderr
    assert "monitor_check_failed" in result.stderr and f"health@{host_of(dead)}" in result.stderr
    assert not data.exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("ftp://auth.seqn.in",), "BASE_URL must be an http:// or https:// URL"),
        (("https://user:pw@auth.seqn.in",), "BASE_URL must not carry credentials"),
        (("https://auth.seqn.in", "--accounts-url", "accounts.seqn.in"), "--accounts-url must be"),
        (("https://auth.seqn.in", "--every", "3d"), "--every must be a number of seconds"),
        (("https://auth.seqn.in", "--every", "0s"), "--every must be between 1s and 24h"),
        (("https://auth.seqn.in", "--ca-file", "/nonexistent/ca.pem"), "--ca-file /nonexistent/ca.pem"),
        (("https://auth.seqn.in", "--publishable-key", "sk_test_" + "x" * 43), "is a secret key"),
    ],
)
def test_l1_bad_arguments_fail_in_one_line(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    [result] = run_many([(("monitor", *args), cli_env(tmp_path / "data"), "")], tmp_path)
    assert result.returncode == 2, result
    line = result.one_line_failure()
    assert says in line and "pw" not in line and "xxxxxxxx" not in line
    assert not (tmp_path / "data").exists()
