"""Try sign-in in a browser, the way a developer runs it: from the console's Try page through the
hosted sign-up (as a new end-user) back to the console, which shows the verified claims. Shared by the
console's browser tests and the whole-scenario test."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import BrowserContext, Page

from tests.browser.support import assert_accessible


def share_console_session(signed_in: BrowserContext, other: BrowserContext, cookie_name: str) -> None:
    """Give `other` the console session cookie (`cookie_name`, SESSION_COOKIE_NAME) of `signed_in` and
    nothing else: the same developer, with an end-user cookie jar of its own."""
    other.add_cookies([cookie for cookie in signed_in.cookies() if cookie["name"] == cookie_name])


def try_sign_in(
    page: Page, project_id: str, end_user_email: str, password: str, environment: str = "test"
) -> dict[str, Any]:
    """Start a Try sign-in, sign up `end_user_email` on the hosted page, and answer the claims the
    console shows once the signature verified. `page` must be signed in to the console."""
    page.goto(f"/console/projects/{project_id}/try")
    assert_accessible(page)
    page.get_by_label(environment).check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(rf".*/p/{project_id}/{environment}/sign-in\?.*"))
    assert_accessible(page)
    page.get_by_role("link", name="Create one").click()
    page.wait_for_url(re.compile(rf".*/p/{project_id}/{environment}/sign-up\?.*"))
    assert_accessible(page)
    page.get_by_label("Email").fill(end_user_email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(rf".*/console/projects/{project_id}/try/callback\?.*"))
    assert_accessible(page)
    verified = page.locator("p.flash", has_text="Signature verified with key")
    assert verified.is_visible(), page.content()
    claims: dict[str, Any] = json.loads(page.locator("#jwt-claims").inner_text())
    return claims
