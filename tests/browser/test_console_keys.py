"""Projects and keys in a real browser: a developer creates a project, allows an origin and creates a
secret key, sees it once with its copy button, and never again: after the show-once answer, nothing the
browser received (bodies, headers, URLs), the page source nor the service's log holds more of the key
than its display prefix."""

from __future__ import annotations

from playwright.sync_api import Page

from silver_auth.keys.service import DISPLAY_CHARS
from tests.browser.console_flow import flash_text, set_up_first_developer
from tests.browser.steps_keys import add_origin, create_project, create_secret_key
from tests.browser.support import Recorder, assert_accessible
from tests.processes import ApiProcess


def test_a_secret_key_is_shown_once_then_only_its_prefix(
    page: Page, recorder: Recorder, service: ApiProcess
) -> None:
    org_id = set_up_first_developer(page, "keys@example.com", "Keys Org")
    project_id = create_project(page, org_id, "Web shop")
    assert "Created project Web shop" in flash_text(page)
    assert_accessible(page)
    add_origin(page, project_id, "http://localhost:5173")
    assert page.get_by_text("http://localhost:5173", exact=True).is_visible()
    assert_accessible(page)

    key = create_secret_key(page, project_id)
    assert key.startswith("sk_live_")
    panel = page.locator("section.show-once")
    assert panel.get_by_text("This secret key will not be shown again.").is_visible()
    assert panel.get_by_role("button", name="Copy key: new-key").is_visible()  # shown by console.js
    assert_accessible(page)
    seen_before = len(recorder.responses)

    prefix = key[: len("sk_live_") + DISPLAY_CHARS]
    secret_part = key[len(prefix) :]
    page.get_by_role("link", name="I have stored it: back to the keys").click()
    page.wait_for_url(f"**/console/projects/{project_id}/keys")
    page.reload()
    assert page.get_by_text(f"{prefix}…", exact=True).is_visible()
    assert page.locator("section.show-once").count() == 0
    assert_accessible(page)
    for path in (f"/console/projects/{project_id}", f"/console/projects/{project_id}/signing-keys"):
        page.goto(path)
        assert_accessible(page)
        assert secret_part not in page.content()
    page.goto(f"/console/orgs/{org_id}/projects")
    assert_accessible(page)

    # The canary: every later answer, and the page source, holds the prefix at most.
    later = recorder.responses[seen_before:]
    assert later, "the recorder saw nothing after the show-once answer"
    assert [seen.url for seen in later if secret_part in seen.url + seen.body + str(seen.headers)] == []
    holding = [seen for seen in recorder.responses if secret_part in seen.body]
    assert [(seen.status, seen.headers["cache-control"]) for seen in holding] == [(201, "no-store")]
    assert len(recorder.containing(secret_part)) == 1  # the show-once answer alone
    assert secret_part not in page.content()
    assert secret_part not in page.url
    assert secret_part not in service.log.read_text(errors="replace")
    assert recorder.csp_violations == []
