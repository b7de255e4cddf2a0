"""Console account pages: profile and password change, TOTP enrolment (a wrong code keeps the secret,
recovery codes shown once), new recovery codes, turning MFA off, and the account's sessions; the same
services as /console/api/me/password, /console/api/mfa… and /console/api/sessions…"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from silver_auth.accounts import sessions
from silver_auth.accounts.models import Account
from silver_auth.db.session import transaction
from silver_auth.settings import Settings
from tests.accounts.support import enable_mfa, next_code
from tests.conftest import AppPool, base_settings
from tests.console.support import Browser, assert_page, parse
from tests.console.test_sign_in import signed_in_browser
from tests.dbstate import snapshot
from tests.factories import PASSWORD, ConsoleUser, Harness

ACCOUNT = "/console/account"
MFA = "/console/account/mfa"
SESSIONS = "/console/account/sessions"
SECRET = re.compile(r'<code id="totp-secret"[^>]*>([A-Z2-7]+)</code>')
RECOVERY_CODE = re.compile(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b")
NEW_PASSWORD = "another perfectly fine passphrase"


def api_session(harness: Harness, email: str, user_agent: str, password: str = PASSWORD) -> ConsoleUser:
    """Another signed-in device of the account, through the JSON API, with its own user agent."""
    harness.client.cookies.clear()
    response = harness.client.post(
        "/console/api/sign-in",
        json={"email": email, "password": password},
        headers={"user-agent": user_agent},
    )
    assert response.status_code == 200, response.text
    harness.client.cookies.clear()
    return ConsoleUser(
        harness.client,
        harness.settings.session_cookie_name,
        response.cookies[harness.settings.session_cookie_name],
        response.json()["csrf_token"],
        response.json()["account"]["id"],
        email,
    )


def shown_secret(response: httpx.Response) -> str:
    match = SECRET.search(response.text)
    assert match, response.text[:2000]
    return match.group(1)


def all_pages(browser: Browser) -> str:
    """Everything the account's signed-in pages show now."""
    return "".join(browser.get(path).text for path in (ACCOUNT, MFA, SESSIONS, "/console/orgs"))


def test_the_profile_names_the_account_and_its_mfa(harness: Harness) -> None:
    user = harness.user()
    browser = signed_in_browser(harness, user.email)
    profile = browser.get(ACCOUNT)
    page = assert_page(profile, 200)
    assert user.email in profile.text and "<time datetime=" in profile.text
    assert "Off" in profile.text and 'href="/console/account/mfa"' in profile.text
    assert any(form["action"] == "/console/account/password" for form in page.forms)
    assert 'href="/console/account" aria-current="page"' in profile.text  # the Account tab is the current one


def test_a_password_change_keeps_this_session_and_ends_the_others(harness: Harness) -> None:
    user = harness.user()  # a second session, through the API
    browser = signed_in_browser(harness, user.email)
    changed = browser.submit(
        ACCOUNT,
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
        action="/console/account/password",
    )
    assert changed.status_code == 303 and changed.headers["location"] == ACCOUNT
    shown = browser.follow(changed)
    assert "Your password is changed. 1 other session signed out; this one stays signed in." in shown.text
    assert user.get("/console/api/me").status_code == 401
    harness.client.cookies.clear()
    old = harness.client.post("/console/api/sign-in", json={"email": user.email, "password": PASSWORD})
    assert old.status_code == 401
    api_session(harness, user.email, "new", password=NEW_PASSWORD)


