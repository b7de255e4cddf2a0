"""The hosted pages as a newcomer meets them: a mistyped first code keeps the enrolment, a signed-in
browser may continue, the sign-out page says who is signed in, unknown pages are pages, long emails are
bounded, and a 429 says how long to wait."""

from __future__ import annotations

import re

import pyotp

from silver_auth.core.text import MAX_EMAIL
from tests.dbstate import row_count
from tests.endusers.support import (
    END_USER_PASSWORD,
    REDIRECT,
    Browser,
    code_from,
    customer_project,
    exchange,
    sign_up,
)
from tests.factories import Harness

SECRET = re.compile(r'<p class="secret"><code>([A-Z2-7]+)</code></p>')


def test_a_mistyped_first_code_keeps_the_pending_secret(harness: Harness) -> None:
    project = customer_project(harness)
    browser, _code = sign_up(harness, project, "typo@example.com")
    browser.get(project.pages("account/two-step/"))
    started = browser.submit(project.pages("account/two-step/start"), {})
    secret = SECRET.search(started.text).group(1)  # type: ignore[union-attr]
    wrong = browser.submit(project.pages("account/two-step/confirm"), {"code": "000000"})
    assert wrong.status_code == 401 and "the code is not correct" in wrong.text
    assert SECRET.search(wrong.text).group(1) == secret  # type: ignore[union-attr]  # the same key again
    assert "<svg" in wrong.text  # and its QR code
    right = browser.submit(project.pages("account/two-step/confirm"), {"code": pyotp.TOTP(secret).now()})
    assert right.status_code == 200 and "recovery" in right.text.lower(), right.text


def test_confirm_without_a_pending_enrolment_asks_to_start_again(harness: Harness) -> None:
    project = customer_project(harness)
    browser, _code = sign_up(harness, project, "nothing-pending@example.com")
    browser.get(project.pages("account/two-step/"))
    refused = browser.submit(project.pages("account/two-step/confirm"), {"code": "000000"})
    assert refused.status_code == 400 and "Start again" in refused.text


def test_opening_sign_in_while_signed_in_offers_to_continue_with_that_session(harness: Harness) -> None:
    project = customer_project(harness)
    browser, first_code = sign_up(harness, project, "again@example.com")
    exchange(harness, project, first_code)
    page = browser.get(project.pages("sign-in"), redirect_url=REDIRECT, state="s-again")
    assert "You are signed in as <strong>again@example.com</strong>" in page.text
    assert "Continue as again@example.com" in page.text and "/sign-out" in page.text
    sessions = row_count(harness, "end_user_sessions")
    continued = browser.submit(project.pages("sign-in/continue"), {})
    code, query = code_from(continued)
    assert query["state"] == ["s-again"]
    assert row_count(harness, "end_user_sessions") == sessions  # the same session, a new code
    assert exchange(harness, project, code, code_verifier=browser.verifier).status_code == 200


def test_continue_without_a_session_asks_to_sign_in(harness: Harness) -> None:
    project = customer_project(harness)
    browser = Browser(harness)
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT)
    refused = browser.submit(project.pages("sign-in/continue"), {})
    assert refused.status_code == 400 and "sign in again" in refused.text


def test_the_sign_out_page_says_who_is_signed_in(harness: Harness) -> None:
    project = customer_project(harness)
    browser, _code = sign_up(harness, project, "who@example.com")
    page = browser.get(project.pages("sign-out"))
    assert "You are signed in as <strong>who@example.com</strong>" in page.text
    anonymous = Browser(harness).get(project.pages("sign-out"))
    assert "You are not signed in" in anonymous.text and 'action="' not in anonymous.text


def test_an_unknown_hosted_page_is_an_html_404(harness: Harness) -> None:
    project = customer_project(harness)
    for method, page in (("GET", "nope"), ("GET", "sign-in/extra/deep"), ("POST", "account/nope")):
        response = harness.client.request(method, project.pages(page))
        assert response.status_code == 404, (page, response.text)
        assert response.headers["content-type"].startswith("text/html"), page
        assert "There is no such page" in response.text


def test_emails_are_bounded_at_254_characters_in_forms_and_in_the_api(harness: Harness) -> None:
    project = customer_project(harness)
    for page in ("sign-in", "sign-up"):
        assert f'maxlength="{MAX_EMAIL}"' in harness.client.get(project.pages(page)).text
    too_long = "a" * (MAX_EMAIL - len("@example.com") + 1) + "@example.com"
    answer = harness.client.post("/console/api/sign-in", json={"email": too_long, "password": "x" * 12})
    assert 400 <= answer.status_code < 500 and answer.status_code != 401, answer.text
    browser = Browser(harness)
    browser.get(project.pages("sign-up"), redirect_url=REDIRECT)
    refused = browser.submit(project.pages("sign-up"), {"email": too_long, "password": END_USER_PASSWORD})
    assert refused.status_code == 400
    assert "overflow-wrap: anywhere" in harness.client.get("/p/assets/hosted.css").text  # never widens


def test_a_429_page_says_how_long_to_wait(harness: Harness) -> None:
    project = customer_project(harness)
    sign_up(harness, project, "wait@example.com")
    browser = Browser(harness)
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT)
    for _ in range(11):
        browser.submit(
            project.pages("sign-in"),
            {"email": "wait@example.com", "password": "not the password!"},
            hidden=None,
        )
    assert browser.last is not None and browser.last.status_code == 429
    assert re.search(r"You can try again in \d+ (seconds|minutes)\.", browser.last.text), browser.last.text
