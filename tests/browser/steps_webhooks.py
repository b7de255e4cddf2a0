"""Steps of the webhooks part of the console scenario, in a browser: add an endpoint (reading its
secret off the show-once answer), send it a test event, and wait for the deliveries table to show it
delivered, which it does by itself (htmx polling) without the page being reloaded."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.console_flow import flash_text
from tests.browser.support import assert_accessible


def add_webhook_endpoint(
    page: Page, project_id: str, url: str, event_types: tuple[str, ...] = ("webhook.test",)
) -> str:
    """Creates a test-environment endpoint on the project's webhooks page; answers the `whsec_`
    secret the create's answer shows (once), and leaves the browser on that answer."""
    page.goto(f"/console/projects/{project_id}/webhooks")
    assert_accessible(page)
    page.get_by_label("URL").fill(url)
    page.get_by_label("Environment").select_option("test")
    for kind in event_types:
        page.locator(f'input[name="event_types"][value="{kind}"]').check()
    page.get_by_role("button", name="Create endpoint").click()
    page.get_by_role("heading", name="Webhook endpoint created").wait_for()
    assert "will not be shown again" in page.locator(".show-once").inner_text()
    assert_accessible(page)
    secret = page.locator("#webhook-secret").inner_text().strip()
    assert secret.startswith("whsec_"), secret
    return secret


def open_endpoint(page: Page) -> None:
    """From the create's answer to the endpoint's own page."""
    page.get_by_role("link", name="Go to the endpoint and send it a test event").click()
    page.get_by_role("heading", name="Deliveries").wait_for()
    assert_accessible(page)


def send_test_event(page: Page) -> None:
    """On an endpoint's page: sends a webhook.test event and lands back on the page with the flash."""
    page.get_by_role("button", name="Send test event").click()
    page.locator("p.flash").wait_for()
    assert "Sent a webhook.test event" in flash_text(page)


def wait_for_delivery(page: Page) -> None:
    """Waits, on the endpoint's page as it is, for the newest delivery to show as delivered."""
    page.locator("#deliveries tbody tr").first.locator(".delivery-delivered").wait_for()
