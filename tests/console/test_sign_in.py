"""Console sign-in pages: the password step, the MFA step, sign-out; the same services and session
cookie as /console/api/sign-in."""

from __future__ import annotations

import pyotp

from silver_auth.core import clock
from tests.accounts.support import enable_mfa, next_code
from tests.console.support import Browser, assert_page
from tests.factories import PASSWORD, Harness


def signed_in_browser(harness: Harness, email: str) -> Browser:
    browser = Browser(harness)
    done = browser.submit("/console/sign-in", {"email": email, "password": PASSWORD})
    assert done.headers["location"] == "/console/"
    return browser


def test_sign_in_without_mfa_reaches_the_orgs_and_signs_out(harness: Harness) -> None:
    user = harness.user()
    org_id = harness.org(user, "Acme")["id"]
    browser = signed_in_browser(harness, user.email)
    assert browser.get("/console/").headers["location"] == f"/console/orgs/{org_id}"
    overview = browser.get(f"/console/orgs/{org_id}")
    assert_page(overview, 200)
    assert "You are signed in." in overview.text  # the flash, shown once
    assert "You are signed in." not in browser.get(f"/console/orgs/{org_id}").text
    # The page cookie is a real console session: the JSON API takes it.
    cookie = browser.cookies[harness.settings.session_cookie_name]
    me = harness.client.get(
        "/console/api/me", headers={"cookie": f"{harness.settings.session_cookie_name}={cookie}"}
    )
    assert me.json()["account"]["email"] == user.email
    harness.client.cookies.clear()
    out = browser.submit(f"/console/orgs/{org_id}", {}, action="/console/sign-out")
    assert out.headers["location"] == "/console/sign-in"
    assert browser.get(f"/console/orgs/{org_id}").headers["location"] == "/console/sign-in"


def test_a_wrong_password_answers_the_form_with_the_reason(harness: Harness) -> None:
    user = harness.user()
    browser = Browser(harness)
    refused = browser.submit("/console/sign-in", {"email": user.email, "password": "not the password"})
    page = assert_page(refused, 401)
    assert "email or password is incorrect" in refused.text
    assert PASSWORD not in refused.text and "not the password" not in refused.text
    assert any(form["action"] == "/console/sign-in" for form in page.forms)


def test_sign_in_with_mfa_asks_for_the_code_then_signs_in(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    browser = Browser(harness)
    pending = browser.submit("/console/sign-in", {"email": user.email, "password": PASSWORD})
    assert pending.headers["location"] == "/console/sign-in/code"
    # The pending cookie opens nothing but the code step.
    assert browser.get("/console/orgs").headers["location"] == "/console/sign-in"
    wrong = browser.submit("/console/sign-in/code", {"code": "000000"})
    assert_page(wrong, 401)
    done = browser.submit("/console/sign-in/code", {"code": next_code(mfa.secret)})
    assert done.headers["location"] == "/console/"
    assert_page(browser.get("/console/orgs"), 200)


def test_sign_in_with_mfa_takes_a_recovery_code(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    browser = Browser(harness)
    browser.submit("/console/sign-in", {"email": user.email, "password": PASSWORD})
    done = browser.submit("/console/sign-in/code", {"recovery_code": mfa.recovery_codes[0]})
    assert done.headers["location"] == "/console/"
    assert user.email in browser.get("/console/orgs").text


def test_a_code_without_a_pending_sign_in_is_refused(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    browser = Browser(harness)
    refused = browser.submit("/console/sign-in/code", {"code": pyotp.TOTP(mfa.secret).at(clock.now())})
    assert_page(refused, 401)
    assert "sign in with your password again" in refused.text
