"""The whole console scenario in one browser run on the embedded default, as a new developer lives it:
set up the console, turn on MFA and sign in again with it, create a project and a secret key (seen
once, then only its prefix), brand the hosted pages, try the sign-in as an end-user in a second
context, invite a member who accepts in a third, change their role and watch their controls change,
revoke a session and watch that browser get signed out, add a webhook endpoint and watch a test
delivery arrive, and read the audit log. Every page passes axe-core, no page breaks the CSP, and no
answer after a show-once page carries its secret (the canary).

The run also writes screenshots of the main pages: to SCREENSHOTS_DIR for `make screenshots`, to the
test's temporary folder otherwise (so the run that writes them is itself tested)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page
from standardwebhooks.webhooks import Webhook

from tests.browser.console_flow import flash_text, set_up_first_developer, sign_in
from tests.browser.steps_account import enrol_mfa, revoke_other_sessions
from tests.browser.steps_branding import brand_project, button_colours, rgb
from tests.browser.steps_keys import create_project, create_secret_key
from tests.browser.steps_members import accept_invitation, change_role, invite_member
from tests.browser.steps_try import share_console_session, try_sign_in
from tests.browser.steps_users_audit import open_audit
from tests.browser.steps_webhooks import (
    add_webhook_endpoint,
    open_endpoint,
    send_test_event,
    wait_for_delivery,
)
from tests.browser.support import Recorder, assert_accessible
from tests.endusers.support import END_USER_PASSWORD
from tests.factories import PASSWORD, Harness
from tests.hosted.images import png
from tests.processes import ApiProcess

TARGET = os.environ.get("SCREENSHOTS_DIR")
PNG = b"\x89PNG\r\n\x1a\n"
NEW_PROJECT = "Create project"


@pytest.fixture
def service_env() -> dict[str, str]:
    # As `make run` does: the service delivers its own webhooks.
    return {"SILVER_WEBHOOK_WORKER": "in-process"}


class Receiver:
    """A customer's webhook receiver on a loopback port: records each POST, answers 204."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.arrived.set()
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


def test_the_whole_console_scenario(  # noqa: PLR0917 - pytest passes fixtures by name
    harness: Harness,
    service: ApiProcess,
    context: BrowserContext,
    page: Page,
    recorder: Recorder,
    new_context: Callable[[Recorder], BrowserContext],
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    folder = Path(TARGET) if TARGET else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def shot(on: Page, name: str) -> None:
        path = folder / f"console-{len(written) + 1:02d}-{name}.png"
        on.screenshot(path=path, full_page=True)
        written.append(path)

    page.set_viewport_size({"width": 1100, "height": 800})
    developer = "developer@example.com"

    # The first developer sets up the console and its org; the overview says what to do next.
    org_id = set_up_first_developer(page, developer, "Acme")
    assert page.get_by_text("To do: Create a project").is_visible()
    shot(page, "overview")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page)
    page.emulate_media(color_scheme="light")

    # MFA: enrolled with the QR code's key (the test computes the codes), then a sign-in needs it.
    totp_secret = enrol_mfa(page)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in")
    sign_in(page, developer, totp_secret=totp_secret)

    # A project and its secret key: shown once, then only the prefix.
    project_id = create_project(page, org_id, "Storefront")
    key = create_secret_key(page, project_id)
    assert key.startswith("sk_live_")
    assert "will not be shown again" in page.locator("section.show-once").inner_text()
    shot(page, "keys-show-once")
    page.goto(f"/console/projects/{project_id}/keys")
    listed = page.locator("main").inner_text()
    assert key not in page.content() and key[:12] in listed
    shot(page, "keys")

    # The hosted pages carry the project's brand.
    logo = tmp_path / "logo.png"
    logo.write_bytes(png(96, 48, (200, 40, 90)))
    brand_project(page, project_id, "Storefront", "#b4235a", logo)

    # Try sign-in: an end-user signs up on the hosted page in a second context that holds the
    # developer's console session and an end-user cookie jar of its own; the claims come back verified.
    trying_recorder = Recorder()
    trying = new_context(trying_recorder)
    share_console_session(context, trying, harness.settings.session_cookie_name)
    end_user = trying.new_page()
    end_user.set_viewport_size({"width": 1100, "height": 800})
    end_user.goto(f"/p/{project_id}/test/sign-in")
    background, _ = button_colours(end_user, "Sign in")
    assert background == rgb("#b4235a")
    shot(end_user, "hosted-sign-in-branded")
    claims = try_sign_in(end_user, project_id, "ada@example.com", END_USER_PASSWORD)
    assert claims["aud"] == project_id and claims["env"] == "test" and claims["sub"]
    shot(end_user, "try-sign-in")

    # A member: invited as an admin, accepted in a third context, then made a viewer.
    member_email = "member@example.com"
    link = invite_member(page, org_id, member_email, "admin")
    member_recorder = Recorder()
    member_context = new_context(member_recorder)
    member = member_context.new_page()
    accept_invitation(member, link, member_email, PASSWORD)
    assert member.get_by_role("button", name=NEW_PROJECT).is_visible()
    change_role(page, org_id, member_email, "viewer")
    member.reload()
    assert member.get_by_role("button", name=NEW_PROJECT).count() == 0
    assert member.locator("form[method=post]:not(.sign-out)").count() == 0
    assert_accessible(member)
    csrf_token = member.locator("form.sign-out input[name=csrf_token]").get_attribute("value")
    assert csrf_token
    forced = member.request.post(
        f"/console/orgs/{org_id}/projects",
        form={"csrf_token": csrf_token, "name": "Sneaky"},
        headers={"Origin": service.url},
        max_redirects=0,
    )
    assert forced.status == 403
    member.goto(f"/console/orgs/{org_id}/projects")
    assert "Sneaky" not in member.locator("main").inner_text()

    # The member signs in on a second browser too, then signs out everywhere else from the first:
    # the second browser's next page is the sign-in.
    elsewhere = new_context(member_recorder).new_page()
    sign_in(elsewhere, member_email)
    revoke_other_sessions(member)
    elsewhere.goto(f"/console/orgs/{org_id}")
    elsewhere.wait_for_url("**/console/sign-in")

    # A webhook endpoint at the customer's receiver: the test event arrives signed with the secret
    # shown once, and the deliveries table shows it delivered.
    webhook_secret = add_webhook_endpoint(page, project_id, receiver.url)
    shot(page, "webhook-secret-show-once")
    open_endpoint(page)
    send_test_event(page)
    assert receiver.arrived.wait(15), "the worker sent nothing"
    wait_for_delivery(page)
    shot(page, "webhook-deliveries")
    headers, body = receiver.received[0]
    Webhook(webhook_secret).verify(body, headers)

    # The audit log tells the story.
    rows = open_audit(page, org_id)
    actions = {row["action"] for row in rows}
    assert {"key.created", "project.created", "member.role_changed"} <= actions, actions
    shot(page, "audit-log")
    assert flash_text(page) == ""

    # The canary: each secret was in the one answer that showed it, and nowhere after.
    for secret, shown_on in ((key, f"/console/projects/{project_id}/keys"), (webhook_secret, "/webhooks")):
        carriers = recorder.containing(secret)
        assert len(carriers) == 1 and carriers[0].endswith(shown_on), carriers
        assert trying_recorder.containing(secret) == [] and member_recorder.containing(secret) == []
        assert secret not in service.output()
    assert recorder.csp_violations == []
    assert trying_recorder.csp_violations == [] and member_recorder.csp_violations == []
    assert [path.read_bytes()[:8] for path in written] == [PNG] * len(written)
