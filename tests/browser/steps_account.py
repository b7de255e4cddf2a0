"""Steps of a developer on the console's account pages in a browser: turning on MFA with an
authenticator app (pyotp stands in for it), and ending sessions. Each takes a signed-in Page."""

from __future__ import annotations

import time

import pyotp
from playwright.sync_api import Page

from tests.browser.console_flow import flash_text
from tests.browser.support import assert_accessible
from tests.factories import PASSWORD

MFA_PAGE = "/console/account/mfa"
SESSIONS_PAGE = "/console/account/sessions"


def _code_no_app_shows(secret: str) -> str:
    """A 6-digit code none of the accepted time steps has: a typo."""
    totp, now = pyotp.TOTP(secret), time.time()
    valid = {totp.at(now + shift) for shift in (-60, -30, 0, 30, 60)}
    return next(code for code in ("000000", "111111", "222222") if code not in valid)


def enrol_mfa(page: Page, password: str = PASSWORD) -> str:
    """Turns on MFA from the account's MFA page: the password, the QR code's key read off the page
    (as a developer types it into the app), one mistyped code (the same key is shown again), then a
    right one. Checks the recovery codes are shown on that answer alone; answers the TOTP secret."""
    page.goto(MFA_PAGE)
    assert_accessible(page)
    page.get_by_label("Your password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Show the QR code").click()
    assert page.get_by_role("img", name="QR code of your new authenticator secret").is_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    assert_accessible(page)

    page.get_by_label("The 6-digit code the app shows").fill(_code_no_app_shows(secret))
    with page.expect_navigation():
        page.get_by_role("button", name="Turn on MFA").click()
    assert "not accepted" in page.get_by_role("alert").inner_text()
    assert page.locator("#totp-secret").inner_text().strip() == secret, "a retry must keep the secret"

    page.get_by_label("The 6-digit code the app shows").fill(pyotp.TOTP(secret).now())
    with page.expect_navigation():
        page.get_by_role("button", name="Turn on MFA").click()
    codes = page.locator("#recovery-codes").inner_text().split()
    assert len(codes) == 10, codes
    assert page.get_by_text("They will not be shown again.").is_visible()
    assert page.get_by_role("button", name="Copy the codes").is_visible()  # console.js ran
    assert page.get_by_role("button", name="Download the codes").is_visible()
    assert_accessible(page)

    for later in (MFA_PAGE, "/console/account", SESSIONS_PAGE):
        page.goto(later)
        shown = page.content()
        assert not any(code in shown for code in codes) and secret not in shown, later
    page.goto(MFA_PAGE)
    assert page.get_by_text("unused recovery codes").is_visible()
    return secret


def revoke_session(page: Page, user_agent_or_index: str | int) -> None:
    """Revokes one of the account's other sessions from the sessions page: the one whose user agent
    contains the text, or the n-th other session (newest first)."""
    page.goto(SESSIONS_PAGE)
    assert_accessible(page)
    others = page.locator("tbody tr:not(.current)")
    row = (
        others.nth(user_agent_or_index)
        if isinstance(user_agent_or_index, int)
        else others.filter(has_text=user_agent_or_index).first
    )
    with page.expect_navigation():
        row.get_by_role("button", name="Revoke", exact=True).click()
    assert "signed out" in flash_text(page)


def revoke_other_sessions(page: Page) -> None:
    """ "Sign out everywhere else" on the sessions page, through its confirmation."""
    page.goto(SESSIONS_PAGE)
    page.get_by_text("Sign out everywhere else…").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out everywhere else", exact=True).click()
    assert "This one stays signed in." in flash_text(page)
    assert page.get_by_text("This is your only session.").is_visible()
    assert_accessible(page)
