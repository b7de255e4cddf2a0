"""An end-user changes their own password on the hosted account page: the current password first
(throttled and audited), the end-user password policy, the other sessions signed out and this one
kept; every refusal says what to do, the success says what happened."""

from __future__ import annotations

from silver_auth.app import create_app
from tests.dbstate import snapshot
from tests.endusers.support import (
    END_USER_PASSWORD,
    REDIRECT,
    Browser,
    CustomerProject,
    customer_project,
    sign_up,
)
from tests.factories import Harness

NEW_PASSWORD = "a brand new passphrase for me"


def _signed_in_elsewhere(harness: Harness, project: CustomerProject, email: str) -> Browser:
    other = Browser(harness)
    other.get(project.pages("sign-in"), redirect_url=REDIRECT, state="s")
    response = other.submit(project.pages("sign-in"), {"email": email, "password": END_USER_PASSWORD})
    assert response.status_code == 303, response.text
    return other


def _change(browser: Browser, project: CustomerProject, current: str, new: str) -> str:
    page = browser.get(project.pages("account/password/"))
    assert page.status_code == 200, page.text
    response = browser.submit(
        project.pages("account/password/"), {"current_password": current, "new_password": new}
    )
    return f"{response.status_code} {response.text}"


def test_change_password_signs_out_the_other_sessions_and_keeps_this_one(harness: Harness) -> None:
    project = customer_project(harness)
    browser, _code = sign_up(harness, project, "pw@example.com")
    other = _signed_in_elsewhere(harness, project, "pw@example.com")

    changed = _change(browser, project, END_USER_PASSWORD, NEW_PASSWORD)
    assert changed.startswith("200 "), changed
    assert "Your password is changed: use the new one next time you sign in." in changed
    assert "1 other session was signed out; this one stays signed in." in changed

    assert browser.get(project.pages("account/password/")).status_code == 200  # still signed in here
    assert "You are signed in as" not in other.get(project.pages("sign-in")).text  # signed out there
    events = " ".join(snapshot(harness)["audit_events"])
    assert "end_user.password_changed" in events

    old = Browser(harness)
    old.get(project.pages("sign-in"))
    refused = old.submit(project.pages("sign-in"), {"email": "pw@example.com", "password": END_USER_PASSWORD})
    assert refused.status_code == 401
    fresh = Browser(harness)
    fresh.get(project.pages("sign-in"))
    accepted = fresh.submit(project.pages("sign-in"), {"email": "pw@example.com", "password": NEW_PASSWORD})
    assert accepted.status_code == 200 and "You are signed in as pw@example.com" in accepted.text
    assert f'href="{project.pages("account/password/")}">Change your password</a>' in accepted.text


def test_no_other_session_says_so(harness: Harness) -> None:
    project = customer_project(harness)
    browser, _code = sign_up(harness, project, "alone@example.com")
    changed = _change(browser, project, END_USER_PASSWORD, NEW_PASSWORD)
    assert "No other device was signed in; this one stays signed in." in changed


def test_refusals_say_what_to_do_and_change_nothing(harness: Harness) -> None:
    project = customer_project(harness)
    browser, _code = sign_up(harness, project, "refused@example.com")
    other = _signed_in_elsewhere(harness, project, "refused@example.com")

    wrong = _change(browser, project, "not my password at all", NEW_PASSWORD)
    assert wrong.startswith("401 ") and "the current password is not correct" in wrong
    short = _change(browser, project, END_USER_PASSWORD, "short")
    assert short.startswith("422 ")
    assert "the new password is refused: passwords need at least 12 characters; choose another" in short
    common = _change(browser, project, END_USER_PASSWORD, "zaq1xsw2cde3")
    assert common.startswith("422 ") and "one of the most common passwords" in common
    same = _change(browser, project, END_USER_PASSWORD, END_USER_PASSWORD)
    assert same.startswith("422 ") and "the same as the current one; choose a different one" in same

    assert "You are signed in as" in other.get(project.pages("sign-in")).text  # nobody was signed out
    events = " ".join(snapshot(harness)["audit_events"])
    assert "end_user.reauth_failed" in events and "end_user.password_changed" not in events


def test_wrong_current_passwords_are_throttled(harness: Harness) -> None:
    project = customer_project(harness)
    browser, _code = sign_up(harness, project, "guess@example.com")
    statuses = [int(_change(browser, project, f"wrong guess {n}", NEW_PASSWORD)[:3]) for n in range(6)]
    assert statuses == [401] * 5 + [429]
    blocked = _change(browser, project, END_USER_PASSWORD, NEW_PASSWORD)
    assert blocked.startswith("429 ") and "You can try again in" in blocked


def test_signed_out_and_forged_posts_are_refused(harness: Harness) -> None:
    project = customer_project(harness)
    stranger = Browser(harness)
    page = stranger.get(project.pages("account/password/"))
    assert page.status_code == 401
    assert "Sign in first to change your password, then come back to this page." in page.text
    assert f'href="{project.pages("sign-in")}"' in page.text

    browser, _code = sign_up(harness, project, "forged@example.com")
    browser.get(project.pages("account/password/"))
    forged = browser.submit(
        project.pages("account/password/"),
        {"current_password": END_USER_PASSWORD, "new_password": NEW_PASSWORD},
        hidden={},
    )
    assert forged.status_code == 403 and "This form has expired" in forged.text


def test_the_form_is_rate_limited_like_the_other_hosted_forms(harness: Harness) -> None:
    app = create_app(harness.settings)
    [handler] = [
        h
        for route in app.routes
        if route.path.startswith("/p/") and route.path.endswith("/account/password")
        for h in getattr(route, "route_handlers", [])
        if "POST" in h.http_methods
    ]
    assert handler.opt["rate_limit"] == "mfa"
