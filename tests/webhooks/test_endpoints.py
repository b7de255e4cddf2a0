"""Webhook endpoints in the console: where they may point (G30, checked at creation and again at delivery),
the plan's quota, changes and deletion, secrets shown once (G16) and audited (G27)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from silver_auth.audit.models import AuditEvent
from silver_auth.db.session import transaction
from silver_auth.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.factories import ConsoleUser, Harness
from tests.webhooks.support import count_rows, deliver, hooks, project_with_endpoint, receiver

__all__ = ["hooks"]

CONSOLE = "/console/api"
PROBLEM = "application/problem+json"
PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
NON_PUBLIC = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.5",
    "192.168.1.1",
    "169.254.169.254",
    "::1",
    "fc00::1",
    "::ffff:10.0.0.1",
    "::ffff:127.0.0.1",
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "0.0.0.0",  # noqa: S104 - an answer to refuse, not an address to bind
    "100.64.0.1",
]
"""Loopback, private, link-local (the cloud metadata address), unique-local, IPv4-mapped and 6to4 private,
the unspecified address and carrier-grade NAT: none of them is on the public internet."""


class Resolver:
    """An injected DNS: hostnames to addresses, counting every lookup (tests never touch real DNS)."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.answers:
            raise OSError(f"{host}: no such host")
        return self.answers[host]


def resolving(harness: Harness, answers: dict[str, list[str]]) -> Resolver:
    """The resolver the console's endpoint checks use from now on."""
    resolver = Resolver(answers)
    harness.runtime.webhook_resolver = resolver
    return resolver


def new_project(harness: Harness) -> tuple[ConsoleUser, str, str]:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    return owner, org_id, harness.project(owner, org_id)["id"]


def webhook_audit(harness: Harness) -> list[AuditEvent]:
    async def work() -> list[AuditEvent]:
        async with transaction(harness.runtime.sessionmaker) as db:
            found = await db.scalars(
                select(AuditEvent).where(AuditEvent.action.like("webhook.%")).order_by(AuditEvent.row_id)
            )
            return list(found.all())

    return harness.run(work)


def refused(response: Any, where: str) -> dict[str, Any]:
    assert response.status_code == 422, f"{where}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM), where
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/webhook-url-refused"), f"{where}: {body}"
    assert body["detail"].startswith("url:"), f"{where}: {body}"
    return body


def assert_nothing_stored(harness: Harness) -> None:
    assert count_rows(harness, WebhookEndpoint) == 0
    assert webhook_audit(harness) == []


# --- where an endpoint may point --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/in", "https (G30)"),
        ("http://127.0.0.1:8080/in", "https (G30)"),
        ("not a url", "spaces"),
        ("hooks.example.com/in", "absolute"),
        ("https://", "absolute"),
        ("ftp://hooks.example.com/in", "absolute"),
        ("//hooks.example.com/in", "absolute"),
        ("https://hooks.example.com:99999/in", "not a valid URL"),
        ("https://[::1/in", "not a valid URL"),
        ("https://user:pass@hooks.example.com/in", "credentials"),
        ("https://token@hooks.example.com/in", "credentials"),
        ("https://hooks.example.com/in#part", "fragment"),
        ("https://hooks.example.com/in\x00", "control characters"),
        ("https://hooks.example.com/in\r\nX-Injected: 1", "control characters"),
        ("https://hooks.example.com/\u202ein", "control characters"),
        ("https://hooks.example.com/" + "a" * 2100, "at most 2048"),
        ("https://unknown.example.com/in", "does not resolve"),
    ],
)
def test_live_endpoint_with_a_bad_url_is_refused_and_nothing_is_stored(
    hooks: Harness, url: str, why: str
) -> None:
    resolving(hooks, {"hooks.example.com": [PUBLIC_V4]})
    owner, _, project_id = new_project(hooks)
    response = owner.post(
        f"{CONSOLE}/projects/{project_id}/webhooks", json={"url": url, "environment": "live"}
    )
    body = refused(response, url)
    assert why in body["detail"], body
    assert_nothing_stored(hooks)


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_live_endpoint_whose_host_resolves_to_a_non_public_address_is_refused(
    hooks: Harness, address: str
) -> None:
    resolver = resolving(hooks, {"hooks.example.com": [address]})
    owner, _, project_id = new_project(hooks)
    response = owner.post(
        f"{CONSOLE}/projects/{project_id}/webhooks",
        json={"url": "https://hooks.example.com/in", "environment": "live"},
    )
    body = refused(response, address)
    assert "non-public address" in body["detail"]
    assert resolver.lookups == ["hooks.example.com"]
    assert_nothing_stored(hooks)


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_live_endpoint_with_a_non_public_address_literal_is_refused(hooks: Harness, address: str) -> None:
    resolver = resolving(hooks, {})
    owner, _, project_id = new_project(hooks)
    host = f"[{address}]" if ":" in address else address
    response = owner.post(
        f"{CONSOLE}/projects/{project_id}/webhooks",
        json={"url": f"https://{host}/in", "environment": "live"},
    )
    refused(response, address)
    assert resolver.lookups == []  # an address literal is checked as it is
    assert_nothing_stored(hooks)


