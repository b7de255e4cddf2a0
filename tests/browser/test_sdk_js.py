"""The browser module (sdk/js) in a real browser, on a customer's page of its own origin: the page imports
the module from the service's versioned URL (cross-origin, CORS), signs in through the hosted page,
handles the callback, refreshes the session JWT (once across two tabs), which the backend API verifies,
and signs out through the service's sign-out route, after which the service refuses the session (and
the hosted pages ask for credentials again); then signs out once more by way of the hosted page."""

from __future__ import annotations

import html
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.support import Recorder
from tests.endusers.support import END_USER_PASSWORD, CustomerProject, backend, customer_project
from tests.factories import Harness
from tests.processes import ApiProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
VERSION = json.loads((ROOT / "sdk/js/package.json").read_text())["version"]
EMAIL = "sdk@example.com"
SESSION_KEY = "seqn-auth:{project}:test:session"

# The customer's page: every path answers it (its callback included). The module is imported from the
# auth host, as a page without a bundler would.
APP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Customer app</title></head>
<body><main>
<h1>Customer app</h1>
<p>Status: <output id="status">loading</output></p>
<p>User: <output id="user"></output></p>
<button id="sign-in" type="button">Sign in</button>
<button id="sign-out" type="button">Sign out</button>
<button id="sign-out-hosted" type="button">Sign out on the hosted page</button>
</main>
<script type="module">
import { createSeqnAuth } from "{module_url}";
// Counts the refreshes this tab sends (the module calls the page's fetch).
window.refreshes = 0;
const pageFetch = window.fetch.bind(window);
window.fetch = (url, init) => {
  if (String(url).endsWith("/v1/client/sessions/refresh")) window.refreshes += 1;
  return pageFetch(url, init);
};
const config = JSON.parse(document.getElementById("config").textContent);
const auth = createSeqnAuth(config);
window.seqnAuth = auth;
const status = document.getElementById("status");
const show = (user) => { document.getElementById("user").textContent = user ? user.id : ""; };
auth.onChange(show);
document.getElementById("sign-in").addEventListener("click", () => auth.signIn());
document.getElementById("sign-out").addEventListener("click", () => {
  auth.signOut().then(() => { status.textContent = "signed-out"; }, (error) => {
    status.textContent = `error: ${error.reason || error.message}`;
  });
});
document.getElementById("sign-out-hosted").addEventListener("click", () => auth.signOut({ redirect: true }));
try {
  const result = await auth.handleCallback();
  status.textContent = result ? result.kind : auth.user ? "signed-in" : "signed-out";
} catch (error) {
  status.textContent = `error: ${error.reason || error.message}`;
}
show(auth.user);
</script>
<script type="application/json" id="config">{config}</script>
</body></html>
"""


@dataclass
class AppServer:
    """The customer's app on another loopback port: another origin than the auth host's."""

    origin: str
    page: bytes = b""

    @property
    def callback(self) -> str:
        return f"{self.origin}/callback"


@pytest.fixture
def app_server() -> Iterator[AppServer]:
    port = free_port()
    server_app = AppServer(f"http://127.0.0.1:{port}")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(server_app.page)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test's output stays readable

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server_app
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _project(harness: Harness, app: AppServer) -> CustomerProject:
    project = customer_project(harness, redirect_urls=[app.callback])
    project.owner.ok(
        "PATCH", f"/console/api/projects/{project.project_id}", json={"allowed_origins": [app.origin]}
    )
    user = {"email": EMAIL, "password": END_USER_PASSWORD}
    created = backend(harness, project, "POST", "/users", json=user)
    assert created.status_code == 201, created.text
    return project


def _verify(service: ApiProcess, project: CustomerProject, jwt: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{service.url}/v1/backend/sessions/verify",
        json={"token": jwt},
        headers={"authorization": f"Bearer {project.secret}"},
    )
    assert answer.status_code == 200, answer.text
    verdict: dict[str, Any] = answer.json()
    return verdict


def _refused(service: ApiProcess, project: CustomerProject, session_token: str) -> None:
    refused = httpx.post(
        f"{service.url}/v1/client/sessions/refresh",
        json={"session_token": session_token},
        headers={"x-publishable-key": project.publishable},
    )
    assert refused.status_code == 401, refused.text
    assert refused.json()["reason"] == "revoked"


def _stored(page: Page, project: CustomerProject) -> dict[str, Any]:
    raw = page.evaluate("key => localStorage.getItem(key)", SESSION_KEY.format(project=project.project_id))
    assert raw, "no session in the page's storage"
    stored: dict[str, Any] = json.loads(raw)
    return stored


def _expire(page: Page, project: CustomerProject) -> None:
    """Make the stored JWT look expired to the module (its own clock), as time passing would."""
    page.evaluate(
        """key => {
            const session = JSON.parse(localStorage.getItem(key));
            session.receivedAt = Date.now() - 120000;
            session.expiresAt = Date.now() - 60000;
            localStorage.setItem(key, JSON.stringify(session));
        }""",
        SESSION_KEY.format(project=project.project_id),
    )


def test_a_customer_page_signs_in_refreshes_and_signs_out_with_the_module(
    harness: Harness,
    service: ApiProcess,
    app_server: AppServer,
    context: BrowserContext,
    page: Page,
    recorder: Recorder,
) -> None:
    project = _project(harness, app_server)
    config = {
        "authUrl": service.url,
        "projectId": project.project_id,
        "environment": "test",
        "publishableKey": project.publishable,
        "redirectUrl": app_server.callback,
    }
    module_url = f"{service.url}/sdk/js/seqn-auth@{VERSION}.js"
    app_server.page = (
        APP_PAGE.replace("{module_url}", module_url)
        .replace("{config}", html.escape(json.dumps(config), quote=False))
        .encode()
    )
    status, user = page.locator("#status"), page.locator("#user")

    page.goto(app_server.origin + "/")
    expect(status).to_have_text("signed-out")
    module = next(seen for seen in recorder.responses if seen.url == module_url)
    assert module.headers["access-control-allow-origin"] == "*"

    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{service.url}{project.pages('sign-in')}?*")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(END_USER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(app_server.callback + "*")
    expect(status).to_have_text("signed-in")
    assert page.url == app_server.callback, "code and state left the address bar"
    user_id = user.inner_text()
    assert user_id.startswith("usr_")
    assert page.evaluate("seqnAuth.user.id") == user_id

    first = page.evaluate("seqnAuth.getToken()")
    assert page.evaluate("seqnAuth.getToken()") == first, "a fresh JWT is not refreshed"
    first_token = _stored(page, project)["sessionToken"]
    _expire(page, project)
    second = page.evaluate("seqnAuth.getToken()")
    assert second != first
    assert _stored(page, project)["sessionToken"] != first_token, "the session token rotated"
    verdict = _verify(service, project, second)
    assert verdict["valid"] is True, verdict
    assert verdict["user"]["id"] == user_id

    # A second tab shares the session. Both tabs refresh at once: the test holds the refresh lock until
    # both are waiting on it, then the first refreshes and the second finds the token rotated. Had both
    # presented the one token, the service would have revoked the session as a reused token.
    other = context.new_page()
    try:  # closed in any case: a background tab cannot be screenshot for the artifacts
        other.goto(app_server.origin + "/")
        expect(other.locator("#user")).to_have_text(user_id)
        _expire(page, project)
        lock = f"seqn-auth:{project.project_id}:test:refresh"
        page.evaluate(
            """name => new Promise(held => navigator.locks.request(name, () => {
                held();
                return new Promise(release => { window.releaseLock = release; });
            }))""",
            lock,
        )
        both = "Promise.all([seqnAuth.getToken(), seqnAuth.getToken()])"
        start = f"() => {{ window.refreshes = 0; window.refreshing = {both}; }}"
        page.evaluate(start)
        other.evaluate(start)
        waiting = "async name => (await navigator.locks.query()).pending.filter(l => l.name === name).length"
        for _ in range(400):  # both tabs' refreshes queued behind the test's hold
            if page.evaluate(waiting, lock) == 2:
                break
            page.wait_for_timeout(25)
        else:
            pytest.fail("the two tabs' refreshes never both waited on the lock")
        page.evaluate("window.releaseLock()")
        tokens = {*page.evaluate("window.refreshing"), *other.evaluate("window.refreshing")}
        assert len(tokens) == 1
        assert page.evaluate("window.refreshes") + other.evaluate("window.refreshes") == 1
        third = tokens.pop()
        assert third != second
        assert _verify(service, project, third)["valid"] is True
    finally:
        other.close()

    last_token = _stored(page, project)["sessionToken"]
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(status).to_have_text("signed-out")
    assert page.url == app_server.callback, "no navigation: the route ended the session"
    assert user.inner_text() == ""
    assert page.evaluate("seqnAuth.user") is None
    assert (
        page.evaluate("key => localStorage.getItem(key)", SESSION_KEY.format(project=project.project_id))
        is None
    )

    ended = _verify(service, project, third)
    assert ended["valid"] is False and ended["reason"] == "revoked", ended
    _refused(service, project, last_token)

    # It was the hosted pages' session of this browser too: signing in again asks for credentials.
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{service.url}{project.pages('sign-in')}?*")
    expect(page.get_by_role("button", name=f"Continue as {EMAIL}")).to_have_count(0)
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(END_USER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(app_server.callback + "*")
    expect(status).to_have_text("signed-in")
    again = page.evaluate("seqnAuth.getToken()")
    again_token = _stored(page, project)["sessionToken"]
    assert _verify(service, project, again)["valid"] is True

    # The hosted page too: the route ends the session first, the page then has nothing left to end.
    page.get_by_role("button", name="Sign out on the hosted page").click()
    page.wait_for_url(f"{service.url}{project.pages('sign-out')}?*")
    expect(page.get_by_text("You are not signed in")).to_be_visible()
    page.get_by_role("link", name="Back to the app").click()
    page.wait_for_url(app_server.callback + "*")
    expect(status).to_have_text("signed-out")
    assert page.url == app_server.callback, "the sign-out's state left the address bar"
    assert page.evaluate("seqnAuth.user") is None
    assert _verify(service, project, again)["reason"] == "revoked"
    _refused(service, project, again_token)
    assert recorder.csp_violations == []