@pytest.mark.parametrize(
    ("current", "new", "again", "status", "reason"),
    [
        ("not the password", NEW_PASSWORD, NEW_PASSWORD, 403, "the current password is incorrect"),
        (PASSWORD, "short", "short", 422, "passwords need at least 12 characters"),
        (PASSWORD, "123456qwerty", "123456qwerty", 422, "one of the most common passwords"),
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", 422, "its confirmation differ"),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(
    harness: Harness, current: str, new: str, again: str, status: int, reason: str
) -> None:
    user = harness.user()
    browser = signed_in_browser(harness, user.email)
    form = browser.form(ACCOUNT, "/console/account/password")
    refused = browser.post(
        "/console/account/password",
        {**form, "current_password": current, "new_password": new, "confirm_password": again},
    )
    page = assert_page(refused, status)
    assert reason in refused.text
    assert any(form["action"] == "/console/account/password" for form in page.forms)
    assert user.email in refused.text  # the profile is shown again with the reason
    assert current not in refused.text and new not in refused.text
    assert user.get("/console/api/me").status_code == 200  # the other session lives on
    api_session(harness, user.email, "still the old password")


def test_enrolment_retries_keep_the_secret_and_recovery_codes_show_once(harness: Harness) -> None:
    user = harness.user()
    browser = signed_in_browser(harness, user.email)
    refused = browser.submit(MFA, {"password": "not the password"}, action="/console/account/mfa/totp")
    assert_page(refused, 403)
    assert "the password is incorrect" in refused.text and not SECRET.search(refused.text)
    started = browser.submit(MFA, {"password": PASSWORD}, action="/console/account/mfa/totp")
    page = assert_page(started, 200)
    secret = shown_secret(started)
    assert "<svg" in started.text and 'role="img"' in started.text  # the QR code, inline
    confirm = next(form for form in page.forms if form["action"] == "/console/account/mfa/totp/confirm")
    assert set(confirm["fields"]) == {"csrf_token", "code"}  # the secret stays on the server
    assert secret not in all_pages(browser)  # a page load never shows it again
    assert "Finish the setup you started" in browser.get(MFA).text  # only the code is asked for

    wrong = browser.post(
        "/console/account/mfa/totp/confirm", {"csrf_token": confirm["fields"]["csrf_token"], "code": "000000"}
    )
    assert_page(wrong, 403)
    assert "the code was not accepted" in wrong.text
    assert shown_secret(wrong) == secret  # the same key and QR code: nothing to scan again

    done = browser.post(
        "/console/account/mfa/totp/confirm",
        {"csrf_token": confirm["fields"]["csrf_token"], "code": next_code(secret)},
    )
    assert_page(done, 200)
    codes = RECOVERY_CODE.findall(done.text)
    assert len(set(codes)) == 10
    assert "They will not be shown again." in done.text
    assert 'data-copy="recovery-codes"' in done.text and 'data-download="recovery-codes"' in done.text
    later = all_pages(browser)
    assert not any(code in later for code in codes) and secret not in later
    assert "recovery codes left" in browser.get(ACCOUNT).text
    # The codes work: one signs in in place of a TOTP code.
    harness.client.cookies.clear()
    pending = harness.client.post("/console/api/sign-in", json={"email": user.email, "password": PASSWORD})
    name = harness.settings.session_cookie_name
    harness.client.cookies.clear()
    finished = harness.client.post(
        "/console/api/sign-in",
        json={"recovery_code": codes[0]},
        headers={"cookie": f"{name}={pending.cookies[name]}"},
    )
    assert finished.status_code == 200, finished.text


def test_new_recovery_codes_show_once_and_replace_the_old(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    browser = signed_in_browser_with_code(harness, user.email, mfa.secret)
    wrong = browser.submit(MFA, {"code": "000000"}, action="/console/account/mfa/recovery-codes")
    assert_page(wrong, 403)
    made = browser.submit(MFA, {"code": next_code(mfa.secret)}, action="/console/account/mfa/recovery-codes")
    assert_page(made, 200)
    codes = RECOVERY_CODE.findall(made.text)
    assert len(set(codes)) == 10 and not set(codes) & set(mfa.recovery_codes)
    assert "They will not be shown again." in made.text
    later = all_pages(browser)
    assert not any(code in later for code in codes + mfa.recovery_codes)


def signed_in_browser_with_code(harness: Harness, email: str, secret: str) -> Browser:
    browser = Browser(harness)
    browser.submit("/console/sign-in", {"email": email, "password": PASSWORD})
    done = browser.submit("/console/sign-in/code", {"code": next_code(secret)})
    assert done.headers["location"] == "/console/"
    return browser


def test_turning_mfa_off_needs_the_password_and_a_code_and_ends_other_sessions(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    browser = signed_in_browser_with_code(harness, user.email, mfa.secret)
    shown = browser.get(MFA)
    assert "Turn MFA off" in shown.text and "<details" in shown.text  # behind the confirm disclosure
    wrong = browser.submit(
        MFA, {"password": PASSWORD, "code": "000000"}, action="/console/account/mfa/disable"
    )
    assert_page(wrong, 403)
    assert "the code was not accepted" in wrong.text
    off = browser.submit(
        MFA, {"password": PASSWORD, "code": next_code(mfa.secret)}, action="/console/account/mfa/disable"
    )
    assert off.headers["location"] == MFA
    page = browser.follow(off)
    assert "MFA is off and 1 other session signed out." in page.text
    assert any(form["action"] == "/console/account/mfa/totp" for form in parse(page).forms)
    assert user.get("/console/api/me").status_code == 401


def test_sessions_show_the_devices_and_revoke_one_then_the_others(harness: Harness) -> None:
    user = harness.user()
    laptop = api_session(harness, user.email, "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
    phone = api_session(harness, user.email, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604.1")
    browser = signed_in_browser(harness, user.email)
    listed = browser.get(SESSIONS)
    page = assert_page(listed, 200)
    assert "This session" in listed.text and "Firefox on Linux" in listed.text
    assert "Sign out everywhere else" in listed.text
    ids = [form["action"].split("/")[-2] for form in page.forms if form["action"].endswith("/revoke")]
    assert len(ids) == 4  # the harness's own sign-in, the laptop, the phone and this browser
    laptop_id = next(
        session["id"] for session in laptop.ok("GET", "/console/api/sessions")["items"] if session["current"]
    )
    revoked = browser.submit(SESSIONS, {}, action=f"{SESSIONS}/{laptop_id}/revoke")
    assert "that device is signed out" in browser.follow(revoked).text
    assert laptop.get("/console/api/me").status_code == 401
    assert phone.get("/console/api/me").status_code == 200
    gone = browser.post(f"{SESSIONS}/{laptop_id}/revoke", browser.form(SESSIONS, f"{SESSIONS}/revoke-others"))
    assert_page(gone, 404)
    others = browser.submit(SESSIONS, {}, action=f"{SESSIONS}/revoke-others")
    assert "This one stays signed in." in browser.follow(others).text
    assert phone.get("/console/api/me").status_code == 401 and user.get("/console/api/me").status_code == 401
    alone = browser.get(SESSIONS)
    assert "This is your only session." in alone.text


def test_an_unknown_session_is_refused_on_the_page(harness: Harness) -> None:
    user = harness.user()
    browser = signed_in_browser(harness, user.email)
    stranger = harness.user()
    foreign = stranger.ok("GET", "/console/api/sessions")["items"][0]["id"]
    refused = browser.post(f"{SESSIONS}/{foreign}/revoke", browser.form(SESSIONS, "/console/sign-out"))
    assert_page(refused, 404)
    assert "no such active session" in refused.text and "This session" in refused.text
    assert stranger.get("/console/api/me").status_code == 200


def test_revoking_this_session_signs_out_to_the_sign_in(harness: Harness) -> None:
    user = harness.user()
    browser = signed_in_browser(harness, user.email)
    listed = browser.get(SESSIONS).text
    current = re.search(r'action="([^"]+/revoke)">\s*<input[^>]*>\s*<button[^>]*>Revoke and sign out', listed)
    assert current, listed
    out = browser.submit(SESSIONS, {}, action=current.group(1))
    assert out.headers["location"] == "/console/sign-in"
    assert "This session is revoked: sign in again." in browser.follow(out).text
    assert browser.get(ACCOUNT).headers["location"] == "/console/sign-in"
    assert user.get("/console/api/me").status_code == 200  # the other session was not this one


@pytest.mark.parametrize(
    ("action", "values"),
    [
        ("/console/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        ("/console/account/mfa/totp", {"password": PASSWORD}),
        ("/console/account/sessions/revoke-others", {}),
    ],
)
def test_a_wrong_csrf_token_is_refused_and_writes_nothing(
    harness: Harness, action: str, values: dict[str, str]
) -> None:
    user = harness.user()
    browser = signed_in_browser(harness, user.email)
    before = snapshot(harness)
    refused = browser.post(action, {"csrf_token": "forged", **values, "confirm_password": NEW_PASSWORD})
    assert_page(refused, 403)
    assert snapshot(harness) == before
    assert user.get("/console/api/me").status_code == 200


def test_signed_out_visits_go_to_the_sign_in(harness: Harness) -> None:
    browser = Browser(harness)
    for path in (ACCOUNT, MFA, SESSIONS):
        assert browser.get(path).headers["location"] == "/console/sign-in"
    refused = browser.post("/console/account/sessions/revoke-others", {})
    assert_page(refused, 401)


# --- with Authentik as the identity backend ---


@pytest.fixture
def sso_settings(tmp_path: Path, database_url: str) -> Settings:
    # Authentik itself is never called here: the pages only say that it holds passwords and MFA.
    return base_settings(
        tmp_path,
        DATABASE_URL=database_url,
        SILVER_IDENTITY="authentik",
        SILVER_AUTHENTIK_URL="http://127.0.0.1:9",
        SILVER_AUTHENTIK_TOKEN="unused-token",
        SILVER_CONSOLE_OIDC_ISSUER="http://127.0.0.1:9/unused",
        SILVER_CONSOLE_OIDC_CLIENT_ID="silver-console",
        SILVER_CONSOLE_OIDC_CLIENT_SECRET="unused-client-secret",
    )


@pytest.fixture
def sso(apps: AppPool, sso_settings: Settings) -> Iterator[Harness]:
    with apps.serve(sso_settings) as client:
        yield Harness(client, sso_settings)


def sso_browser(harness: Harness) -> Browser:
    """A browser with the session an Authentik sign-in would have left (that flow has its own tests)."""
    account_id = harness.create_account()

    async def work() -> str:
        async with transaction(harness.runtime.sessionmaker) as db:
            account = await db.get(Account, account_id)
            assert account is not None
            issued = await sessions.start_console_session(
                db, harness.runtime.sessions, harness.settings, account, ip=None, user_agent="sso browser"
            )
            return issued.cookie_value

    browser = Browser(harness)
    browser.cookies.set(harness.settings.session_cookie_name, harness.run(work))
    return browser


def test_with_authentik_the_sign_in_page_offers_its_sign_in_alone(sso: Harness) -> None:
    shown = Browser(sso).get("/console/sign-in")
    page = assert_page(shown, 200)
    assert 'href="/console/api/oidc/start">Sign in with Authentik</a>' in shown.text
    assert not any(form["action"] == "/console/sign-in" for form in page.forms)
    assert 'type="password"' not in shown.text and "/console/sign-up" not in shown.text


def test_with_the_builtin_backend_the_sign_in_page_has_no_sso_button(harness: Harness) -> None:
    harness.create_account()  # past the first run's setup
    shown = Browser(harness).get("/console/sign-in")
    assert "/console/api/oidc/start" not in shown.text and 'type="password"' in shown.text


def test_with_authentik_the_account_pages_say_it_manages_passwords_and_mfa(sso: Harness) -> None:
    browser = sso_browser(sso)
    for path in (ACCOUNT, MFA):
        shown = browser.get(path)
        page = assert_page(shown, 200)
        assert "managed by Authentik" in shown.text, path
        assert not any("/password" in f["action"] or "/mfa/" in f["action"] for f in page.forms), path
    assert "sso browser" in browser.get(SESSIONS).text  # sessions are the console's own
    form = browser.form(ACCOUNT, "/console/sign-out")
    before = snapshot(sso)
    refused = browser.post("/console/account/mfa/totp", {**form, "password": "whatever it may be"})
    assert_page(refused, 403)
    assert snapshot(sso) == before
