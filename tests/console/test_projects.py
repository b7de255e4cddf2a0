"""The projects pages: an org's list and its create form, a project's settings (ids and URLs, allowed
origins and redirect URLs added and removed one at a time, rename, delete), each under its API rule."""

from __future__ import annotations

from html import unescape

from sqlalchemy import select

from silver_auth.projects.models import Project
from tests.accounts.support import changes
from tests.authz.test_matrix import set_plan
from tests.console.support import Browser, assert_page, parse
from tests.console.test_sign_in import signed_in_browser
from tests.dbstate import snapshot
from tests.factories import ConsoleUser, Harness


def project_row(harness: Harness, project_id: str) -> Project | None:
    async def work() -> Project | None:
        async with harness.runtime.sessionmaker() as db:
            return await db.scalar(select(Project).where(Project.id == project_id))

    return harness.run(work)


def owner_browser(harness: Harness) -> tuple[ConsoleUser, str, Browser]:
    owner = harness.user()
    org_id = harness.org(owner, "Acme")["id"]
    return owner, org_id, signed_in_browser(harness, owner.email)


def actions(browser_or_user: Browser | ConsoleUser, path: str) -> list[str]:
    return [form["action"] for form in assert_page(browser_or_user.get(path), 200).forms]


def test_the_project_list_says_what_to_do_and_an_admin_creates_one(harness: Harness) -> None:
    owner, org_id, browser = owner_browser(harness)
    viewer = harness.member(owner, org_id, "viewer")
    listing = browser.get(f"/console/orgs/{org_id}/projects")
    assert_page(listing, 200)
    assert "No projects yet. Create one below" in unescape(listing.text)
    assert 'aria-current="page">Projects' in unescape(listing.text)
    assert "Ask an admin or the owner" in unescape(viewer.get(f"/console/orgs/{org_id}/projects").text)

    done = browser.submit(f"/console/orgs/{org_id}/projects", {"name": "  Web   shop "})
    assert done.status_code == 303
    project_id = done.headers["location"].rsplit("/", 1)[1]
    settings = browser.follow(done)
    assert "Created project Web shop. Add your app's origins" in unescape(settings.text)

    listing = browser.get(f"/console/orgs/{org_id}/projects")
    assert f'href="/console/projects/{project_id}"' in unescape(listing.text)
    assert f'href="/console/projects/{project_id}/keys"' in unescape(listing.text)
    assert "<time datetime=" in unescape(listing.text)  # the created time
    assert actions(viewer, f"/console/orgs/{org_id}/projects") == ["/console/sign-out"]
    assert project_id in unescape(viewer.get(f"/console/orgs/{org_id}/projects").text)


def test_a_refused_project_shows_the_list_again_with_the_reason(harness: Harness) -> None:
    _owner, org_id, browser = owner_browser(harness)
    before = snapshot(harness)
    refused = browser.submit(f"/console/orgs/{org_id}/projects", {"name": "\u200b"})
    page = assert_page(refused, 422)
    assert "name must not be blank" in unescape(refused.text)
    assert f"/console/orgs/{org_id}/projects" in [form["action"] for form in page.forms]
    assert changes(before, snapshot(harness)) == {}


def test_the_settings_page_shows_ids_urls_and_the_project_nav(harness: Harness) -> None:
    owner, org_id, browser = owner_browser(harness)
    project = harness.project(owner, org_id, "Web")
    page = browser.get(f"/console/projects/{project['id']}")
    assert_page(page, 200)
    for shown in (
        project["id"],
        org_id,
        f"{harness.settings.auth_url.rstrip('/')}/p/{project['id']}/live/sign-in",
        f"{harness.settings.auth_url.rstrip('/')}/p/{project['id']}/test/sign-up",
        "/v1/client-config",
        f"/v1/projects/{project['id']}/jwks.json",
        f'href="/console/projects/{project["id"]}/branding"',
        'data-copy="project-id"',
        'aria-current="page">Settings',
        'aria-current="page">Acme',  # the org switcher names the project's org
    ):
        assert shown in unescape(page.text), shown