def test_one_non_public_answer_among_public_ones_is_enough_to_refuse(hooks: Harness) -> None:
    resolving(hooks, {"hooks.example.com": [PUBLIC_V4, "10.0.0.7", PUBLIC_V6]})
    owner, _, project_id = new_project(hooks)
    response = owner.post(
        f"{CONSOLE}/projects/{project_id}/webhooks",
        json={"url": "https://hooks.example.com/in", "environment": "live"},
    )
    assert "10.0.0.7" in refused(response, "mixed")["detail"]
    assert_nothing_stored(hooks)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/in",
        "https://hooks.example.com:8443/in?team=a",
        "https://v6.example.com/in",
        f"https://{PUBLIC_V4}/in",
        f"https://[{PUBLIC_V6}]/in",
        "https://[2002:5db8:d70e::1]/in",  # 6to4 of a public address
    ],
)
def test_live_endpoint_on_a_public_host_is_accepted(hooks: Harness, url: str) -> None:
    resolving(hooks, {"hooks.example.com": [PUBLIC_V4], "v6.example.com": [PUBLIC_V6, PUBLIC_V4]})
    owner, _, project_id = new_project(hooks)
    made = owner.ok(
        "POST", f"{CONSOLE}/projects/{project_id}/webhooks", 201, json={"url": url, "environment": "live"}
    )
    assert made["url"] == url and made["environment"] == "live" and made["enabled"] is True
    assert made["secret"].startswith("whsec_")
    assert count_rows(hooks, WebhookEndpoint) == 1


@pytest.mark.parametrize(
    "url", ["http://localhost:3000/hooks", "http://127.0.0.1:3000/hooks", "https://localhost/hooks"]
)
def test_test_environment_allows_this_machine_over_http(hooks: Harness, url: str) -> None:
    resolving(hooks, {"localhost": ["127.0.0.1", "::1"]})
    owner, _, project_id = new_project(hooks)
    made = owner.ok(
        "POST", f"{CONSOLE}/projects/{project_id}/webhooks", 201, json={"url": url, "environment": "test"}
    )
    assert made["url"] == url and made["environment"] == "test"


@pytest.mark.parametrize(
    ("url", "answers"),
    [
        ("http://example.com/hooks", {"example.com": [PUBLIC_V4]}),
        ("http://10.0.0.1/hooks", {}),
        ("http://localhost:3000/hooks", {"localhost": ["10.0.0.1"]}),  # a hosts file pointing away
        ("https://internal.example.com/hooks", {"internal.example.com": ["192.168.0.10"]}),
    ],
)
def test_test_environment_refuses_http_elsewhere_and_non_public_hosts(
    hooks: Harness, url: str, answers: dict[str, list[str]]
) -> None:
    resolving(hooks, answers)
    owner, _, project_id = new_project(hooks)
    response = owner.post(
        f"{CONSOLE}/projects/{project_id}/webhooks", json={"url": url, "environment": "test"}
    )
    refused(response, url)
    assert_nothing_stored(hooks)


