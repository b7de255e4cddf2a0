"""A platform admin in a real browser: signed in with a TOTP code, opens the admin area from the
header, moves an org to another plan, and the org's owner sees the new plan on the org overview; every
admin page passes axe-core under the strict CSP."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page

from tests.admin.support import plant_totp
from tests.browser.console_flow import flash_text, sign_in
from tests.browser.steps_admin import change_plan, open_admin
from tests.browser.support import Recorder, assert_accessible
from tests.factories import Harness


def test_a_platform_admin_changes_an_orgs_plan(
    harness: Harness,
    page: Page,
    recorder: Recorder,
    new_context: Callable[[Recorder], BrowserContext],
) -> None:
    owner = harness.user("owner@example.com")
    org_id = harness.org(owner, "Browser Org")["id"]
    admin_id = harness.create_account("admin@example.com", platform_admin=True)
    secret, _ = plant_totp(harness, admin_id)  # an authenticator app, enrolled

    sign_in(page, "admin@example.com", totp_secret=secret)
    open_admin(page)
    assert page.get_by_role("link", name="Browser Org").is_visible()
    change_plan(page, org_id, "pro")
    assert "Moved the org to the Pro plan" in flash_text(page)
    assert page.get_by_role("heading", name="Plan: Pro").is_visible()

    for path, heading in (
        ("/console/admin/accounts", "Platform admin: accounts"),
        (f"/console/admin/accounts/{owner.account_id}", "Account owner@example.com"),
        ("/console/admin/directory", "Platform admin: identity directory"),
    ):
        page.goto(path)
        assert page.get_by_role("heading", name=heading).is_visible()
        assert_accessible(page)
    assert recorder.csp_violations == []
    assert recorder.containing(secret) == []

    owner_recorder = Recorder()
    owner_page = new_context(owner_recorder).new_page()
    sign_in(owner_page, "owner@example.com")
    owner_page.goto(f"/console/orgs/{org_id}")
    assert owner_page.get_by_role("heading", name="Plan: Pro").is_visible()
    assert owner_page.get_by_role("link", name="Platform admin").count() == 0
