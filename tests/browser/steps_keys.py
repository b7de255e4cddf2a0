"""Steps of the projects and keys pages, for the console's browser tests and the whole scenario: create
a project, allow an origin, create a secret key and read it from its show-once panel."""

from __future__ import annotations

import re

from playwright.sync_api import Page

from tests.browser.console_flow import flash_text

PROJECT_PAGE = re.compile(r".*/console/projects/(prj_[A-Za-z0-9]+)$")


def create_project(page: Page, org_id: str, name: str) -> str:
    """The org's projects page and its create form; answers the new project's id (from the settings
    page the form leads to)."""
    page.goto(f"/console/orgs/{org_id}/projects")
    page.get_by_label("Project name").fill(name)
    page.get_by_role("button", name="Create project").click()
    page.wait_for_url(PROJECT_PAGE)
    match = PROJECT_PAGE.match(page.url)
    assert match, page.url
    return match.group(1)


def add_origin(page: Page, project_id: str, origin: str) -> None:
    """Allow one more origin on the project's settings page."""
    page.goto(f"/console/projects/{project_id}")
    page.get_by_label("Origin to allow").fill(origin)
    page.get_by_role("button", name="Add origin").click()
    page.wait_for_url(f"**/console/projects/{project_id}")
    assert "Allowed" in flash_text(page) or "already allowed" in flash_text(page), flash_text(page)


def create_secret_key(page: Page, project_id: str, environment: str = "live") -> str:
    """Create a secret key on the project's keys page; answers the whole key as its show-once panel
    shows it (the only time it is shown)."""
    page.goto(f"/console/projects/{project_id}/keys")
    page.get_by_label("Kind").select_option("secret")
    page.get_by_label("Environment").select_option(environment)
    page.get_by_role("button", name="Create key").click()
    panel = page.locator("section.show-once")
    panel.wait_for()
    return panel.locator("code.secret").inner_text().strip()
