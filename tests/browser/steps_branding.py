"""Branding a project in the console, and reading the branding off its hosted pages, in a browser:
steps for the branding test, the whole-scenario test and the screenshot run."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from tests.browser.console_flow import flash_text
from tests.browser.support import assert_accessible


def brand_project(
    page: Page, project_id: str, name: str, colour: str, logo_path: Path | None, theme: str = "auto"
) -> None:
    """On the console's branding page (signed in as an admin): the display name, the colour typed in
    its text field, the theme and, when given, a logo file; saved, and the preview shown."""
    page.goto(f"/console/projects/{project_id}/branding")
    assert_accessible(page)
    page.get_by_label("Display name").fill(name)
    page.get_by_label("or type it (#rrggbb)").fill(colour)
    page.locator(f'input[name="theme"][value="{theme}"]').check()
    if logo_path is not None:
        page.get_by_label("Logo", exact=False).set_input_files(logo_path)
    page.get_by_role("button", name="Save branding").click()
    page.wait_for_url(f"**/console/projects/{project_id}/branding")
    assert "Branding saved" in flash_text(page), flash_text(page)
    if logo_path is not None:
        assert page.locator("img.logo-preview").evaluate("image => image.naturalWidth") > 0
    assert_accessible(page)


def rgb(colour: str) -> str:
    """`#rrggbb` as a browser's computed style writes it."""
    return f"rgb({int(colour[1:3], 16)}, {int(colour[3:5], 16)}, {int(colour[5:7], 16)})"


def hosted_logo_width(page: Page) -> int:
    """The natural width of the hosted page's logo as the browser decoded it (0: it did not load)."""
    logo = page.locator("header.project img.logo")
    logo.wait_for()
    return int(logo.evaluate("image => image.complete ? image.naturalWidth : 0"))


def button_colours(page: Page, button: str) -> tuple[str, str]:
    """The computed background and text colours of a hosted page's button."""
    colours: list[str] = page.get_by_role("button", name=button).evaluate(
        "b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]"
    )
    return colours[0], colours[1]
