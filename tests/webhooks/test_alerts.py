"""G34: a growing backlog, an endpoint whose attempts mostly fail, and an endpoint failing for the stated
time each raise one alert (a structured log event), which clears when the condition ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from silver_auth.alerts.service import standing
from silver_auth.core import clock
from silver_auth.webhooks.delivery import DeliveryWorker
from silver_auth.webhooks.metrics import watch
from tests.factories import Harness
from tests.webhooks.support import deliver, project_with_endpoint, receiver, worker_settings


@pytest.fixture
def alerting(apps: Any, tmp_path: Path, database_url: str) -> Iterator[Harness]:
    settings = worker_settings(
        tmp_path,
        database_url,
        SILVER_WEBHOOK_BACKLOG_ALERT_COUNT=5,
        SILVER_WEBHOOK_FAILURE_ALERT_MIN_ATTEMPTS=3,
        SILVER_WEBHOOK_DISABLE_AFTER_HOURS=1,
        SILVER_WEBHOOK_RETRY_SCHEDULE="0,1200,1200,1200,1200",
    )
    with apps.serve(settings) as client:
        yield Harness(client, client.app.state.runtime.settings)


def _alerts(logs: list[dict[str, Any]], event: str = "alert") -> list[dict[str, Any]]:
    return [line for line in logs if line.get("event") == event]


def _watch(harness: Harness) -> None:
    harness.run(lambda: watch(harness.runtime.sessionmaker, harness.runtime.settings))


def test_g34_backlog_over_the_threshold_raises_one_alert_and_clears(alerting: Harness) -> None:
    with receiver() as target, capture_logs() as output:
        owner, _, endpoint = project_with_endpoint(alerting, target.url)
        for _ in range(6):
            owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
        runtime = alerting.runtime
        worker = DeliveryWorker(runtime.sessionmaker, runtime.sealer, runtime.settings)
        alerting.run(worker.sequence)  # six deliveries pending, none sent
        _watch(alerting)
        _watch(alerting)  # still standing: not raised twice
        deliver(alerting)
        _watch(alerting)
    raised = [a for a in _alerts(output) if a["kind"] == "webhook_backlog"]
    assert len(raised) == 1 and raised[0]["backlog"] == 6
    assert [a["kind"] for a in _alerts(output, "alert_cleared")] == ["webhook_backlog"]


def test_g34_failing_endpoint_raises_an_alert_then_is_disabled_after_the_stated_time(
    alerting: Harness,
) -> None:
    with receiver(answers=[500]) as target, capture_logs() as output:
        owner, project, endpoint = project_with_endpoint(alerting, target.url)
        for _ in range(3):
            owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
        deliver(alerting)
        _watch(alerting)
        failing = [a for a in _alerts(output) if a["kind"] == "webhook_endpoint_failing"]
        assert len(failing) == 1 and failing[0]["subject"] == endpoint["id"]
        assert failing[0]["project_id"] == project["id"] and failing[0]["failure_rate"] == 1.0
        for _ in range(4):  # retries 20 minutes apart: past an hour of nothing but failures
            clock.advance(1201)
            deliver(alerting)
        sent = len(target.received)
    owner = alerting.sign_in(owner.email)
    state = owner.ok("GET", f"/console/api/webhooks/{endpoint['id']}")
    assert state["enabled"] is False and "failed for 1 hours" in state["disabled_reason"]
    disabled = [a for a in _alerts(output) if a["kind"] == "webhook_endpoint_disabled"]
    assert len(disabled) == 1 and disabled[0]["subject"] == endpoint["id"]
    audit = owner.ok("GET", f"/console/api/orgs/{project['org_id']}/audit?action=webhook.endpoint_disabled")
    assert [e["target"] for e in audit["items"]] == [endpoint["id"]]
    clock.advance(1201)
    deliver(alerting)  # a disabled endpoint is sent nothing
    assert len(target.received) == sent
    assert any(a["kind"] == "webhook_endpoint_disabled" for a in standing())
