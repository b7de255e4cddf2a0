"""Console webhook pages: endpoints of a project (the secret shown once, in the create's own answer),
one endpoint's settings, rotation, test events, and its deliveries with attempts, replays, and the
fragment htmx polls while a delivery is pending. The same services as /console/api/…/webhooks."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from silver_auth.webhooks.delivery import DeliveryWorker
from tests.console.support import assert_page
from tests.factories import ConsoleUser, Harness
from tests.webhooks.support import Receiver, deliver, receiver, worker_settings

SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


@pytest.fixture
def hooks(apps: Any, tmp_path: Path, database_url: str) -> Iterator[Harness]:
    """The app without a worker of its own, one attempt per delivery: each test delivers by hand."""
    settings = worker_settings(tmp_path, database_url, SILVER_WEBHOOK_RETRY_SCHEDULE="0")
    with apps.serve(settings) as client:
        yield Harness(client, client.app.state.runtime.settings)


def submit(user: ConsoleUser, path: str, fields: dict[str, Any]) -> httpx.Response:
    """A form post as the page sends it: the CSRF token in the hidden field, no header."""
    return user.request(
        "POST", path, csrf=False, data={"csrf_token": user.csrf_token, **fields}, follow_redirects=False
    )


def follow(user: ConsoleUser, response: httpx.Response) -> httpx.Response:
    """The redirect's target, with the flash cookie the redirect set (the user sends no jar)."""
    assert response.status_code == 303, (response.status_code, response.text[:500])
    cookies = {user.cookie_name: user.cookie, **dict(response.cookies)}
    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return user.get(response.headers["location"], headers={"cookie": cookie})


def sequence(harness: Harness) -> None:
    """What the worker does first: each new event gets its place and its deliveries (nothing sent)."""
    runtime = harness.runtime
    harness.run(DeliveryWorker(runtime.sessionmaker, runtime.sealer, runtime.settings).sequence)


def project_of(harness: Harness) -> tuple[ConsoleUser, str, str]:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    return owner, org_id, harness.project(owner, org_id)["id"]


def create_endpoint(user: ConsoleUser, project_id: str, url: str, **fields: Any) -> tuple[str, str]:
    """Creates an endpoint through the page; answers its id and the secret the answer showed."""
    made = submit(
        user, f"/console/projects/{project_id}/webhooks", {"url": url, "environment": "test", **fields}
    )
    assert_page(made, 201)
    secret = SECRET.search(made.text)
    endpoint = re.search(r"/console/webhooks/(whep_[A-Za-z0-9_-]+)", made.text)
    assert secret and endpoint, made.text
    return endpoint.group(1), secret.group(0)


def verifies(secret: str, target: Receiver) -> bool:
    got = target.received[-1]
    Webhook(secret).verify(got.body, got.headers)  # raises when the signature is not the secret's
    return True


def test_create_shows_the_secret_once_and_it_signs_the_deliveries(hooks: Harness) -> None:
    owner, _, project_id = project_of(hooks)
    listing = owner.get(f"/console/projects/{project_id}/webhooks")
    form = assert_page(listing, 200).forms
    assert any(f["action"] == f"/console/projects/{project_id}/webhooks" for f in form)
    assert "No endpoints yet" in listing.text
    with receiver() as target:
        made = submit(
            owner,
            f"/console/projects/{project_id}/webhooks",
            {"url": target.url, "environment": "test", "event_types": ["webhook.test", "user.created"]},
        )
        assert_page(made, 201)
        assert "will not be shown again" in made.text and 'data-copy="webhook-secret"' in made.text
        found = SECRET.search(made.text)
        endpoint = re.search(r"/console/webhooks/(whep_[A-Za-z0-9_-]+)", made.text)
        assert found and endpoint
        secret, endpoint_id = found.group(0), endpoint.group(1)
        sent = follow(owner, submit(owner, f"/console/webhooks/{endpoint_id}/test", {}))
        assert "Sent a webhook.test event; it appears below within seconds." in sent.text
        deliver(hooks)
        assert verifies(secret, target)
    # Never again: not on the list, the endpoint, its message, nor the API's answers.
    message_id = re.search(
        r"/messages/(msg_[A-Za-z0-9_-]+)", owner.get(f"/console/webhooks/{endpoint_id}").text
    )
    assert message_id
    later = [
        owner.get(f"/console/projects/{project_id}/webhooks"),
        owner.get(f"/console/webhooks/{endpoint_id}"),
        owner.get(f"/console/webhooks/{endpoint_id}", headers={"hx-request": "true"}),
        owner.get(f"/console/webhooks/{endpoint_id}/messages/{message_id.group(1)}"),
        owner.get(f"/console/api/webhooks/{endpoint_id}"),
    ]
    for response in later:
        assert response.status_code == 200
        assert secret not in response.text and "whsec_" not in response.text
    listed = owner.get(f"/console/projects/{project_id}/webhooks").text
    assert target.url in listed and "webhook.test, user.created" not in listed  # stored sorted
    assert "user.created, webhook.test" in listed and "delivered" in listed


