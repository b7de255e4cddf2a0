"""Steps of the members part of the console scenario: an admin invites someone with a one-time link,
the invitee signs up through it, an admin changes a member's role. Each takes a Playwright `Page` (one
person's browser) and plain values, so the whole-scenario test composes them."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.console_flow import ORG_PAGE, flash_text
from tests.browser.support import assert_accessible


def members_page(page: Page, org_id: str) -> None:
    page.goto(f"/console/orgs/{org_id}/members")
    page.get_by_role("heading", name="Members", exact=True).wait_for()


def invite_member(page: Page, org_id: str, email: str, role: str) -> str:
    """Creates an invitation on the members page; answers the link, which the page shows only once."""
    members_page(page, org_id)
    assert_accessible(page)
    page.get_by_label("Their email (optional)").fill(email)
    page.get_by_label("Role", exact=True).select_option(role)
    page.get_by_role("button", name="Create invitation link").click()
    page.get_by_role("heading", name="Invitation link").wait_for()
    assert "shown only once" in page.locator("main").inner_text()
    assert_accessible(page)
    return page.locator("#invitation-link").inner_text().strip()


def accept_invitation(page: Page, link: str, email: str, password: str) -> None:
    """Opens the link signed out and creates a new account through it: the account joins the org and
    lands on its overview."""
    page.goto(link)
    assert_accessible(page)
    page.get_by_role("link", name="create an account").click()
    page.wait_for_url("**/console/sign-up?invitation=*")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(ORG_PAGE)
    assert "you joined" in flash_text(page)


def change_role(page: Page, org_id: str, email: str, role: str) -> None:
    """Gives the member `email` the role `role` from the members page."""
    members_page(page, org_id)
    page.get_by_label(f"Role of {email}").select_option(role)
    page.get_by_role("row").filter(has_text=email).get_by_role("button", name="Change role").click()
    page.get_by_text(f"{email} is now {role}.").wait_for()
