"""The Prometheus metrics move with what the service does, under bounded labels; and they are not on the
API's own listener (the console boundary, L1)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from silver_auth.core import metrics
from silver_auth.db.session import transaction
from silver_auth.throttle.service import Limit, TooManyAttempts
from silver_auth.webhooks.metrics import watch
from tests.endusers.support import backend, customer_project, exchange, sign_up
from tests.factories import Harness
from tests.observability.support import sample
from tests.webhooks.support import deliver, hooks, project_with_endpoint, receiver

__all__ = ["hooks"]

REQUESTS = "silver_http_requests_total"
DURATION_COUNT = "silver_http_request_duration_seconds_count"


def test_requests_are_counted_by_route_template_method_and_status(harness: Harness) -> None:
    owner = harness.user()
    project_id = harness.project(owner, harness.org(owner)["id"])["id"]
    secret = harness.key(owner, project_id, "secret", "live")["key"]
    project = {"route": "/v1/backend/project", "method": "GET", "status": "200"}
    user = {"route": "/v1/backend/users/{user_id}", "method": "GET", "status": "404"}
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    before = {
        "project": sample(REQUESTS, **project),
        "user": sample(REQUESTS, **user),
        "unmatched": sample(REQUESTS, **unmatched),
        "latency": sample(DURATION_COUNT, route="/v1/backend/project"),
    }
    for _ in range(3):  # a cache miss (the route handler), then the hot path twice
        assert harness.backend("/v1/backend/project", secret).status_code == 200
    for n in range(2):  # two users, one series: the template, not the path
        assert harness.backend(f"/v1/backend/users/usr_nobody{n}", secret).status_code == 404
    harness.client.get("/no/such/page")
    assert sample(REQUESTS, **project) == before["project"] + 3
    assert sample(REQUESTS, **user) == before["user"] + 2
    assert sample(REQUESTS, **unmatched) == before["unmatched"] + 1
    assert sample(DURATION_COUNT, route="/v1/backend/project") == before["latency"] + 3
    exposed = metrics.exposition(harness.settings).decode()
    assert "usr_nobody" not in exposed and "/no/such/page" not in exposed  # raw paths never label


def test_unknown_methods_share_one_label(harness: Harness) -> None:
    other = {"route": "/health", "method": "OTHER", "status": "405"}
    before = sample(REQUESTS, **other)
    for method in ("BREW", "PROPFIND", "X-ANYTHING"):
        assert harness.client.request(method, "/health").status_code == 405
    assert sample(REQUESTS, **other) == before + 3


@pytest.mark.parametrize("path", ["/metrics", "/metrics/", "/metrics?format=prometheus", "/v1/metrics"])
def test_l1_the_metrics_are_not_on_the_api_listener(harness: Harness, path: str) -> None:
    """Console boundary: what Caddy exposes (the API's port) answers 404 on /metrics; the metrics have
    a listener of their own on loopback (G5)."""
    answer = harness.client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "silver_" not in answer.text


def test_throttle_refusals_are_counted_by_scope(harness: Harness) -> None:
    throttle = harness.runtime.throttle
    limit = Limit("metrics_test_ip", "203.0.113.50", max_failures=1, window=timedelta(minutes=5))
    before = sample("silver_throttle_refusals_total", scope="metrics_test_ip")
    harness.run(lambda: throttle.reserve([limit]))
    for _ in range(2):
        with pytest.raises(TooManyAttempts):
            harness.run(lambda: throttle.reserve([limit]))
    assert sample("silver_throttle_refusals_total", scope="metrics_test_ip") == before + 2


def test_console_sessions_created_and_revoked_are_counted(harness: Harness) -> None:
    created = sample("silver_sessions_created_total", kind="console")
    signed_out = sample("silver_sessions_revoked_total", kind="console", reason="signed_out")
    revoked = sample("silver_sessions_revoked_total", kind="console", reason="revoked")
    owner = harness.user()
    other = harness.sign_in(owner.email)
    assert sample("silver_sessions_created_total", kind="console") == created + 2
    owner.ok("POST", "/console/api/sessions/revoke-others")  # ends `other`
    assert sample("silver_sessions_revoked_total", kind="console", reason="revoked") == revoked + 1
    assert other.get("/console/api/me").status_code == 401
    owner.ok("POST", "/console/api/sign-out", 204)
    assert sample("silver_sessions_revoked_total", kind="console", reason="signed_out") == signed_out + 1


def test_end_user_sessions_created_and_revoked_are_counted(harness: Harness) -> None:
    project = customer_project(harness)
    created = sample("silver_sessions_created_total", kind="end_user")
    revoked = sample("silver_sessions_revoked_total", kind="end_user", reason="revoked")
    _, code = sign_up(harness, project, "ada@example.com")
    assert sample("silver_sessions_created_total", kind="end_user") == created + 1
    exchanged = exchange(harness, project, code)
    assert exchanged.status_code == 200, exchanged.text
    user_id = exchanged.json()["user_id"]
    answer = backend(harness, project, "POST", f"/users/{user_id}/sessions/revoke")
    assert answer.status_code == 200 and answer.json()["revoked"] == 1
    assert sample("silver_sessions_revoked_total", kind="end_user", reason="revoked") == revoked + 1


def test_a_session_rolled_back_is_not_counted(harness: Harness) -> None:
    """Counted on commit: a sign-in whose transaction fails started no session."""
    from silver_auth.accounts.models import Account  # noqa: PLC0415
    from silver_auth.accounts.sessions import start_console_session  # noqa: PLC0415

    owner = harness.user()
    before = sample("silver_sessions_created_total", kind="console")

    async def fail_after_start() -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            account = await db.get(Account, owner.account_id)
            assert account is not None
            await start_console_session(
                db, harness.runtime.sessions, harness.settings, account, ip=None, user_agent=None
            )
            raise RuntimeError("the rest of the sign-in failed")

    with pytest.raises(RuntimeError):
        harness.run(fail_after_start)
    assert sample("silver_sessions_created_total", kind="console") == before


def test_g34_webhook_outcomes_and_backlog(hooks: Harness) -> None:
    with receiver([204, 500]) as target:
        owner, _, endpoint = project_with_endpoint(hooks, target.url)
        succeeded = sample("silver_webhook_attempts_total", outcome="succeeded")
        failed = sample("silver_webhook_attempts_total", outcome="http_error")
        owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
        owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
        assert deliver(hooks) == 2
    assert sample("silver_webhook_attempts_total", outcome="succeeded") == succeeded + 1
    assert sample("silver_webhook_attempts_total", outcome="http_error") == failed + 1
    # The failed one waits for its retry: the watch reads the backlog from the database.
    hooks.run(lambda: watch(hooks.runtime.sessionmaker, hooks.settings))
    assert sample("silver_webhook_backlog") == 1
    assert sample("silver_webhook_retrying") == 1
    assert sample("silver_webhook_oldest_pending_seconds") >= 0


def test_the_limiter_and_alert_helpers_count(harness: Harness) -> None:
    """What the limiter (its 429s, by policy and key prefix) and the alert router (deliveries) count."""
    keyed = sample("silver_rate_limited_total", policy="backend", key_prefix="sk_live_ab12")
    anonymous = sample("silver_rate_limited_total", policy="sign_in", key_prefix="none")
    sent = sample("silver_alert_deliveries_total", outcome="sent")
    metrics.count_rate_limited("backend", "sk_live_ab12")
    metrics.count_rate_limited("sign_in", None)
    metrics.count_alert_delivery("sent")
    assert sample("silver_rate_limited_total", policy="backend", key_prefix="sk_live_ab12") == keyed + 1
    assert sample("silver_rate_limited_total", policy="sign_in", key_prefix="none") == anonymous + 1
    assert sample("silver_alert_deliveries_total", outcome="sent") == sent + 1


def test_every_metric_is_in_the_exposition_with_help(harness: Harness) -> None:
    exposed = metrics.exposition(harness.settings).decode()
    for name in metrics.METRIC_NAMES:
        assert f"# HELP {name}" in exposed, name
    assert "silver_http_requests_created" not in exposed  # no creation-time series beside counters


def test_the_latency_histogram_has_prometheus_buckets() -> None:
    """`le` is inclusive and cumulative; `_count` and `_sum` follow (whichever store counts them)."""
    route = "/test/{histogram}"
    for seconds in (0.0004, 0.0005, 0.002, 3.0, 20.0):
        metrics.record_request(route, "GET", 200, seconds)

    def bucket(le: str) -> float:
        return sample("silver_http_request_duration_seconds_bucket", route=route, le=le)

    assert [bucket(le) for le in ("0.0005", "0.001", "0.0025", "2.5", "5.0", "10.0", "+Inf")] == [
        2,
        2,
        3,
        3,
        4,
        4,
        5,
    ]
    assert sample("silver_http_request_duration_seconds_count", route=route) == 5
    assert sample("silver_http_request_duration_seconds_sum", route=route) == pytest.approx(23.0029)
    assert sample(REQUESTS, route=route, method="GET", status="200") == 5
