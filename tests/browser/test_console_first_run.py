"""The console in a real browser on the embedded default: the first developer sets up their account
and org, the page's scripts (htmx, the console's own) load under the strict CSP, and axe finds nothing
serious."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.console_flow import flash_text, set_up_first_developer
from tests.browser.support import Recorder, assert_accessible


def test_first_developer_sets_up_the_console(page: Page, recorder: Recorder) -> None:
    org_id = set_up_first_developer(page, "first@example.com", "First Org")
    assert "ready" in flash_text(page)
    assert page.get_by_role("heading", name="First Org").is_visible()
    assert page.evaluate("typeof window.htmx") == "object", "htmx did not load"
    assert_accessible(page)
    assert recorder.csp_violations == []
    page.reload()
    assert flash_text(page) == ""  # shown once
    assert org_id in page.url
