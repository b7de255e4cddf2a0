"""Signed delivery to a real receiver (G31-G33), verified by independent libraries; retries, 410, replay."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError as SvixVerificationError

from silver_auth.core import clock
from tests.factories import Harness
from tests.webhooks.support import deliver, hooks, project_with_endpoint, receiver, worker_settings

__all__ = ["hooks"]


def test_g31_test_event_is_signed_and_verifies_with_standardwebhooks_and_svix(hooks: Harness) -> None:
    with receiver() as target:
        owner, _, endpoint = project_with_endpoint(hooks, target.url)
        secret = endpoint["secret"]
        assert secret.startswith("whsec_")
        sent = owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
        assert deliver(hooks) == 1
        [got] = target.received
    assert got.headers["webhook-id"] == sent["id"]
    body = Webhook(secret).verify(got.body, got.headers)
    assert body["type"] == "webhook.test" and body["version"] == 1
    svix_headers = {
        "svix-id": got.headers["webhook-id"],
        "svix-timestamp": got.headers["webhook-timestamp"],
        "svix-signature": got.headers["webhook-signature"],
    }
    SvixWebhook(secret).verify(got.body, svix_headers)  # raises unless a signature matches
    assert body["data"]["endpoint_id"] == endpoint["id"]
    # G32: a wrong secret, a changed body and an old timestamp all fail.
    other = owner.ok(
        "POST", f"/console/api/webhooks/{endpoint['id']}/rotate-secret", 200, json={"overlap_hours": 0}
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(other["secret"]).verify(got.body, got.headers)
    with pytest.raises(SvixVerificationError):
        SvixWebhook(secret).verify(got.body.replace(b"test", b"tset"), svix_headers)
    stale = {**got.headers, "webhook-timestamp": str(int(time.time()) - 301)}
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(got.body, stale)


def test_failing_receiver_gets_the_message_on_the_fourth_attempt(hooks: Harness) -> None:
    with receiver(answers=[500, 502, 503, 204]) as target:
        owner, _, endpoint = project_with_endpoint(hooks, target.url)
        sent = owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
        schedule = hooks.settings.webhook_retry_schedule
        deliver(hooks)
        for attempt in range(1, 4):
            clock.advance(schedule[attempt] + 1)
            deliver(hooks)
        assert len(target.received) == 4
        assert {r.headers["webhook-id"] for r in target.received} == {sent["id"]}
    page = owner.ok("GET", f"/console/api/webhooks/{endpoint['id']}/messages")
    [message] = page["items"]
    assert message["status"] == "succeeded" and message["attempt_count"] == 4
    assert [a["http_status"] for a in message["attempts"]] == [500, 502, 503, 204]
    assert [a["outcome"] for a in message["attempts"]] == ["http_error"] * 3 + ["succeeded"]


def test_410_gone_disables_the_endpoint_at_once(hooks: Harness) -> None:
    with receiver(answers=[410]) as target:
        owner, _, endpoint = project_with_endpoint(hooks, target.url)
        owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
        owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
        deliver(hooks)
        assert len(target.received) == 1
    state = owner.ok("GET", f"/console/api/webhooks/{endpoint['id']}")
    assert state["enabled"] is False and "410" in state["disabled_reason"]


def test_dead_letter_after_the_schedule_then_replay(hooks: Harness) -> None:
    with receiver(answers=[500]) as target:
        owner, _, endpoint = project_with_endpoint(hooks, target.url)
        sent = owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
        start = datetime.now(UTC) - timedelta(minutes=1)
        for delay in hooks.settings.webhook_retry_schedule:
            clock.advance(delay + 1)
            deliver(hooks)
        schedule_length = len(hooks.settings.webhook_retry_schedule)
        assert len(target.received) == schedule_length
        owner = hooks.sign_in(owner.email)  # a day and a half later: the console session has ended
        [message] = owner.ok("GET", f"/console/api/webhooks/{endpoint['id']}/messages?status=failed")["items"]
        assert message["id"] == sent["id"]
        target.answers = [204]
        queued = owner.ok(
            "POST", f"/console/api/webhooks/{endpoint['id']}/replay", 202, json={"since": start.isoformat()}
        )
        assert queued == {"queued": 1}
        deliver(hooks)
        assert len(target.received) == schedule_length + 1
        assert target.received[-1].headers["webhook-id"] == sent["id"]
    [message] = owner.ok("GET", f"/console/api/webhooks/{endpoint['id']}/messages")["items"]
    assert message["status"] == "succeeded"
    assert json.loads(target.received[-1].body)["type"] == "webhook.test"


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt_and_retried(
    apps: Any, tmp_path: Path, database_url: str
) -> None:
    settings = worker_settings(tmp_path, database_url, SILVER_WEBHOOK_TIMEOUT_SECONDS=0.5)
    with apps.serve(settings) as client:
        harness = Harness(client, client.app.state.runtime.settings)
        with receiver(delay=1.5) as target:
            owner, _, endpoint = project_with_endpoint(harness, target.url)
            owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
            deliver(harness)
            [message] = owner.ok("GET", f"/console/api/webhooks/{endpoint['id']}/messages")["items"]
    assert message["status"] == "pending" and message["next_attempt_at"] is not None
    [attempt] = message["attempts"]
    assert attempt["outcome"] == "timeout" and attempt["http_status"] is None


def test_a_redirect_is_not_followed_but_counts_as_a_failed_attempt(hooks: Harness) -> None:
    with receiver(answers=[307, 204]) as target:
        owner, _, endpoint = project_with_endpoint(hooks, target.url)
        owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
        deliver(hooks)
        assert len(target.received) == 1  # one request: no second one to wherever it pointed
        [message] = owner.ok("GET", f"/console/api/webhooks/{endpoint['id']}/messages")["items"]
    assert message["status"] == "pending"
    assert [(a["outcome"], a["http_status"]) for a in message["attempts"]] == [("http_error", 307)]