def test_a_test_event_becomes_a_message_with_its_attempt(hooks: Harness) -> None:
    owner, _, project_id = project_of(hooks)
    with receiver([204]) as target:
        endpoint_id, _ = create_endpoint(owner, project_id, target.url)
        path = f"/console/webhooks/{endpoint_id}"
        empty = assert_page(owner.get(path), 200)
        assert "Nothing was sent to this endpoint yet" in owner.get(path).text
        assert any(f["action"] == f"{path}/test" for f in empty.forms)
        sent = submit(owner, f"{path}/test", {})
        awaiting = sent.headers["location"]
        assert awaiting.startswith(f"{path}?awaiting=msg_")
        before = follow(owner, sent).text
        assert "Sent a webhook.test event; it appears below within seconds." in before
        # Not in order yet (no delivery row): the list already keeps asking for itself.
        assert "Nothing was sent" in before and 'hx-trigger="every 2s"' in before
        sequence(hooks)
        pending = owner.get(awaiting).text
        assert "webhook.test" in pending and "sending" in pending and 'hx-trigger="every 2s"' in pending
        assert f'href="{awaiting}">Refresh</a>' in pending  # the page works without the polling too
        deliver(hooks)
        assert len(target.received) == 1
    shown = owner.get(path).text
    assert "delivered" in shown and "HTTP 204" in shown and "hx-trigger" not in shown
    message_id = target.received[0].headers["webhook-id"]
    assert message_id in shown
    detail = owner.get(f"{path}/messages/{message_id}")
    assert_page(detail, 200)
    assert "a test event from SEQN Auth" in detail.text and "HTTP 204" in detail.text


def test_the_deliveries_fragment_polls_while_pending_then_stops(hooks: Harness) -> None:
    owner, _, project_id = project_of(hooks)
    with receiver() as target:
        endpoint_id, _ = create_endpoint(owner, project_id, target.url)
        path = f"/console/webhooks/{endpoint_id}"
        follow(owner, submit(owner, f"{path}/test", {}))
        sequence(hooks)
        fragment = owner.get(path, headers={"hx-request": "true"})
        assert fragment.status_code == 200 and fragment.headers["cache-control"] == "no-store"
        assert fragment.text.lstrip().startswith('<div id="deliveries"'), fragment.text[:200]
        assert "<html" not in fragment.text and "<h1>" not in fragment.text
        assert f'hx-get="{path}"' in fragment.text and 'hx-trigger="every 2s"' in fragment.text
        deliver(hooks)
    done = owner.get(path, headers={"hx-request": "true"}).text
    assert "delivered" in done and "hx-trigger" not in done and "hx-get" not in done
    boosted = owner.get(path, headers={"hx-request": "true", "hx-boosted": "true"}).text
    assert "<html" in boosted  # a boosted navigation wants the whole page


def test_a_failed_message_is_replayed_from_the_page(hooks: Harness) -> None:
    owner, _, project_id = project_of(hooks)
    with receiver([500]) as target:
        endpoint_id, _ = create_endpoint(owner, project_id, target.url)
        path = f"/console/webhooks/{endpoint_id}"
        follow(owner, submit(owner, f"{path}/test", {}))
        deliver(hooks)
        failed = owner.get(path)
        assert "failed" in failed.text and "HTTP 500" in failed.text
        message_id = target.received[0].headers["webhook-id"]
        replay = f"{path}/messages/{message_id}/replay"
        assert any(f["action"] == replay for f in assert_page(failed, 200).forms)
        filtered = owner.get(f"{path}?status=succeeded").text
        assert "No delivery matches this filter." in filtered
        target.answers = [204]
        again = follow(owner, submit(owner, replay, {}))
        assert f"Sending {message_id} again" in again.text
        deliver(hooks)
        assert [r.headers["webhook-id"] for r in target.received] == [message_id, message_id]
    shown = owner.get(path).text
    assert "delivered" in shown and "HTTP 500" in shown and "HTTP 204" in shown  # both attempts listed


def test_every_failed_message_of_a_time_is_replayed_at_once(hooks: Harness) -> None:
    owner, _, project_id = project_of(hooks)
    with receiver([500]) as target:
        endpoint_id, _ = create_endpoint(owner, project_id, target.url)
        path = f"/console/webhooks/{endpoint_id}"
        for _ in range(2):
            submit(owner, f"{path}/test", {})
        deliver(hooks)
        failed = assert_page(owner.get(path), 200)
        assert any(f["action"] == f"{path}/replay" for f in failed.forms)
        refused = submit(owner, f"{path}/replay", {"since_hours": "9999"})
        assert_page(refused, 422)
        target.answers = [204]
        again = follow(owner, submit(owner, f"{path}/replay", {"since_hours": "24"}))
        assert "Sending 2 failed messages again" in again.text
        deliver(hooks)
        assert len(target.received) == 4
    shown = owner.get(path).text
    assert shown.count("delivery-delivered") == 2 and f"{path}/replay" not in shown
    none = follow(owner, submit(owner, f"{path}/replay", {"since_hours": "1"}))
    assert "No failed message in that time" in none.text


