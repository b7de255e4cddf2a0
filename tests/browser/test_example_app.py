"""The example customer app (examples/fastapi-app) in a real browser: an end-user starts on the app,
creates an account on SEQN's hosted page (PKCE and state), comes back to the app's callback, which
exchanges the code with the secret key through the SDK, lands on the protected page showing their
email, gets a refreshed JWT on the next requests (the app refreshes ahead of expiry), and signs out
(the session is revoked, the protected page refuses them), then signs in again on the hosted page."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from seqn_auth import SeqnClient
from tests.endusers.support import END_USER_PASSWORD, CustomerProject, customer_project
from tests.factories import Harness
from tests.processes import STARTUP_SECONDS, ApiProcess, free_port, stop_process

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi-app"


@pytest.fixture
def example_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def project(harness: Harness, example_url: str) -> CustomerProject:
    return customer_project(harness, redirect_urls=[f"{example_url}/callback"])


@pytest.fixture
def example_app(
    service: ApiProcess, project: CustomerProject, example_url: str, tmp_path: Path
) -> Iterator[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "SEQN_AUTH_URL": service.url,
        "SEQN_PROJECT_ID": project.project_id,
        "SEQN_ENVIRONMENT": project.environment,
        "SEQN_SECRET_KEY": project.secret,
        "EXAMPLE_URL": example_url,
        # longer than a JWT lives: every protected request refreshes first, so one reload shows it
        "EXAMPLE_REFRESH_MARGIN": "3600",
    }
    port = example_url.rsplit(":", 1)[1]
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(EXAMPLE), "app:app", "--port", port]
    log = tmp_path / "example.log"
    with log.open("ab") as output:
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the example app did not start:\n{log.read_text(errors='replace')}")
            try:
                if httpx.get(example_url + "/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield example_url
    finally:
        stop_process(process)
    assert project.secret not in log.read_text(errors="replace")


def test_sign_up_on_the_hosted_page_from_the_example_app_and_sign_out(
    page: Page, example_app: str, project: CustomerProject, service: ApiProcess
) -> None:
    email = "ada@example.com"
    page.goto(example_app + "/")
    page.get_by_role("link", name="Create an account").click()
    page.wait_for_url(f"{service.url}/p/{project.project_id}/test/sign-up?*")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(END_USER_PASSWORD)
    page.get_by_role("button", name="Create account").click()

    page.wait_for_url(example_app + "/protected")
    expect(page.locator("#email")).to_have_text(email)
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies(example_app)}
    assert cookies["example_session"]["httpOnly"]
    assert "eyJ" not in cookies["example_session"]["value"]  # an opaque id: the JWT stays server-side

    first_jti = page.locator("#jti").inner_text()
    page.reload()  # the next protected request refreshes the JWT (and rotates the session token)
    expect(page.locator("#email")).to_have_text(email)
    expect(page.locator("#jti")).not_to_have_text(first_jti)
    page.reload()  # the rotated token refreshes again: no replay, the session stays active
    expect(page.locator("#email")).to_have_text(email)

    with SeqnClient(service.url, project.secret) as seqn:
        user = next(seqn.iter_users(email=email))
        [session] = seqn.list_user_sessions(user.id)
        assert session.status == "active"

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(example_app + "/")
        expect(page.get_by_role("link", name="Sign in")).to_be_visible()
        assert seqn.get_session(session.id).status == "revoked"

    refused = page.goto(example_app + "/protected")
    assert refused is not None and refused.status == 401
    expect(page.get_by_role("heading", name="You are not signed in")).to_be_visible()

    # Signing in again: the hosted sign-in form (the revoked session continues nothing), then back.
    page.goto(example_app + "/")
    page.get_by_role("link", name="Sign in").click()
    page.wait_for_url(f"{service.url}/p/{project.project_id}/test/sign-in?*")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(END_USER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(example_app + "/protected")
    expect(page.locator("#email")).to_have_text(email)

    # A callback this browser did not start is refused, whatever its code.
    forged = page.goto(example_app + "/callback?code=stolen&state=guess")
    assert forged is not None and forged.status == 400
