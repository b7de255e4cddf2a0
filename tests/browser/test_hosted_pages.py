"""An end-user on the hosted pages in a real browser: sign up, arrive at the customer app with a code
that exchanges, turn on two-step verification with a TOTP code, sign in again with password and code;
every page passes axe-core, keeps its strict CSP with no violation, and no secret reaches the browser."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pyotp
from playwright.sync_api import BrowserContext, Page

from tests.browser.hosted_flow import arrived_code, enrol_totp, open_hosted, sign_up
from tests.browser.support import (
    CustomerApp,
    Recorder,
    artifacts_folder,
    assert_accessible,
    axe_violations,
    save_artifacts,
)
from tests.endusers.support import (
    END_USER_PASSWORD,
    REDIRECT,
    customer_project,
    exchange,
)
from tests.factories import Harness


def test_an_end_user_signs_up_enrols_totp_and_signs_in_with_a_code(
    harness: Harness,
    context: BrowserContext,
    page: Page,
    recorder: Recorder,
    new_context: Callable[[Recorder], BrowserContext],
) -> None:
    project = customer_project(harness)
    app = CustomerApp(REDIRECT)
    app.attach(context)
    sign_up(harness, page, project, app, "browser@example.com")
    secret = enrol_totp(page, project)

    # Another browser (no session cookie): password, then the next TOTP step (the first was used).
    other_recorder = Recorder()
    other = new_context(other_recorder)
    other_app = CustomerApp(REDIRECT)
    other_app.attach(other)
    second = other.new_page()
    verifier = open_hosted(second, project, "sign-in", "st-in")
    assert_accessible(second)
    second.get_by_label("Email").fill("browser@example.com")
    second.get_by_label("Password").fill(END_USER_PASSWORD)
    second.get_by_role("button", name="Sign in").click()
    code_field = second.get_by_label("Code from your authenticator app")
    assert code_field.is_visible()
    assert_accessible(second)
    code_field.fill(pyotp.TOTP(secret).at(time.time() + 30))
    second.get_by_role("button", name="Verify").click()
    second.wait_for_url(REDIRECT + "?*")
    exchanged = exchange(harness, project, arrived_code(other_app, "st-in"), code_verifier=verifier)
    assert exchanged.status_code == 200, exchanged.text

    for seen in (recorder, other_recorder):
        assert seen.csp_violations == [], seen.csp_violations
        assert any("/sign-" in response.url for response in seen.responses)


def test_g18_no_secret_reaches_the_browser(
    harness: Harness, context: BrowserContext, page: Page, recorder: Recorder
) -> None:
    """The project's secret key (planted as a canary) and the service's own secrets appear in no URL,
    header or body the browser received, through sign-up, the account and two-step pages."""
    project = customer_project(harness)
    app = CustomerApp(REDIRECT)
    app.attach(context)
    sign_up(harness, page, project, app, "canary@example.com")
    enrol_totp(page, project)
    page.goto(project.pages("sign-out"))

    # The recorder read the bodies of every page, redirected to or not: the positive controls.
    assert recorder.containing("Create account") and recorder.containing("canary@example.com")
    assert any(
        seen.status == 303 and REDIRECT in seen.headers.get("location", "") for seen in recorder.responses
    )
    settings = harness.settings
    canaries = {
        "the project's secret key": project.secret,
        "SESSION_SECRET": settings.session_secret.get_secret_value(),
        "SILVER_KEY_PEPPER": settings.key_pepper.get_secret_value(),
    }
    for name, canary in canaries.items():
        assert recorder.containing(canary) == [], name
    assert recorder.csp_violations == [], recorder.csp_violations


def test_the_csp_listener_reports_a_violation(
    context: BrowserContext, page: Page, recorder: Recorder
) -> None:
    """The recorder would see a CSP violation: a page of the service (here,
    the 404 page, which carries the same policy) has an inline style blocked and reported."""
    page.goto("/p/no-such-project/test/nope")
    page.evaluate(
        "() => { const s = document.createElement('style'); s.textContent = 'p{}'; document.head.append(s); }"
    )
    page.wait_for_function("() => true")
    assert recorder.csp_violations, recorder.console


def test_assert_accessible_fails_on_a_serious_violation(page: Page) -> None:
    """The check can fail: an image without alternative text is a critical axe-core violation."""
    page.set_content('<!doctype html><html lang="en"><title>t</title><main><img src="x.png"></main></html>')
    ids = {violation["id"] for violation in axe_violations(page)}
    assert "image-alt" in ids
    try:
        assert_accessible(page)
    except AssertionError as failure:
        assert "critical: image-alt" in str(failure)
    else:
        raise AssertionError("assert_accessible passed a page with an unlabelled image")


def test_a_failing_test_would_leave_a_screenshot_and_the_html(
    context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    page.set_content('<!doctype html><html lang="en"><title>t</title><main><h1>Saved</h1></main></html>')
    folder = save_artifacts(context, tmp_path / "artifacts")
    assert (folder / "page-0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<h1>Saved</h1>" in (folder / "page-0.html").read_text()
    assert artifacts_folder("test_x[a b]").name == "test_x_a_b_"
