"""Steps of the user scenario on the end-users and audit log pages, each taking a Playwright `Page`
signed in to the console and plain values: find an end-user, ban them, end a session, read the audit
log (optionally filtered by action), download its CSV export."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from playwright.sync_api import Page

from tests.browser.console_flow import flash_text
from tests.browser.support import assert_accessible

AUDIT_COLUMNS = ("time", "action", "actor", "target", "project", "ip")


def find_end_user(page: Page, project_id: str, email: str, environment: str = "live") -> str:
    """Search the project's end-users of `environment` by email and open the match; answers its id."""
    page.goto(f"/console/projects/{project_id}/users")
    page.get_by_label("Environment").select_option(environment)
    page.get_by_label("Email contains").fill(email)
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*/users\?.*email="))
    assert_accessible(page)
    page.get_by_role("link", name=email, exact=True).click()
    page.wait_for_url(re.compile(r".*/users/usr_[^?]+\?environment="))
    assert_accessible(page)
    return page.url.split("/users/", 1)[1].split("?", 1)[0]


def ban_end_user(page: Page) -> str:
    """On an end-user's page: ban them, confirming; answers the flash message."""
    page.locator("summary", has_text="Ban").click()
    page.get_by_role("button", name="Ban", exact=True).click()
    page.wait_for_selector("p.flash")
    return flash_text(page)


def revoke_end_user_session(page: Page, session_id: str) -> str:
    """On an end-user's page: end one of their sessions; answers the flash message."""
    page.get_by_role("button", name=f"Revoke session {session_id}").click()
    page.wait_for_selector("p.flash")
    return flash_text(page)


def open_audit(page: Page, org_id: str, action: str | None = None) -> list[dict[str, str]]:
    """The org's audit log, filtered by `action` through the form (htmx swaps the table in place and
    pushes the URL); answers the rows shown, newest first."""
    page.goto(f"/console/orgs/{org_id}/audit")
    if action is not None:
        page.get_by_label("Action").select_option(action)
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(rf".*/audit\?.*action={re.escape(action)}"))
        page.wait_for_function(
            "action => [...document.querySelectorAll('#audit-results tbody th code')]"
            ".every(cell => cell.textContent === action)",
            arg=action,
        )
    assert_accessible(page)
    rows = page.locator("#audit-results tbody tr")
    return [
        dict(
            zip(
                AUDIT_COLUMNS,
                (cell.strip() for cell in rows.nth(i).locator("th, td").all_inner_texts()),
                strict=True,
            )
        )
        for i in range(rows.count())
    ]


def export_audit_csv(page: Page, folder: Path) -> list[dict[str, str]]:
    """On the audit log page: download the CSV export into `folder`; answers its rows."""
    with page.expect_download() as download:
        page.get_by_role("link", name="Export as CSV").click()
    saved = folder / download.value.suggested_filename
    download.value.save_as(saved)
    return list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
