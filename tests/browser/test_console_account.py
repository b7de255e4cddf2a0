"""The console's account pages in a real browser: the first developer turns on MFA, signs in again
with a code, and signs out the account's other browsers, one, then everywhere else."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page

from tests.browser.console_flow import flash_text, set_up_first_developer, sign_in
from tests.browser.steps_account import enrol_mfa, revoke_other_sessions, revoke_session
from tests.browser.support import Recorder, assert_accessible

EMAIL = "first@example.com"


def signed_out(page: Page) -> bool:
    """Whether the browser's next navigation lands on the sign-in."""
    page.goto("/console/account")
    return page.url.endswith("/console/sign-in")


def test_mfa_then_sign_in_with_a_code_and_revoking_other_browsers(
    page: Page, recorder: Recorder, new_context: Callable[[Recorder], BrowserContext]
) -> None:
    set_up_first_developer(page, EMAIL)
    page.get_by_role("link", name="Account").click()
    page.wait_for_url("**/console/account")
    assert page.get_by_text(EMAIL).first.is_visible()
    assert_accessible(page)
    # Two more browsers of the same account, signed in before MFA is on.
    laptop, phone = (new_context(Recorder()).new_page() for _ in range(2))
    sign_in(laptop, EMAIL)
    sign_in(phone, EMAIL)

    secret = enrol_mfa(page)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in")
    assert_accessible(page)
    sign_in(page, EMAIL, totp_secret=secret)

    revoke_session(page, 1)  # newest first: the phone, then the laptop
    assert signed_out(laptop)
    assert not signed_out(phone)
    revoke_other_sessions(page)
    assert signed_out(phone)
    assert not signed_out(page)
    assert "Your account" in page.title()
    assert flash_text(page) == ""
    assert recorder.csp_violations == []