def test_origins_are_added_and_removed_one_at_a_time(harness: Harness) -> None:
    owner, org_id, browser = owner_browser(harness)
    project_id = harness.project(owner, org_id)["id"]
    path = f"/console/projects/{project_id}"
    assert "No allowed origins yet" in unescape(browser.get(path).text)

    for origin in ("https://app.example.com:443", "http://localhost:5173"):
        added = browser.submit(path, {"origin": origin}, action=f"{path}/origins")
        assert added.status_code == 303
    row = project_row(harness, project_id)
    assert row is not None and row.allowed_origins == ["https://app.example.com", "http://localhost:5173"]
    assert "Allowed http://localhost:5173." in unescape(browser.follow(added).text)

    again = browser.submit(path, {"origin": "https://app.example.com"}, action=f"{path}/origins")
    assert "was already allowed; nothing changed" in unescape(browser.follow(again).text)

    before = snapshot(harness)
    for bad, reason in (
        ("http://app.example.com", "plain http is only allowed for localhost"),
        ("https://*.example.com", "wildcards are not allowed"),
        ("https://app.example.com/path", "is not an origin"),
    ):
        refused = browser.submit(path, {"origin": bad}, action=f"{path}/origins")
        assert_page(refused, 422)
        assert reason in unescape(refused.text), unescape(refused.text)
        assert "https://app.example.com" in unescape(refused.text)  # the list as it stands, with the form
    assert changes(before, snapshot(harness)) == {}

    settings = parse(browser.get(path))
    removes = [form for form in settings.forms if form["action"] == f"{path}/origins/remove"]
    assert [form["fields"]["origin"] for form in removes] == [
        "https://app.example.com",
        "http://localhost:5173",
    ]
    removed = browser.submit(path, {"origin": "https://app.example.com"}, action=f"{path}/origins/remove")
    assert "Removed https://app.example.com." in unescape(browser.follow(removed).text)
    row = project_row(harness, project_id)
    assert row is not None and row.allowed_origins == ["http://localhost:5173"]
    missing = browser.submit(path, {"origin": "https://gone.example.com"}, action=f"{path}/origins/remove")
    assert_page(missing, 404)
    assert "is not an allowed origin of this project" in unescape(missing.text)


def test_redirect_urls_are_added_and_removed_one_at_a_time(harness: Harness) -> None:
    owner, org_id, browser = owner_browser(harness)
    project_id = harness.project(owner, org_id)["id"]
    path = f"/console/projects/{project_id}"
    for url in ("https://app.example.com/callback", "com.example.app:/callback"):
        assert browser.submit(path, {"url": url}, action=f"{path}/redirect-urls").status_code == 303
    refused = browser.submit(path, {"url": "javascript:alert(1)"}, action=f"{path}/redirect-urls")
    assert_page(refused, 422)
    assert "scheme is not allowed" in unescape(refused.text)
    removed = browser.submit(
        path, {"url": "com.example.app:/callback"}, action=f"{path}/redirect-urls/remove"
    )
    assert "Removed com.example.app:/callback." in unescape(browser.follow(removed).text)
    row = project_row(harness, project_id)
    assert row is not None and row.redirect_urls == ["https://app.example.com/callback"]
    unknown = browser.submit(
        path, {"url": "https://other.example.com/"}, action=f"{path}/redirect-urls/remove"
    )
    assert_page(unknown, 404)
    assert "is not registered" in unescape(unknown.text)


def test_rename_and_delete_with_the_typed_name(harness: Harness) -> None:
    owner, org_id, browser = owner_browser(harness)
    project_id = harness.project(owner, org_id, "Web")["id"]
    path = f"/console/projects/{project_id}"
    renamed = browser.submit(path, {"name": "Shop"}, action=f"{path}/name")
    assert "Renamed the project to Shop." in unescape(browser.follow(renamed).text)

    wrong = browser.submit(path, {"confirm_name": "Web"}, action=f"{path}/delete")
    assert_page(wrong, 422)
    assert "type the project's name, Shop, to delete it" in unescape(wrong.text)
    assert project_row(harness, project_id) is not None

    deleted = browser.submit(path, {"confirm_name": "Shop"}, action=f"{path}/delete")
    assert deleted.headers["location"] == f"/console/orgs/{org_id}/projects"
    assert "Deleted project Shop" in unescape(browser.follow(deleted).text)
    assert project_row(harness, project_id) is None
    assert_page(browser.get(path), 404)


def test_viewers_and_developers_read_settings_without_controls_and_are_refused(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    set_plan(harness, org_id, "scale")  # room for a member of each role
    project_id = harness.project(owner, org_id)["id"]
    path = f"/console/projects/{project_id}"
    for role in ("viewer", "developer"):
        member = harness.member(owner, org_id, role)
        page = member.get(path)
        assert actions(member, path) == ["/console/sign-out"]
        assert "Delete project" not in unescape(page.text) and "Add origin" not in unescape(page.text)
        before = snapshot(harness)
        for action, field in (("origins", "origin"), ("name", "name"), ("delete", "confirm_name")):
            forced = member.post(
                f"{path}/{action}",
                data={field: "https://app.example.com", "csrf_token": member.csrf_token},
                csrf=False,
                follow_redirects=False,
            )
            assert_page(forced, 403)
        assert changes(before, snapshot(harness)) == {}
    admin = harness.member(owner, org_id, "admin")
    assert f"{path}/origins" in actions(admin, path)
    outsider = harness.user()
    assert_page(outsider.get(path), 404)
