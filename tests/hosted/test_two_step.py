"""End-user TOTP on the hosted pages: enrol with a first code, sign in with password then code,
recovery codes once each, wrong codes refused and throttled (and audited), disabling re-authenticates."""

from __future__ import annotations

import re
import time

import pyotp

from tests.dbstate import row_count, snapshot
from tests.endusers.support import (
    END_USER_PASSWORD,
    REDIRECT,
    Browser,
    CustomerProject,
    code_from,
    customer_project,
    exchange,
    sign_up,
)
from tests.factories import Harness

SECRET = re.compile(r'<p class="secret"><code>([A-Z2-7]+)</code></p>')
CODE = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")


def _enrol(harness: Harness, project: CustomerProject, email: str) -> tuple[str, list[str]]:
    browser, _code = sign_up(harness, project, email)
    page = browser.get(project.pages("account/two-step/"))
    assert page.status_code == 200 and "is <strong>off</strong>" in page.text
    started = browser.submit(project.pages("account/two-step/start"), {})
    assert started.status_code == 200, started.text
    assert "<svg" in started.text
    match = SECRET.search(started.text)
    assert match is not None
    secret = match.group(1)
    wrong = browser.submit(
        project.pages("account/two-step/confirm"), {"code": "000000"}, hidden=browser.hidden()
    )
    assert wrong.status_code == 401 and "the code is not correct" in wrong.text
    browser.get(project.pages("account/two-step/"))
    browser.submit(project.pages("account/two-step/start"), {})
    secret = SECRET.search(browser.last.text).group(1)  # type: ignore[union-attr]
    confirmed = browser.submit(project.pages("account/two-step/confirm"), {"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200, confirmed.text
    codes = CODE.findall(confirmed.text)
    assert len(codes) == 10
    return secret, codes


def _password_step(harness: Harness, project: CustomerProject, email: str) -> Browser:
    browser = Browser(harness)
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT, state="s")
    response = browser.submit(project.pages("sign-in"), {"email": email, "password": END_USER_PASSWORD})
    assert response.status_code == 200, response.text
    assert "Two-step verification" in response.text and 'name="pending"' in response.text
    assert harness.settings.end_user_cookie_name not in browser.cookies
    return browser


def _next_code(secret: str) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30)  # the step after the one used to confirm (no replay)


def test_enrol_then_sign_in_with_password_and_code(harness: Harness) -> None:
    project = customer_project(harness)
    secret, _codes = _enrol(harness, project, "mfa@example.com")
    browser = _password_step(harness, project, "mfa@example.com")

    sessions_before = row_count(harness, "end_user_sessions")
    codes_before = row_count(harness, "end_user_codes")
    wrong = browser.submit(project.pages("sign-in/code"), {"code": "123456"})
    assert wrong.status_code == 401 and "the code is not correct" in wrong.text
    assert "location" not in wrong.headers
    assert row_count(harness, "end_user_sessions") == sessions_before
    assert row_count(harness, "end_user_codes") == codes_before
    assert "end_user.mfa_failed" in " ".join(snapshot(harness)["audit_events"])

    right = browser.submit(project.pages("sign-in/code"), {"code": _next_code(secret)})
    code, query = code_from(right)
    assert query["state"] == ["s"]
    exchanged = exchange(harness, project, code)
    assert exchanged.status_code == 200
    user = harness.client.get(
        f"/v1/backend/users/{exchanged.json()['user_id']}",
        headers={"authorization": f"Bearer {project.secret}"},
    ).json()
    assert user["mfa"] is True
    session = harness.client.get(
        f"/v1/backend/sessions/{exchanged.json()['session_id']}",
        headers={"authorization": f"Bearer {project.secret}"},
    ).json()
    assert session["mfa"] is True


def test_recovery_codes_work_once(harness: Harness) -> None:
    project = customer_project(harness)
    _secret, codes = _enrol(harness, project, "lost-phone@example.com")
    first = _password_step(harness, project, "lost-phone@example.com")
    code_from(first.submit(project.pages("sign-in/code"), {"code": codes[0].upper()}))
    again = _password_step(harness, project, "lost-phone@example.com")
    sessions_before = row_count(harness, "end_user_sessions")
    reused = again.submit(project.pages("sign-in/code"), {"code": codes[0]})
    assert reused.status_code == 401 and "the code is not correct" in reused.text
    assert row_count(harness, "end_user_sessions") == sessions_before


def test_wrong_codes_are_throttled(harness: Harness) -> None:
    project = customer_project(harness)
    secret, _codes = _enrol(harness, project, "guess@example.com")
    browser = _password_step(harness, project, "guess@example.com")
    statuses = [
        browser.submit(project.pages("sign-in/code"), {"code": "000000"}).status_code for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    assert "retry-after" in browser.last.headers  # type: ignore[union-attr]
    assert browser.submit(project.pages("sign-in/code"), {"code": _next_code(secret)}).status_code == 429


def test_a_tampered_pending_token_is_refused(harness: Harness) -> None:
    project = customer_project(harness)
    _enrol(harness, project, "pending@example.com")
    other, _ = sign_up(harness, project, "other@example.com")
    del other
    browser = _password_step(harness, project, "pending@example.com")
    hidden = browser.hidden()
    user_id, _, rest = hidden["pending"].partition(".")
    forged = {**hidden, "pending": "usr_00000000000000000000000000." + rest}
    response = browser.submit(project.pages("sign-in/code"), {"code": "000000"}, hidden=forged)
    assert response.status_code == 400 and "sign in again" in response.text
    # The pending proof is tied to this browser's form cookie.
    stranger = Browser(harness)
    stranger.get(project.pages("sign-in"), redirect_url=REDIRECT)
    stolen = {**stranger.hidden(), "pending": hidden["pending"]}
    assert (
        stranger.submit(project.pages("sign-in/code"), {"code": "000000"}, hidden=stolen).status_code == 400
    )
    assert user_id.startswith("usr_")


def test_disabling_needs_password_and_code(harness: Harness) -> None:
    project = customer_project(harness)
    secret, _codes = _enrol(harness, project, "off@example.com")
    browser = _password_step(harness, project, "off@example.com")
    browser.submit(project.pages("sign-in/code"), {"code": _next_code(secret)})
    page = browser.get(project.pages("account/two-step/"))
    assert "is <strong>on</strong>" in page.text
    wrong = browser.submit(
        project.pages("account/two-step/disable"), {"password": "not my password!", "code": "000000"}
    )
    assert wrong.status_code == 401
    assert row_count(harness, "totp_factors") == 1
    codes = _codes
    off = browser.submit(
        project.pages("account/two-step/disable"), {"password": END_USER_PASSWORD, "code": codes[1]}
    )
    assert off.status_code == 200 and "Two-step verification is off." in off.text
    assert row_count(harness, "totp_factors") == 0
    assert row_count(harness, "recovery_codes") == 0


def test_the_two_step_page_needs_a_session(harness: Harness) -> None:
    project = customer_project(harness)
    response = Browser(harness).get(project.pages("account/two-step/"))
    assert response.status_code == 401 and "Sign in first" in response.text
