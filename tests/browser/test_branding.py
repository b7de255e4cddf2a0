"""Hosted-page branding in a real browser: an admin brands a project on the console page, and its
hosted sign-in page shows the logo (decoded by the browser), buttons in the chosen colour with a
readable text colour, and stays free of serious axe findings in light and dark."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

from tests.browser.console_flow import sign_in
from tests.browser.steps_branding import brand_project, button_colours, hosted_logo_width, rgb
from tests.browser.support import Recorder, assert_accessible
from tests.endusers.support import customer_project
from tests.factories import Harness
from tests.hosted.images import png

COLOUR = "#ffd700"  # light: the button text turns near-black, links are darkened on white


def test_branded_sign_in_page(harness: Harness, page: Page, recorder: Recorder, tmp_path: Path) -> None:
    project = customer_project(harness)
    logo = tmp_path / "logo.png"
    logo.write_bytes(png(96, 48, (200, 40, 90)))
    sign_in(page, project.owner.email)
    brand_project(page, project.project_id, "Acme Cloud", COLOUR, logo)

    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.goto(project.pages("sign-in"))
        assert page.locator("header.project").inner_text().startswith("Acme Cloud")
        assert hosted_logo_width(page) == 96
        background, text = button_colours(page, "Sign in")
        assert background == rgb(COLOUR)
        assert text == rgb("#111111")
        assert_accessible(page)

    # A forced theme wins over the browser's preference.
    page.emulate_media(color_scheme="light")
    brand_project(page, project.project_id, "Acme Cloud", "#1f5fbf", None, theme="dark")
    page.goto(project.pages("sign-in"))
    assert page.locator("html").get_attribute("class") == "theme-dark"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == rgb("#14171f")
    background, text = button_colours(page, "Sign in")
    assert (background, text) == (rgb("#1f5fbf"), rgb("#ffffff"))
    assert hosted_logo_width(page) == 96  # saving without a file keeps the logo
    assert_accessible(page)
    assert recorder.csp_violations == []
