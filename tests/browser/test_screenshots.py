"""Screenshots of the main hosted pages, for a person to review: `make screenshots` writes them to
test-artifacts/screenshots/ (SCREENSHOTS_DIR); in the normal suite they go to the test's temporary
folder, so the run that writes them is itself tested. The accounts shown are throwaway test data."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import BrowserContext, Page

from tests.browser.hosted_flow import open_hosted, sign_up
from tests.browser.support import CustomerApp
from tests.endusers.support import REDIRECT, customer_project
from tests.factories import Harness
from tests.hosted.images import png

TARGET = os.environ.get("SCREENSHOTS_DIR")
PNG = b"\x89PNG\r\n\x1a\n"


def test_screenshots_of_the_hosted_pages(
    harness: Harness, context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    folder = Path(TARGET) if TARGET else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    project = customer_project(harness)
    app = CustomerApp(REDIRECT)
    app.attach(context)
    page.set_viewport_size({"width": 800, "height": 700})
    written: list[Path] = []

    def shot(name: str) -> None:
        path = folder / f"hosted-{len(written) + 1:02d}-{name}.png"
        page.screenshot(path=path, full_page=True)
        written.append(path)

    open_hosted(page, project, "sign-up", "st")
    shot("sign-up")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_label("Password").fill("short")
    shot("sign-up-filled")
    open_hosted(page, project, "sign-in", "st")
    shot("sign-in")
    sign_up(harness, page, project, app, "screenshots@example.com")
    page.goto(project.pages("account/two-step/"))
    shot("two-step-off")
    page.get_by_role("button", name="Turn on").click()
    shot("two-step-enrol")
    open_hosted(page, project, "sign-in", "st")
    shot("continue-as")
    page.goto(project.pages("sign-out"))
    shot("sign-out")
    page.goto(project.pages("no-such-page"))
    shot("not-found")
    page.goto(project.pages("account/password/"))
    shot("password-change")

    branded = customer_project(harness)
    saved = branded.owner.post(
        f"/console/projects/{branded.project_id}/branding",
        data={
            "csrf_token": branded.owner.csrf_token,
            "display_name": "Acme Cloud",
            "primary_colour": "#0f766e",
        },
        files={"logo": ("logo.png", png(96, 48, (15, 118, 110)), "image/png")},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    open_hosted(page, branded, "sign-in", "st")
    shot("branded-sign-in")
    page.emulate_media(color_scheme="dark")
    open_hosted(page, branded, "sign-in", "st")
    shot("branded-sign-in-dark")

    assert [path.read_bytes()[:8] for path in written] == [PNG] * len(written)