@contextmanager
def listening() -> Iterator[tuple[socket.socket, int]]:
    """A TCP socket on loopback that never accepts: the kernel queues any connection made to it, so a
    non-blocking accept() afterwards tells whether anyone connected at all."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    try:
        yield listener, listener.getsockname()[1]
    finally:
        listener.close()


def connected(listener: socket.socket) -> bool:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def attempts_of(harness: Harness, endpoint_id: str) -> list[WebhookAttempt]:
    async def work() -> list[WebhookAttempt]:
        async with transaction(harness.runtime.sessionmaker) as db:
            found = await db.scalars(select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id))
            return list(found.all())

    return harness.run(work)


def test_a_host_public_at_creation_and_private_at_delivery_is_not_connected_to(hooks: Harness) -> None:
    """DNS can change after the check (rebinding): the worker checks again before every connection."""
    with listening() as (listener, port):
        resolving(hooks, {"hooks.example.com": [PUBLIC_V4]})
        owner, _, project_id = new_project(hooks)
        endpoint = owner.ok(
            "POST",
            f"{CONSOLE}/projects/{project_id}/webhooks",
            201,
            json={"url": f"https://hooks.example.com:{port}/in", "environment": "live"},
        )
        sent = owner.ok("POST", f"{CONSOLE}/webhooks/{endpoint['id']}/test", 202)
        rebound = Resolver({"hooks.example.com": ["127.0.0.1"]})
        deliver(hooks, resolver=rebound)
        assert not connected(listener), "the worker connected to a host that now resolves to loopback"
    assert rebound.lookups == ["hooks.example.com"]
    [attempt] = attempts_of(hooks, endpoint["id"])
    assert attempt.outcome == "refused_address" and attempt.status_code is None
    assert attempt.error_class == "RefusedAddress"
    message = owner.ok("GET", f"{CONSOLE}/webhooks/{endpoint['id']}/messages/{sent['id']}")
    assert message["status"] == "pending" and message["attempt_count"] == 1  # retried on the schedule
    assert [a["outcome"] for a in message["attempts"]] == ["refused_address"]
    assert "non-public address" in message["attempts"][0]["response_excerpt"]


def test_the_connection_goes_to_the_checked_address_without_a_second_lookup(hooks: Harness) -> None:
    """The resolver sends `localhost` to 127.0.0.2, where the receiver listens; the system's own lookup
    of localhost would give 127.0.0.1 or ::1, where nothing listens on that port. So a delivery that
    arrives came through the checked address, and the resolver was asked exactly once per attempt."""
    with receiver(host="127.0.0.2") as target:
        port = urlsplit(target.url).port
        resolver = resolving(hooks, {"localhost": ["127.0.0.2"]})
        owner, _, project_id = new_project(hooks)
        endpoint = owner.ok(
            "POST",
            f"{CONSOLE}/projects/{project_id}/webhooks",
            201,
            json={"url": f"http://localhost:{port}/hooks", "environment": "test"},
        )
        assert resolver.lookups == ["localhost"]  # the check at creation
        sent = owner.ok("POST", f"{CONSOLE}/webhooks/{endpoint['id']}/test", 202)
        at_delivery = Resolver({"localhost": ["127.0.0.2"]})
        deliver(hooks, resolver=at_delivery)
        [got] = target.received
    assert at_delivery.lookups == ["localhost"]
    assert got.headers["webhook-id"] == sent["id"]
    assert got.headers["host"] == f"localhost:{port}"  # the URL's host, not the address connected to
    [attempt] = attempts_of(hooks, endpoint["id"])
    assert attempt.outcome == "succeeded" and attempt.status_code == 204


# --- quota, event types, changes, deletion ------------------------------------------------------------


def test_endpoint_quota_follows_the_plan(hooks: Harness) -> None:
    owner, _, project_id = new_project(hooks)  # a new org is on the Free plan: 2 endpoints a project
    for n in range(2):
        owner.ok(
            "POST",
            f"{CONSOLE}/projects/{project_id}/webhooks",
            201,
            json={"url": f"http://127.0.0.1:{3000 + n}/hooks", "environment": "test"},
        )
    response = owner.post(
        f"{CONSOLE}/projects/{project_id}/webhooks",
        json={"url": "http://127.0.0.1:3009/hooks", "environment": "test"},
    )
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["type"].endswith("/quota-exceeded") and body["plan"] == "free" and body["limit"] == 2
    assert "Free plan" in body["detail"]
    assert count_rows(hooks, WebhookEndpoint) == 2
    assert [e.action for e in webhook_audit(hooks)] == ["webhook.endpoint_created"] * 2


@pytest.mark.parametrize("event_types", [["user.exploded"], ["user.created", "User.Created"], [""]])
def test_unknown_event_types_are_refused(hooks: Harness, event_types: list[str]) -> None:
    owner, _, project_id = new_project(hooks)
    response = owner.post(
        f"{CONSOLE}/projects/{project_id}/webhooks",
        json={"url": "http://127.0.0.1:3000/hooks", "environment": "test", "event_types": event_types},
    )
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/invalid-request")
    assert "event_types" in response.json()["detail"]
    assert_nothing_stored(hooks)


def test_subscribed_types_are_kept_sorted_and_an_empty_list_means_all(hooks: Harness) -> None:
    owner, _, project_id = new_project(hooks)
    made = owner.ok(
        "POST",
        f"{CONSOLE}/projects/{project_id}/webhooks",
        201,
        json={
            "url": "http://127.0.0.1:3000/hooks",
            "environment": "test",
            "event_types": ["user.deleted", "user.created", "user.created"],
        },
    )
    assert made["event_types"] == ["user.created", "user.deleted"]
    changed = owner.ok("PATCH", f"{CONSOLE}/webhooks/{made['id']}", json={"event_types": []})
    assert changed["event_types"] == []


def test_patch_rechecks_the_url_and_toggles_enabled(hooks: Harness) -> None:
    resolver = resolving(hooks, {"hooks.example.com": [PUBLIC_V4], "evil.example.com": ["10.0.0.1"]})
    owner, _, project_id = new_project(hooks)
    made = owner.ok(
        "POST",
        f"{CONSOLE}/projects/{project_id}/webhooks",
        201,
        json={"url": "https://hooks.example.com/in", "environment": "live"},
    )
    path = f"{CONSOLE}/webhooks/{made['id']}"
    for url in ("https://evil.example.com/in", "http://hooks.example.com/in", "https://hooks.example.com/#x"):
        refused(owner.patch(path, json={"url": url}), url)
    assert resolver.lookups == ["hooks.example.com", "evil.example.com"]
    assert owner.ok("GET", path)["url"] == "https://hooks.example.com/in"  # unchanged
    moved = owner.ok("PATCH", path, json={"url": "https://hooks.example.com/v2", "description": " new  one "})
    assert moved["url"] == "https://hooks.example.com/v2" and moved["description"] == "new one"
    off = owner.ok("PATCH", path, json={"enabled": False})
    assert off["enabled"] is False and off["disabled_reason"] is None
    on = owner.ok("PATCH", path, json={"enabled": True})
    assert on["enabled"] is True
    audited = [(e.action, e.metadata_.get("changed")) for e in webhook_audit(hooks)]
    assert audited == [
        ("webhook.endpoint_created", None),
        ("webhook.endpoint_updated", ["url", "description"]),
        ("webhook.endpoint_updated", ["enabled"]),
        ("webhook.endpoint_updated", ["enabled"]),
    ]
    # A change that changes nothing is no change: no audit event.
    owner.ok("PATCH", path, json={"enabled": True, "url": "https://hooks.example.com/v2"})
    assert len(webhook_audit(hooks)) == 4


def test_re_enabling_clears_what_the_service_recorded_when_it_disabled_the_endpoint(hooks: Harness) -> None:
    with receiver(answers=[410, 204]) as target:
        owner, _, endpoint = project_with_endpoint(hooks, target.url)
        path = f"{CONSOLE}/webhooks/{endpoint['id']}"
        owner.ok("POST", f"{path}/test", 202)
        deliver(hooks)
        gone = owner.ok("GET", path)
        assert gone["enabled"] is False and "410" in gone["disabled_reason"]
        back = owner.ok("PATCH", path, json={"enabled": True})
        assert back["enabled"] is True and back["disabled_reason"] is None and back["failing_since"] is None
        owner.ok("POST", f"{path}/test", 202)
        deliver(hooks)
        assert len(target.received) == 2


def test_delete_removes_the_endpoint_with_its_messages_and_attempts(hooks: Harness) -> None:
    with receiver(answers=[500]) as target:
        owner, _, endpoint = project_with_endpoint(hooks, target.url)
        path = f"{CONSOLE}/webhooks/{endpoint['id']}"
        owner.ok("POST", f"{path}/test", 202)
        deliver(hooks)
    assert count_rows(hooks, WebhookDelivery, endpoint_id=endpoint["id"]) == 1
    assert count_rows(hooks, WebhookAttempt, endpoint_id=endpoint["id"]) == 1
    response = owner.delete(path)
    assert response.status_code == 204 and response.content == b""
    assert count_rows(hooks, WebhookEndpoint) == 0
    assert count_rows(hooks, WebhookDelivery) == 0
    assert count_rows(hooks, WebhookAttempt) == 0
    for method, where in (("GET", path), ("GET", f"{path}/messages"), ("DELETE", path)):
        gone = owner.request(method, where)
        assert gone.status_code == 404 and gone.json()["type"].endswith("/not-found"), where
    assert webhook_audit(hooks)[-1].action == "webhook.endpoint_deleted"


def test_listing_shows_every_endpoint_of_the_project_and_never_a_secret(hooks: Harness) -> None:
    owner, _, project_id = new_project(hooks)
    made = [
        owner.ok(
            "POST",
            f"{CONSOLE}/projects/{project_id}/webhooks",
            201,
            json={"url": "http://127.0.0.1:3000/hooks", "environment": "test", "signing": signing},
        )
        for signing in ("hmac", "ed25519")
    ]
    assert made[0]["secret"].startswith("whsec_") and made[0]["public_key"] is None
    assert made[1]["secret"].startswith("whsk_") and made[1]["public_key"].startswith("whpk_")
    listed = owner.get(f"{CONSOLE}/projects/{project_id}/webhooks")
    assert sorted(e["id"] for e in listed.json()["items"]) == sorted(e["id"] for e in made)
    for endpoint in made:
        one = owner.get(f"{CONSOLE}/webhooks/{endpoint['id']}")
        assert "secret" not in one.json()
        for answer in (listed, one):
            assert endpoint["secret"] not in answer.text
            assert "whsec_" not in answer.text and "whsk_" not in answer.text
    assert owner.ok("GET", f"{CONSOLE}/webhooks/{made[1]['id']}")["public_key"] == made[1]["public_key"]


# --- secrets: shown once, audited ---------------------------------------------------------------------


def audit_items(owner: ConsoleUser, org_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = owner.ok("GET", f"{CONSOLE}/orgs/{org_id}/audit?limit=100")["items"]
    return items


def test_asking_for_the_secret_again_is_refused_and_the_attempt_is_audited(hooks: Harness) -> None:
    owner, org_id, project_id = new_project(hooks)
    made = owner.ok(
        "POST",
        f"{CONSOLE}/projects/{project_id}/webhooks",
        201,
        json={"url": "http://127.0.0.1:3000/hooks", "environment": "test"},
    )
    response = owner.get(f"{CONSOLE}/webhooks/{made['id']}/secret")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith("/secret-shown-once")
    assert made["secret"] not in response.text and "whsec_" not in response.text
    [refusal] = [e for e in audit_items(owner, org_id) if e["action"] == "webhook.secret_reveal_refused"]
    assert refusal["target"] == made["id"] and refusal["project_id"] == project_id
    assert refusal["actor"] == owner.account_id


def test_create_rotate_and_delete_are_audited_without_secret_or_query_string(hooks: Harness) -> None:
    resolving(hooks, {"hooks.example.com": [PUBLIC_V4]})
    owner, org_id, project_id = new_project(hooks)
    url = "https://hooks.example.com/in?token=receiver-token-1234"
    made = owner.post(f"{CONSOLE}/projects/{project_id}/webhooks", json={"url": url, "environment": "live"})
    assert made.status_code == 201
    assert made.headers["cache-control"] == "no-store"  # it carries the secret
    endpoint = made.json()
    assert endpoint["url"] == url  # the member sees what they entered
    rotated = owner.post(f"{CONSOLE}/webhooks/{endpoint['id']}/rotate-secret", json={"overlap_hours": 2})
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    assert rotated.json()["secret"] != endpoint["secret"]
    assert rotated.json()["previous_secret_until"] is not None
    assert owner.delete(f"{CONSOLE}/webhooks/{endpoint['id']}").status_code == 204
    events = [e for e in audit_items(owner, org_id) if e["action"].startswith("webhook.")]
    assert sorted(e["action"] for e in events) == [
        "webhook.endpoint_created",
        "webhook.endpoint_deleted",
        "webhook.secret_rotated",
    ]
    for event in events:
        assert event["target"] == endpoint["id"] and event["actor"] == owner.account_id
        text = repr(event)
        assert "receiver-token-1234" not in text and "?" not in text
        assert endpoint["secret"] not in text and rotated.json()["secret"] not in text
        assert "whsec_" not in text
    created = next(e for e in events if e["action"] == "webhook.endpoint_created")
    assert created["metadata"]["url"] == "https://hooks.example.com/in"
    rotation = next(e for e in events if e["action"] == "webhook.secret_rotated")
    assert rotation["metadata"]["overlap_hours"] == 2


def test_a_refused_connection_falls_back_to_the_next_checked_address(hooks: Harness) -> None:
    """Nothing listens on 127.0.0.3: the worker moves on to the next address the check approved."""
    with receiver(host="127.0.0.2") as target:
        port = urlsplit(target.url).port
        resolving(hooks, {"localhost": ["127.0.0.2"]})
        owner, _, project_id = new_project(hooks)
        endpoint = owner.ok(
            "POST",
            f"{CONSOLE}/projects/{project_id}/webhooks",
            201,
            json={"url": f"http://localhost:{port}/hooks", "environment": "test"},
        )
        sent = owner.ok("POST", f"{CONSOLE}/webhooks/{endpoint['id']}/test", 202)
        deliver(hooks, resolver=Resolver({"localhost": ["127.0.0.3", "127.0.0.2"]}))
        [got] = target.received
    assert got.headers["webhook-id"] == sent["id"]
    [attempt] = attempts_of(hooks, endpoint["id"])
    assert attempt.outcome == "succeeded"