def test_settings_change_and_a_refused_url_shows_the_reason(hooks: Harness) -> None:
    owner, _, project_id = project_of(hooks)
    endpoint_id, _ = create_endpoint(owner, project_id, "http://127.0.0.1:9/hooks")
    path = f"/console/webhooks/{endpoint_id}"
    saved = submit(
        owner,
        path,
        {"url": "http://localhost:9/other", "event_types": ["user.deleted"], "description": "CRM"},
    )
    assert "Saved the endpoint" in follow(owner, saved).text
    stored = owner.ok("GET", f"/console/api/webhooks/{endpoint_id}")
    assert stored["url"] == "http://localhost:9/other"
    assert stored["event_types"] == ["user.deleted"] and stored["enabled"] is False  # box unchecked
    disabled = follow(owner, submit(owner, f"{path}/test", {}))
    assert "this endpoint is disabled" in disabled.text and "hx-trigger" not in disabled.text
    refused = submit(owner, path, {"url": "http://example.com/hooks", "enabled": "on"})
    assert_page(refused, 422)
    assert "http only on localhost" in refused.text
    assert owner.ok("GET", f"/console/api/webhooks/{endpoint_id}")["enabled"] is False  # nothing written
    bad_create = submit(
        owner, f"/console/projects/{project_id}/webhooks", {"url": "ftp://x", "environment": "test"}
    )
    assert_page(bad_create, 422)
    assert 'value="ftp://x"' in bad_create.text  # the form again, with what was typed


def test_rotation_shows_the_new_secret_once_and_delete_removes_the_endpoint(hooks: Harness) -> None:
    owner, _, project_id = project_of(hooks)
    endpoint_id, first = create_endpoint(owner, project_id, "http://127.0.0.1:9/hooks")
    path = f"/console/webhooks/{endpoint_id}"
    rotated = submit(owner, f"{path}/rotate-secret", {"overlap_hours": "1"})
    assert_page(rotated, 200)
    found = SECRET.search(rotated.text)
    assert found and found.group(0) != first and first not in rotated.text
    assert "will not be shown again" in rotated.text and "old secret too" in rotated.text
    shown = owner.get(path).text
    assert found.group(0) not in shown and "whsec_" not in shown and "previous secret also signs" in shown
    refused = submit(owner, f"{path}/rotate-secret", {"overlap_hours": "500"})
    assert_page(refused, 422)
    assert "overlap_hours" in refused.text and "whsec_" not in refused.text
    gone = submit(owner, f"{path}/delete", {})
    assert gone.headers["location"] == f"/console/projects/{project_id}/webhooks"
    assert "Deleted the endpoint" in follow(owner, gone).text
    assert_page(owner.get(path), 404)


def test_a_viewer_sees_the_endpoints_without_the_controls_and_is_refused_them(hooks: Harness) -> None:
    owner, org_id, project_id = project_of(hooks)
    endpoint_id, _ = create_endpoint(owner, project_id, "http://127.0.0.1:9/hooks")
    viewer = hooks.member(owner, org_id, "viewer")
    listing = viewer.get(f"/console/projects/{project_id}/webhooks")
    assert {f["action"] for f in assert_page(listing, 200).forms} == {"/console/sign-out"}
    assert "http://127.0.0.1:9/hooks" in listing.text
    endpoint_page = viewer.get(f"/console/webhooks/{endpoint_id}")
    actions = {f["action"] for f in assert_page(endpoint_page, 200).forms}
    assert actions == {"/console/sign-out", f"/console/webhooks/{endpoint_id}"}  # sign-out and the GET filter
    assert "Send test event" not in endpoint_page.text and "Rotate" not in endpoint_page.text
    for action in ("test", "rotate-secret", "delete"):
        refused = submit(viewer, f"/console/webhooks/{endpoint_id}/{action}", {})
        assert_page(refused, 403)
    assert owner.ok("GET", f"/console/api/webhooks/{endpoint_id}/messages")["items"] == []
    developer = hooks.member(owner, org_id, "developer")
    made, _ = create_endpoint(developer, project_id, "http://127.0.0.1:9/dev")
    assert "Send test event" in developer.get(f"/console/webhooks/{made}").text
    outsider = hooks.user()
    assert_page(outsider.get(f"/console/webhooks/{endpoint_id}"), 404)
    assert_page(owner.get(f"/console/webhooks/{endpoint_id}/messages/msg_unknown"), 404)
    assert_page(owner.get(f"/console/webhooks/{endpoint_id}?status=lost"), 422)
