"""Try sign-in in a real browser: the developer signs up on the console, creates a project, and runs
Try sign-in as an end-user in a second context (their console session, a fresh end-user cookie jar),
which shows the session JWT's claims, verified."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page
from sqlalchemy import select

from silver_auth.endusers.models import EndUser
from tests.browser.console_flow import set_up_first_developer
from tests.browser.steps_try import share_console_session, try_sign_in
from tests.browser.support import Recorder
from tests.endusers.support import END_USER_PASSWORD
from tests.factories import PASSWORD, Harness


def test_try_sign_in_shows_the_verified_claims(
    harness: Harness,
    page: Page,
    context: BrowserContext,
    recorder: Recorder,
    new_context: Callable[[Recorder], BrowserContext],
) -> None:
    email = "developer@example.com"
    org_id = set_up_first_developer(page, email)
    project_id = harness.project(harness.sign_in(email, PASSWORD), org_id, "Storefront")["id"]
    second_recorder = Recorder()
    second = new_context(second_recorder)
    share_console_session(context, second, harness.settings.session_cookie_name)
    claims = try_sign_in(second.new_page(), project_id, "shopper@example.com", END_USER_PASSWORD)

    async def end_user_id() -> str:
        async with harness.runtime.sessionmaker() as db:
            found = await db.scalar(select(EndUser.id).where(EndUser.email == "shopper@example.com"))
            assert found is not None
            return found

    assert claims["sub"] == harness.run(end_user_id)
    assert claims["aud"] == project_id and claims["env"] == "test"
    assert claims["iss"].endswith(f"/p/{project_id}")
    assert second_recorder.csp_violations == [] and recorder.csp_violations == []
    # The first context never saw the end-user: the hosted page's cookie went to the second one only.
    assert all(cookie["name"] != harness.settings.end_user_cookie_name for cookie in context.cookies())
