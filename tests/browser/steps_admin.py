"""Browser steps of the console's platform-admin area, for a platform admin already signed in with
MFA (`console_flow.sign_in` with `totp_secret`); each page is checked with axe-core as it opens."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.support import assert_accessible


def open_admin(page: Page) -> None:
    """The header's "Platform admin" link (shown to SEQN-A members only), to the orgs list."""
    page.get_by_role("link", name="Platform admin").click()
    page.wait_for_url("**/console/admin")
    assert_accessible(page)


def open_admin_org(page: Page, org_id: str) -> None:
    """An org's support page, from the admin orgs list searched by its id."""
    page.goto("/console/admin")
    page.get_by_label("Org name or id").fill(org_id)
    page.get_by_role("button", name="Search orgs").click()
    page.wait_for_url("**/console/admin?q=*")
    page.locator(f'a[href="/console/admin/orgs/{org_id}"]').click()
    page.wait_for_url(f"**/console/admin/orgs/{org_id}")
    assert_accessible(page)


def change_plan(page: Page, org_id: str, plan: str) -> None:
    """Move the org to `plan` (an id: free, pro, scale) with the org page's form; lands on the org
    page again, its flash saying what changed."""
    open_admin_org(page, org_id)
    page.get_by_label("New plan", exact=True).select_option(plan)
    page.get_by_role("button", name="Change plan").click()
    page.wait_for_url(f"**/console/admin/orgs/{org_id}")
    assert_accessible(page)
