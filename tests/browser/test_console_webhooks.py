"""A developer adds a webhook endpoint in the console pointing at a receiver on this machine, sends it
a test event, and watches the delivery arrive: at the receiver, signed with the secret the console
showed once, and on the page, which updates itself (htmx) without a reload."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Frame, Page
from standardwebhooks.webhooks import Webhook

from tests.browser.console_flow import sign_in
from tests.browser.steps_webhooks import (
    add_webhook_endpoint,
    open_endpoint,
    send_test_event,
    wait_for_delivery,
)
from tests.browser.support import Recorder, assert_accessible
from tests.factories import Harness

HELD_SECONDS = 10
"""How long the receiver holds its answer at most: under the worker's attempt deadline (15 s)."""


@pytest.fixture
def service_env() -> dict[str, str]:
    # The service delivers by itself, as on the embedded default; test endpoints may be on loopback.
    return {"SILVER_WEBHOOK_WORKER": "in-process"}


class HeldReceiver:
    """A receiver on a loopback port that records each POST and answers 204 once `release` is set, so
    the test sees the delivery pending on the page before it completes."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.arrived.set()
                receiver.release.wait(HELD_SECONDS)
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


@pytest.fixture
def held_receiver() -> Iterator[HeldReceiver]:
    receiver = HeldReceiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.release.set()
    receiver.server.shutdown()
    receiver.server.server_close()


def test_a_test_event_reaches_the_receiver_and_shows_delivered_without_a_reload(
    harness: Harness, page: Page, recorder: Recorder, held_receiver: HeldReceiver
) -> None:
    owner = harness.user()
    org_id = harness.org(owner, "Hooks Inc")["id"]
    project_id = harness.project(owner, org_id, "Storefront")["id"]
    sign_in(page, owner.email)

    secret = add_webhook_endpoint(page, project_id, held_receiver.url)
    open_endpoint(page)
    send_test_event(page)
    assert held_receiver.arrived.wait(HELD_SECONDS), "the worker sent nothing"
    # Sent but not answered yet: the page shows it on its way, and keeps asking for the table.
    deliveries = page.locator("#deliveries")
    assert deliveries.get_attribute("hx-trigger") == "every 2s"
    assert page.get_by_role("link", name="Refresh").is_visible()  # the way without JavaScript
    assert_accessible(page)

    navigations: list[str] = []

    def navigated(frame: Frame) -> None:
        if frame == page.main_frame:
            navigations.append(frame.url)

    page.on("framenavigated", navigated)
    held_receiver.release.set()
    wait_for_delivery(page)
    assert navigations == [], "the page was reloaded"
    assert page.locator("#deliveries").get_attribute("hx-trigger") is None  # polling stopped
    assert "HTTP 204" in page.locator("#deliveries").inner_text()
    assert_accessible(page)

    headers, body = held_receiver.received[0]
    assert len(held_receiver.received) == 1
    Webhook(secret).verify(body, headers)  # Standard Webhooks: HMAC-SHA256 of id.timestamp.body
    assert headers["webhook-id"] in page.locator("#deliveries").inner_text()
    # Shown once: only the create's own answer carried the secret.
    carrying = recorder.containing(secret)
    assert len(carrying) == 1 and carrying[0].endswith(f"/console/projects/{project_id}/webhooks"), carrying
    assert recorder.csp_violations == []
