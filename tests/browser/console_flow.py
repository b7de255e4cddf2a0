"""Driving the console in a browser the way a developer does: first-run setup, sign-in (with the TOTP
step when the account has one), and reading what a page shows. Shared by the console's browser tests,
the whole-scenario test and the screenshot run."""

from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import Page

from tests.browser.support import assert_accessible
from tests.factories import PASSWORD

ORG_PAGE = re.compile(r".*/console/orgs/(org_[A-Za-z0-9_-]+|[A-Za-z0-9_-]+)$")


def set_up_first_developer(page: Page, email: str, org_name: str = "Acme", password: str = PASSWORD) -> str:
    """The embedded default's first visit: /console/ leads to the setup form; answers the new org's id."""
    page.goto("/console/")
    page.wait_for_url("**/console/setup")
    assert_accessible(page)
    page.get_by_label("Your email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Org name").fill(org_name)
    page.get_by_role("button", name="Create account and org").click()
    page.wait_for_url(ORG_PAGE)
    return org_id_of(page)


def org_id_of(page: Page) -> str:
    """The org id of the org page the browser is on (its URL's last segment)."""
    match = ORG_PAGE.match(page.url)
    assert match, page.url
    return page.url.rstrip("/").rsplit("/", 1)[1]


def sign_in(page: Page, email: str, password: str = PASSWORD, totp_secret: str | None = None) -> None:
    """The console sign-in form, and its code step when `totp_secret` is given (the code computed
    now, as the developer's authenticator app would)."""
    page.goto("/console/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    if totp_secret is not None:
        page.wait_for_url("**/console/sign-in/code")
        assert_accessible(page)
        # The next step's code: a code is accepted once, and the enrolment may have just used this
        # step's; one step ahead is still inside the drift window the server allows.
        code = pyotp.TOTP(totp_secret).at(time.time() + 30)
        page.get_by_label("Authenticator code").fill(code)
        page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r".*/console/orgs.*"))


def flash_text(page: Page) -> str:
    """The flash message the page shows (empty when none)."""
    flash = page.locator("p.flash")
    return flash.inner_text() if flash.count() else ""
