"""Every console page: CSRF on every form, the strict CSP and nothing inline, HTML errors, roles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from silver_auth.orgs.models import Org
from silver_auth.projects.models import Project
from tests.accounts.support import changes
from tests.console.support import Browser, assert_page, parse
from tests.console.test_sign_in import signed_in_browser
from tests.dbstate import snapshot
from tests.factories import ConsoleUser, Harness


def projects(harness: Harness, org_id: str) -> int:
    async def work() -> int:
        async with harness.runtime.sessionmaker() as db:
            query = select(func.count()).select_from(Project).where(Project.org_id == org_id)
            return int(await db.scalar(query) or 0)

    return harness.run(work)


def form_post(user: ConsoleUser, path: str, data: dict[str, Any]) -> Any:
    """A form post with the session cookie and no X-CSRF-Token header: the hidden field decides."""
    return user.post(path, data=data, csrf=False, follow_redirects=False)


def test_g_csrf_a_signed_in_form_without_or_with_a_wrong_token_is_refused(harness: Harness) -> None:
    user = harness.user()
    before = snapshot(harness)
    for data in ({"name": "Nope"}, {"name": "Nope", "csrf_token": "wrong"}):
        refused = form_post(user, "/console/orgs", data)
        assert_page(refused, 403)
        assert "csrf" in refused.text.lower()
    assert changes(before, snapshot(harness)) == {}
    done = form_post(user, "/console/orgs", {"name": "Yes", "csrf_token": user.csrf_token})
    assert done.status_code == 303

    async def names() -> list[str]:
        async with harness.runtime.sessionmaker() as db:
            return list(await db.scalars(select(Org.name)))

    assert harness.run(names) == ["Yes"]


def test_a_signed_out_form_without_its_token_is_refused(harness: Harness) -> None:
    harness.create_account("someone@example.com")
    browser = Browser(harness)
    browser.get("/console/sign-in")  # the form cookie, but no token posted
    before = snapshot(harness)
    refused = browser.post("/console/sign-in", {"email": "someone@example.com", "password": "x"})
    assert_page(refused, 403)
    wrong = browser.post(
        "/console/sign-up", {"email": "b@example.com", "password": "x", "csrf_token": "forged"}
    )
    assert_page(wrong, 403)
    assert changes(before, snapshot(harness)) == {}


def test_every_console_page_has_the_strict_csp_and_nothing_inline(harness: Harness) -> None:
    browser = Browser(harness)
    assert_page(browser.get("/console/setup"), 200)
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    signed_out = Browser(harness)
    for path in ("/console/sign-in", "/console/sign-up", "/console/sign-in/code"):
        assert_page(signed_out.get(path), 200)
    browser = signed_in_browser(harness, owner.email)
    assert_page(browser.get("/console/orgs"), 200)
    overview = assert_page(browser.get(f"/console/orgs/{org_id}"), 200)
    assert all(form["method"] == "post" and "csrf_token" in form["fields"] for form in overview.forms)
    assert_page(browser.get("/console/orgs/org_unknown"), 404)
    css = browser.get("/console/assets/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_a_viewer_sees_the_overview_without_mutation_controls(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    viewer = harness.member(owner, org_id, "viewer")
    page = assert_page(viewer.get(f"/console/orgs/{org_id}"), 200)
    assert "Plan:" in page_text(viewer, org_id) and "Getting started" in page_text(viewer, org_id)
    assert [form["action"] for form in page.forms] == ["/console/sign-out"]
    admin_page = parse(owner.get(f"/console/orgs/{org_id}"))
    assert f"/console/orgs/{org_id}/projects" in [form["action"] for form in admin_page.forms]
    # Forcing the mutation as a viewer, with a valid token: 403 and nothing written.
    before = snapshot(harness)
    forced = form_post(
        viewer, f"/console/orgs/{org_id}/projects", {"name": "x", "csrf_token": viewer.csrf_token}
    )
    assert_page(forced, 403)
    assert changes(before, snapshot(harness)) == {}
    done = form_post(
        owner, f"/console/orgs/{org_id}/projects", {"name": "Web", "csrf_token": owner.csrf_token}
    )
    assert done.status_code == 303 and projects(harness, org_id) == 1
    assert "Done:</span> Create a project" in owner.get(f"/console/orgs/{org_id}").text


def page_text(user: ConsoleUser, org_id: str) -> str:
    return user.get(f"/console/orgs/{org_id}").text


def test_a_foreign_or_unknown_org_answers_an_html_404(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    outsider = harness.user()
    for path in (f"/console/orgs/{org_id}", "/console/orgs/org_nope", "/console/no-such-page"):
        response = outsider.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert "Traceback" not in response.text
    assert_page(outsider.get(f"/console/orgs/{org_id}"), 404)
    forced = form_post(
        outsider, f"/console/orgs/{org_id}/projects", {"name": "x", "csrf_token": outsider.csrf_token}
    )
    assert_page(forced, 404)
    assert projects(harness, org_id) == 0


def test_signed_out_pages_of_the_signed_in_redirect_to_sign_in(harness: Harness) -> None:
    harness.create_account()
    browser = Browser(harness)
    for path in ("/console/orgs", "/console/orgs/org_x"):
        response = browser.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/console/sign-in"
    refused = browser.post("/console/sign-out", {})
    assert_page(refused, 401)
