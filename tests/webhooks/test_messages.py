"""Messages in the console (G34): filters, paging, one message with its attempts, replays, test events,
and the delivery metrics of a project."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from silver_auth.core import clock
from silver_auth.db.session import transaction
from silver_auth.webhooks.delivery import DeliveryWorker
from silver_auth.webhooks.events import EventType
from silver_auth.webhooks.outbox import emit
from tests.factories import ConsoleUser, Harness
from tests.webhooks.support import deliver, project_with_endpoint, receiver, worker_settings

CONSOLE = "/console/api"
SHORT_SCHEDULE = [0.0, 5.0]
"""Two attempts, then a dead letter: `failed` within seconds of simulated time."""


@pytest.fixture
def short(apps: Any, tmp_path: Path, database_url: str) -> Iterator[Harness]:
    schedule = ",".join(str(s) for s in SHORT_SCHEDULE)
    with apps.serve(
        worker_settings(tmp_path, database_url, SILVER_WEBHOOK_RETRY_SCHEDULE=schedule)
    ) as client:
        yield Harness(client, client.app.state.runtime.settings)


def emit_now(harness: Harness, kind: EventType, project: dict[str, Any], environment: str = "test") -> str:
    async def work() -> str:
        async with transaction(harness.runtime.sessionmaker) as db:
            return emit(db, kind, {"kind": str(kind)}, project_id=project["id"], environment=environment).id

    return harness.run(work)


def sequence(harness: Harness) -> None:
    runtime = harness.runtime
    harness.run(DeliveryWorker(runtime.sessionmaker, runtime.sealer, runtime.settings).sequence)


def listed(owner: ConsoleUser, endpoint_id: str, query: str = "") -> list[str]:
    items = owner.ok("GET", f"{CONSOLE}/webhooks/{endpoint_id}/messages{query}")["items"]
    return [m["id"] for m in items]


def test_messages_filter_by_status_and_type_and_page_with_before(short: Harness) -> None:
    with receiver() as target:
        owner, project, endpoint = project_with_endpoint(short, target.url)
        path = f"{CONSOLE}/webhooks/{endpoint['id']}"
        succeeded = emit_now(short, EventType.USER_CREATED, project)
        deliver(short)
        target.answers = [500]
        failed = emit_now(short, EventType.SESSION_CREATED, project)
        deliver(short)
        clock.advance(SHORT_SCHEDULE[1] + 1)
        deliver(short)  # the second and last attempt: a dead letter
        pending = emit_now(short, EventType.USER_CREATED, project)
        sequence(short)  # due, never attempted
        target.answers = [204]
        tested = owner.ok("POST", f"{path}/test", 202)["id"]
        sequence(short)
    newest_first = [tested, pending, failed, succeeded]
    assert listed(owner, endpoint["id"]) == newest_first
    assert listed(owner, endpoint["id"], "?status=failed") == [failed]
    assert listed(owner, endpoint["id"], "?status=pending") == [tested, pending]
    assert listed(owner, endpoint["id"], "?status=succeeded") == [succeeded]
    assert listed(owner, endpoint["id"], "?event_type=user.created") == [pending, succeeded]
    assert listed(owner, endpoint["id"], "?event_type=user.created&status=succeeded") == [succeeded]
    assert listed(owner, endpoint["id"], "?event_type=webhook.test") == [tested]
    assert listed(owner, endpoint["id"], "?event_type=user.exploded") == []
    bad = owner.get(f"{path}/messages?status=lost")
    assert bad.status_code == 422 and bad.json()["type"].endswith("/invalid-request")
    # `before`: the previous page's `next`, one message a page, down to the oldest.
    seen: list[str] = []
    query = "?limit=1"
    while True:
        page = owner.ok("GET", f"{path}/messages{query}")
        seen += [m["id"] for m in page["items"]]
        if page["next"] is None:
            break
        assert page["next"] == page["items"][-1]["cursor"]
        query = f"?limit=1&before={page['next']}"
    assert seen == newest_first
    two = owner.ok("GET", f"{path}/messages?status=pending&limit=1")
    assert [m["id"] for m in two["items"]] == [tested]
    rest = owner.ok("GET", f"{path}/messages?status=pending&limit=1&before={two['next']}")
    assert [m["id"] for m in rest["items"]] == [pending] and rest["next"] is None


def test_one_message_with_its_attempts(short: Harness) -> None:
    with receiver(answers=[503, 204]) as target:
        owner, project, endpoint = project_with_endpoint(short, target.url)
        path = f"{CONSOLE}/webhooks/{endpoint['id']}"
        sent = emit_now(short, EventType.USER_UPDATED, project)
        deliver(short)
        pending = owner.ok("GET", f"{path}/messages/{sent}")
        assert pending["status"] == "pending" and pending["attempt_count"] == 1
        assert pending["next_attempt_at"] is not None
        clock.advance(SHORT_SCHEDULE[1] + 1)
        deliver(short)
    message = owner.ok("GET", f"{path}/messages/{sent}")
    assert message["id"] == sent and message["event_type"] == "user.updated"
    assert message["status"] == "succeeded" and message["attempt_count"] == 2
    assert message["next_attempt_at"] is None
    assert message["payload"] == json.loads(target.received[0].body)
    assert [(a["outcome"], a["http_status"]) for a in message["attempts"]] == [
        ("http_error", 503),
        ("succeeded", 204),
    ]
    assert message["attempts"][0]["response_excerpt"] == "nope"
    assert all(a["duration_ms"] >= 0 and a["error_class"] is None for a in message["attempts"])
    assert [r.headers["webhook-id"] for r in target.received] == [sent, sent]
    missing = owner.get(f"{path}/messages/msg_{'0' * 26}")
    assert missing.status_code == 404 and missing.json()["type"].endswith("/not-found")


def test_replay_one_message_sends_the_same_webhook_id_again(short: Harness) -> None:
    with receiver() as target:
        owner, project, endpoint = project_with_endpoint(short, target.url)
        path = f"{CONSOLE}/webhooks/{endpoint['id']}"
        first = emit_now(short, EventType.USER_CREATED, project)
        other = emit_now(short, EventType.USER_DELETED, project)
        deliver(short)
        assert [r.headers["webhook-id"] for r in target.received] == [first, other]
        queued = owner.ok("POST", f"{path}/messages/{first}/replay", 202)
        assert queued == {"queued": 1}
        deliver(short)
        assert [r.headers["webhook-id"] for r in target.received] == [first, other, first]
        assert target.received[2].body == target.received[0].body  # the same bytes, freshly signed
    message = owner.ok("GET", f"{path}/messages/{first}")
    assert message["status"] == "succeeded"
    assert [a["outcome"] for a in message["attempts"]] == ["succeeded", "succeeded"]
    unknown = owner.post(f"{path}/messages/msg_{'0' * 26}/replay")
    assert unknown.status_code == 404


def test_replay_failed_since_a_time_queues_only_those(short: Harness) -> None:
    with receiver(answers=[500]) as target:
        owner, project, endpoint = project_with_endpoint(short, target.url)
        path = f"{CONSOLE}/webhooks/{endpoint['id']}"
        old = emit_now(short, EventType.USER_CREATED, project)
        clock.advance(60)
        recent = emit_now(short, EventType.USER_UPDATED, project)
        deliver(short)
        clock.advance(SHORT_SCHEDULE[1] + 1)
        deliver(short)
        assert listed(owner, endpoint["id"], "?status=failed") == [recent, old]
        target.answers = [204]
        ok = emit_now(short, EventType.SESSION_CREATED, project)
        deliver(short)
        recent_at = datetime.fromisoformat(owner.ok("GET", f"{path}/messages/{recent}")["created_at"])
        later = (recent_at + timedelta(seconds=1)).isoformat()
        assert owner.ok("POST", f"{path}/replay", 202, json={"since": later}) == {"queued": 0}
        since = (recent_at - timedelta(seconds=1)).isoformat()
        assert owner.ok("POST", f"{path}/replay", 202, json={"since": since}) == {"queued": 1}
        before = len(target.received)
        deliver(short)
        assert [r.headers["webhook-id"] for r in target.received[before:]] == [recent]
    assert listed(owner, endpoint["id"], "?status=failed") == [old]
    assert listed(owner, endpoint["id"], "?status=succeeded") == [ok, recent]


def test_send_test_delivers_a_webhook_test_event_to_that_endpoint_only(short: Harness) -> None:
    with receiver() as target, receiver() as bystander:
        owner, project, endpoint = project_with_endpoint(short, target.url)
        other = owner.ok(
            "POST",
            f"{CONSOLE}/projects/{project['id']}/webhooks",
            201,
            json={"url": bystander.url, "environment": "test"},
        )
        sent = owner.ok("POST", f"{CONSOLE}/webhooks/{endpoint['id']}/test", 202)
        deliver(short)
        [got] = target.received
        assert bystander.received == []
    assert got.headers["webhook-id"] == sent["id"]
    body = json.loads(got.body)
    assert body["type"] == "webhook.test" and body["data"]["endpoint_id"] == endpoint["id"]
    assert listed(owner, endpoint["id"]) == [sent["id"]]
    assert listed(owner, other["id"]) == []


def test_metrics_count_outcomes_backlog_and_failure_rate_per_endpoint(hooks_metrics: Any) -> None:
    harness, owner, project, healthy, failing = hooks_metrics
    metrics = owner.ok("GET", f"{CONSOLE}/projects/{project['id']}/webhooks/metrics")
    assert metrics["by_status"] == {"pending": 2, "succeeded": 3, "failed": 0}
    assert metrics["outcomes"] == {"succeeded": 3, "http_error": 2}
    assert metrics["backlog"] == 2 and metrics["retrying"] == 2
    assert metrics["oldest_pending_at"] is not None
    health = {e["endpoint_id"]: e for e in metrics["endpoints"]}
    assert health == {
        healthy: {"endpoint_id": healthy, "attempts": 3, "failures": 0, "failure_rate": 0.0},
        failing: {"endpoint_id": failing, "attempts": 2, "failures": 2, "failure_rate": 1.0},
    }
    clock.advance(2 * 3600)  # the failure rate covers the last hour; the backlog stays
    owner = harness.sign_in(owner.email)
    later = owner.ok("GET", f"{CONSOLE}/projects/{project['id']}/webhooks/metrics")
    assert later["endpoints"] == [] and later["backlog"] == 2


@pytest.fixture
def hooks_metrics(short: Harness) -> Iterator[tuple[Harness, ConsoleUser, dict[str, Any], str, str]]:
    """One project with a healthy and a failing endpoint; another org's failing endpoint beside it."""
    with receiver() as good, receiver(answers=[500]) as bad, receiver(answers=[500]) as elsewhere:
        owner, project, healthy = project_with_endpoint(short, good.url)
        failing = owner.ok(
            "POST",
            f"{CONSOLE}/projects/{project['id']}/webhooks",
            201,
            json={"url": bad.url, "environment": "test"},
        )
        stranger, _, theirs = project_with_endpoint(short, elsewhere.url)
        for _ in range(2):
            owner.ok("POST", f"{CONSOLE}/webhooks/{healthy['id']}/test", 202)
        stranger.ok("POST", f"{CONSOLE}/webhooks/{theirs['id']}/test", 202)
        emit_now(short, EventType.USER_CREATED, project)  # to both endpoints of the project
        deliver(short)
        assert (len(good.received), len(bad.received), len(elsewhere.received)) == (3, 1, 1)
        owner.ok("POST", f"{CONSOLE}/webhooks/{failing['id']}/test", 202)
        deliver(short)
        yield short, owner, project, healthy["id"], failing["id"]
