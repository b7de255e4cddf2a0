"""The console's members in a real browser: the owner invites a developer with a one-time link, the
developer signs up through it in their own browser, the owner raises them to admin and then lowers them
to viewer, and the member's pages follow: the "New project" form comes and goes, and a project forced
from the viewer's browser with its own CSRF token is refused."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page
from sqlalchemy import func, select

from silver_auth.projects.models import Project
from tests.browser.console_flow import set_up_first_developer
from tests.browser.steps_members import accept_invitation, change_role, invite_member
from tests.browser.support import Recorder, assert_accessible
from tests.factories import PASSWORD, Harness

NEW_PROJECT = "Create project"


def projects(harness: Harness) -> int:
    async def work() -> int:
        async with harness.runtime.sessionmaker() as db:
            return int(await db.scalar(select(func.count()).select_from(Project)) or 0)

    return harness.run(work)


def test_owner_invites_a_developer_and_makes_them_a_viewer(
    page: Page,
    recorder: Recorder,
    new_context: Callable[[Recorder], BrowserContext],
    harness: Harness,
) -> None:
    org_id = set_up_first_developer(page, "owner@example.com", "Acme")
    link = invite_member(page, org_id, "dev@example.com", "developer")
    assert "/console/invitations/" in link
    token = link.rsplit("/", 1)[1]
    page.goto(f"/console/orgs/{org_id}/members")
    assert token not in page.content()  # shown once
    assert page.get_by_text("dev@example.com").is_visible()  # pending

    member_recorder = Recorder()
    member = new_context(member_recorder).new_page()
    accept_invitation(member, link, "dev@example.com", PASSWORD)
    assert member.get_by_role("button", name=NEW_PROJECT).count() == 0  # a developer makes no project

    change_role(page, org_id, "dev@example.com", "admin")
    member.reload()
    assert member.get_by_role("button", name=NEW_PROJECT).is_visible()
    change_role(page, org_id, "dev@example.com", "viewer")
    assert_accessible(page)

    member.reload()
    assert member.get_by_role("button", name=NEW_PROJECT).count() == 0
    assert member.locator("form[method=post]:not(.sign-out)").count() == 0
    member.goto(f"/console/orgs/{org_id}/members")
    assert_accessible(member)
    assert member.get_by_role("combobox").count() == 0  # no role to change
    assert member.get_by_role("button", name="Create invitation link").count() == 0

    csrf_token = member.locator("form.sign-out input[name=csrf_token]").get_attribute("value")
    assert csrf_token
    forced = member.request.post(
        f"/console/orgs/{org_id}/projects",
        form={"csrf_token": csrf_token, "name": "Sneaky"},
        headers={"Origin": page.url.split("/console/", 1)[0]},
        max_redirects=0,
    )
    assert forced.status == 403 and "you are viewer" in forced.text()
    assert projects(harness) == 0
    assert recorder.csp_violations == [] and member_recorder.csp_violations == []
    carriers = [urlsplit(url) for url in member_recorder.containing(token)]
    assert carriers, "the recorder saw the invitation page"
    for url in carriers:  # the token reached only this origin's invitation and sign-up pages
        assert url.netloc == urlsplit(link).netloc
        assert url.path.startswith(("/console/invitations/", "/console/sign-up")), url
