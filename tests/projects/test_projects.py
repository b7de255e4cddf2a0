"""Projects: plan quota, test and live environments, allowed origins, redirect URLs and
sign-in methods checked on write, deletion taking the project's keys with it; every mutation audited."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import update as sa_update
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor
from silver_auth.core.errors import Conflict
from silver_auth.db.session import transaction
from silver_auth.projects.lifecycle import NoLifecycle
from silver_auth.projects.models import Project
from silver_auth.projects.service import ProjectService, get_project
from tests.factories import ConsoleUser, Harness
from tests.orgs.support import API, audit, problem, set_plan, snapshot


def _setup(harness: Harness) -> tuple[ConsoleUser, str, dict[str, Any]]:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    return owner, org_id, harness.project(owner, org_id)


def test_create_project_answers_201_with_both_environments(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    response = owner.post(f"{API}/orgs/{org_id}/projects", json={"name": "  My   Web App "})
    assert response.status_code == 201, response.text
    project = response.json()
    assert project["id"].startswith("prj_")
    assert project["org_id"] == org_id
    assert project["name"] == "My Web App"
    assert project["environments"] == ["test", "live"]
    assert project["allowed_origins"] == [] and project["redirect_urls"] == []
    assert project["sign_in_methods"] == ["password"]
    assert owner.ok("GET", f"{API}/projects/{project['id']}") == project
    listed = owner.ok("GET", f"{API}/orgs/{org_id}/projects")["items"]
    assert listed == [project]

    event = audit(owner, org_id, action="project.created")[0]
    assert event["actor"] == owner.account_id
    assert event["target"] == project["id"] and event["project_id"] == project["id"]
    assert event["metadata"] == {"name": "My Web App"}


def test_keys_exist_for_both_environments(harness: Harness) -> None:
    owner, _org_id, project = _setup(harness)
    for environment in project["environments"]:
        key = harness.key(owner, project["id"], "secret", environment)
        answer = harness.backend("/v1/backend/project", key["key"])
        assert answer.status_code == 200, answer.text
        assert answer.json()["environment"] == environment
        assert answer.json()["project"]["id"] == project["id"]


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "  "}, {"name": "x" * 101}, {"name": "a\x00b"}, {}])
def test_bad_project_names_are_422_and_write_nothing(harness: Harness, body: dict[str, Any]) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    before = snapshot(harness)
    problem(owner.post(f"{API}/orgs/{org_id}/projects", json=body), 422, "invalid-request")
    assert snapshot(harness) == before


def test_free_plan_allows_three_projects(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    for name in ("One", "Two", "Three"):
        harness.project(owner, org_id, name)
    before = snapshot(harness)
    body = problem(owner.post(f"{API}/orgs/{org_id}/projects", json={"name": "Four"}), 403, "quota-exceeded")
    assert "3 projects" in body["detail"]
    assert snapshot(harness) == before
    detail = owner.ok("GET", f"{API}/orgs/{org_id}")
    assert detail["usage"]["projects"] == 3 == detail["limits"]["projects"]

    # Deleting one frees its place; a bigger plan raises the limit.
    first = owner.ok("GET", f"{API}/orgs/{org_id}/projects")["items"][0]
    assert owner.delete(f"{API}/projects/{first['id']}").status_code == 204
    harness.project(owner, org_id, "Four")
    problem(owner.post(f"{API}/orgs/{org_id}/projects", json={"name": "Five"}), 403, "quota-exceeded")
    set_plan(harness, org_id, "pro")
    harness.project(owner, org_id, "Five")
    assert owner.ok("GET", f"{API}/orgs/{org_id}")["limits"]["projects"] == 20


def test_quota_counts_per_org(harness: Harness) -> None:
    owner = harness.user()
    full = harness.org(owner, "Full")["id"]
    for name in ("One", "Two", "Three"):
        harness.project(owner, full, name)
    other = harness.org(owner, "Other")["id"]
    harness.project(owner, other, "Fine")


def test_patch_origins_redirects_and_methods(harness: Harness) -> None:
    owner, org_id, project = _setup(harness)
    path = f"{API}/projects/{project['id']}"
    updated = owner.ok(
        "PATCH",
        path,
        json={
            "allowed_origins": [
                "https://app.example.com",
                "https://APP.example.com/",  # the same origin: collapsed
                "https://app.example.com:443",  # the default port is what browsers leave out
                "http://localhost:3000",
                "http://127.0.0.1:5173",
                "http://[::1]:8080",
                "https://staging.example.com:8443",
            ],
            "redirect_urls": [
                "https://app.example.com/callback",
                "https://app.example.com/callback",
                "http://localhost:3000/auth/done?from=login",
                "com.example.app://oauth",
                "com.example.app:/oauth2redirect/provider",
            ],
            "sign_in_methods": ["password", "password"],
        },
    )
    assert updated["allowed_origins"] == [
        "https://app.example.com",
        "http://localhost:3000",
        "http://127.0.0.1:5173",
        "http://[::1]:8080",
        "https://staging.example.com:8443",
    ]
    assert updated["redirect_urls"] == [
        "https://app.example.com/callback",
        "http://localhost:3000/auth/done?from=login",
        "com.example.app://oauth",
        "com.example.app:/oauth2redirect/provider",
    ]
    assert updated["sign_in_methods"] == ["password"]
    assert owner.ok("GET", path) == updated

    event = audit(owner, org_id, action="project.updated")[0]
    assert event["actor"] == owner.account_id and event["target"] == project["id"]
    assert set(event["metadata"]["changed"]) == {"allowed_origins", "redirect_urls"}
    assert event["metadata"]["changed"]["allowed_origins"] == updated["allowed_origins"]

    # A PATCH that only renames leaves the lists alone; the same values again record nothing.
    assert owner.ok("PATCH", path, json={"name": "Renamed"})["allowed_origins"] == updated["allowed_origins"]
    before = snapshot(harness)
    owner.ok("PATCH", path, json={"allowed_origins": updated["allowed_origins"], "name": "Renamed"})
    assert snapshot(harness) == before
    # An empty list clears.
    assert owner.ok("PATCH", path, json={"redirect_urls": []})["redirect_urls"] == []
    actions = [e["action"] for e in audit(owner, org_id, action="project.updated")]
    assert len(actions) == 3


BAD_ORIGINS = [
    "http://app.example.com",  # plain http off localhost
    "http://localhost.evil.com",
    "https://*.example.com",  # wildcards
    "*",
    "https://app.example.com/path",  # origins have no path, query or fragment
    "https://app.example.com/#x",
    "https://app.example.com?x=1",
    "https://user:pass@app.example.com",
    "javascript:alert(1)",
    "data:text/html,hi",
    "ftp://files.example.com",
    "null",
    "https://",
    "app.example.com",
    "https://app.example.com:99999",
    "https://exa mple.com",
    "https://a\x00b.example.com",  # NUL: Postgres refuses it (was a 500)
]

BAD_REDIRECTS = [
    "http://app.example.com/callback",  # plain http off localhost
    "https://*.example.com/callback",  # wildcards
    "https://app.example.com/*",
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "https://app.example.com/callback#token",  # fragments
    "https://app.example.com/callback#",
    "https://user@app.example.com/callback",
    "/relative/callback",
    "//evil.example.com/callback",
    "https:///callback",
    "https://app.example.com/call back",
    "https://app.example.com/c\x00b",  # NUL: Postgres refuses it (was a 500)
    # Only web schemes and an app's reverse-DNS scheme (RFC 8252 7.1): never another protocol's.
    "ftp://files.example.com/cb",
    "FTP://files.example.com/cb",
    "ws://localhost:3000/cb",
    "wss://app.example.com/cb",
    "mailto:someone@example.com",
    "tel:+15550100",
    "about:blank",
    "blob:https://app.example.com/0f3e",
    "intent://callback#Intent;scheme=x;end",
    "chrome-extension://abcdef/cb",
    "myapp://callback",  # not reverse-DNS
    "com..example:/cb",
    "app.example.com:8443/callback",  # https:// forgotten: parses as the scheme app.example.com
    "com.example.app:callback",  # no path
]


@pytest.mark.parametrize(
    ("field", "value"),
    # One bad entry among good ones refuses the whole change.
    [("allowed_origins", ["https://good.example.com", v]) for v in BAD_ORIGINS]
    + [("redirect_urls", ["https://good.example.com/cb", v]) for v in BAD_REDIRECTS]
    + [
        ("sign_in_methods", ["magic-link"]),
        ("sign_in_methods", []),
        ("allowed_origins", "https://app.example.com"),  # a list, not a string
        ("allowed_origins", ["https://app.example.com"] * 51),  # at most 50
        ("redirect_urls", ["https://app.example.com/" + "x" * 2048]),
        ("name", "   "),
    ],
)
def test_bad_project_settings_are_422_and_write_nothing(harness: Harness, field: str, value: Any) -> None:
    owner, _org_id, project = _setup(harness)
    path = f"{API}/projects/{project['id']}"
    valid = {
        "allowed_origins": ["https://good.example.com"],
        "redirect_urls": ["https://good.example.com/cb"],
    }
    owner.ok("PATCH", path, json=valid)
    before = snapshot(harness)
    body: dict[str, Any] = {**valid, "name": "Changed", field: value}
    problem(owner.patch(path, json=body), 422, "invalid-request")
    assert snapshot(harness) == before
    assert owner.ok("GET", path)["name"] == project["name"]


def test_only_admins_change_projects_and_viewers_read(harness: Harness) -> None:
    owner, org_id, project = _setup(harness)
    path = f"{API}/projects/{project['id']}"
    viewer = harness.member(owner, org_id, "viewer")
    developer = harness.member(owner, org_id, "developer")
    assert viewer.ok("GET", path)["id"] == project["id"]
    assert [p["id"] for p in viewer.ok("GET", f"{API}/orgs/{org_id}/projects")["items"]] == [project["id"]]
    before = snapshot(harness)
    for user in (viewer, developer):
        problem(user.patch(path, json={"allowed_origins": ["https://evil.example.com"]}), 403, "forbidden")
        problem(user.delete(path), 403, "forbidden")
        problem(user.post(f"{API}/orgs/{org_id}/projects", json={"name": "Mine"}), 403, "forbidden")
    assert snapshot(harness) == before


def test_delete_project_removes_its_keys(harness: Harness) -> None:
    owner, org_id, project = _setup(harness)
    keep = harness.project(owner, org_id, "Keep")
    doomed_keys = [
        harness.key(owner, project["id"], "secret", "live"),
        harness.key(owner, project["id"], "secret", "test"),
    ]
    publishable = harness.key(owner, project["id"], "publishable", "live")
    kept_key = harness.key(owner, keep["id"], "secret", "live")
    for key in doomed_keys:  # warm the in-process cache: deletion must still win at once
        assert harness.backend("/v1/backend/project", key["key"]).status_code == 200
    harness.client.cookies.clear()
    client_config = harness.client.get("/v1/client-config", headers={"x-publishable-key": publishable["key"]})
    assert client_config.status_code == 200

    assert owner.delete(f"{API}/projects/{project['id']}").status_code == 204

    for key in doomed_keys:
        problem(harness.backend("/v1/backend/project", key["key"]), 401, "unauthorized")
    harness.client.cookies.clear()
    gone = harness.client.get("/v1/client-config", headers={"x-publishable-key": publishable["key"]})
    problem(gone, 404, "not-found")
    problem(owner.get(f"{API}/projects/{project['id']}"), 404, "not-found")
    problem(owner.get(f"{API}/projects/{project['id']}/keys"), 404, "not-found")
    problem(owner.delete(f"{API}/keys/{doomed_keys[0]['id']}"), 404, "not-found")
    assert [p["id"] for p in owner.ok("GET", f"{API}/orgs/{org_id}/projects")["items"]] == [keep["id"]]
    assert harness.backend("/v1/backend/project", kept_key["key"]).status_code == 200
    assert not any(project["id"] in row for row in snapshot(harness)["api_keys"])

    event = audit(owner, org_id, action="project.deleted")[0]
    assert event["actor"] == owner.account_id
    assert event["target"] == project["id"]
    assert event["metadata"] == {"name": project["name"]}
    # Deleting it again: it is gone, like any unknown project.
    problem(owner.delete(f"{API}/projects/{project['id']}"), 404, "not-found")


def _redirects(owner: ConsoleUser, project_id: str, method: str, url: str) -> httpx.Response:
    path = f"{API}/projects/{project_id}/redirect-urls"
    if method == "POST":
        return owner.post(path, json={"url": url})
    return owner.delete(path, params={"url": url})


def _hosted_accepts(harness: Harness, project_id: str, url: str) -> bool:
    harness.client.cookies.clear()
    page = harness.client.get(f"/p/{project_id}/test/sign-in", params={"redirect_url": url})
    assert page.status_code in (200, 400), page.text
    return page.status_code == 200


def test_one_redirect_url_is_added_or_removed_keeping_the_others(harness: Harness) -> None:
    owner, org_id, project = _setup(harness)
    first, second, third = (f"https://app.example.com/{name}" for name in ("one", "two", "three"))
    owner.ok("PATCH", f"{API}/projects/{project['id']}", json={"redirect_urls": [first, second]})

    added = _redirects(owner, project["id"], "POST", f"  {third} ")
    assert added.status_code == 200, added.text
    assert added.json()["redirect_urls"] == [first, second, third]
    assert added.json() == owner.ok("GET", f"{API}/projects/{project['id']}")
    event = audit(owner, org_id, action="project.updated")[0]
    assert event["actor"] == owner.account_id and event["target"] == project["id"]
    assert event["metadata"] == {"changed": {"redirect_urls": [first, second, third]}}
    assert _hosted_accepts(harness, project["id"], third)  # the hosted pages see it at once

    before = snapshot(harness)
    assert _redirects(owner, project["id"], "POST", third).json()["redirect_urls"] == [first, second, third]
    assert snapshot(harness) == before  # already registered: nothing written, nothing audited

    removed = _redirects(owner, project["id"], "DELETE", second)
    assert removed.status_code == 200, removed.text
    assert removed.json()["redirect_urls"] == [first, third]
    assert audit(owner, org_id, action="project.updated")[0]["metadata"] == {
        "changed": {"redirect_urls": [first, third]}
    }
    assert not _hosted_accepts(harness, project["id"], second)

    before = snapshot(harness)
    for url in (second, first + "/", first.upper()):  # matched exactly, like the hosted pages do
        body = problem(_redirects(owner, project["id"], "DELETE", url), 404, "not-found")
        assert "not registered" in body["detail"]
    for bad in ("ftp://files.example.com/cb", "javascript:alert(1)", "https://app.example.com/#x", ""):
        problem(_redirects(owner, project["id"], "POST", bad), 422, "invalid-request")
    problem(
        owner.post(f"{API}/projects/{project['id']}/redirect-urls", json={"urls": [first]}),
        422,
        "invalid-request",
    )
    problem(owner.delete(f"{API}/projects/{project['id']}/redirect-urls"), 422, "invalid-request")
    assert snapshot(harness) == before


def test_at_most_fifty_redirect_urls_one_at_a_time_too(harness: Harness) -> None:
    owner, _org_id, project = _setup(harness)
    urls = [f"https://app.example.com/cb{i}" for i in range(50)]
    owner.ok("PATCH", f"{API}/projects/{project['id']}", json={"redirect_urls": urls})
    before = snapshot(harness)
    body = problem(
        _redirects(owner, project["id"], "POST", "https://app.example.com/more"), 422, "invalid-request"
    )
    assert "50" in body["detail"]
    assert snapshot(harness) == before


def test_only_admins_add_or_remove_redirect_urls(harness: Harness) -> None:
    owner, org_id, project = _setup(harness)
    owner.ok(
        "PATCH", f"{API}/projects/{project['id']}", json={"redirect_urls": ["https://app.example.com/cb"]}
    )
    before = snapshot(harness)
    for role in ("viewer", "developer"):
        member = harness.member(owner, org_id, role)
        before = snapshot(harness)
        problem(_redirects(member, project["id"], "POST", "https://evil.example.com/cb"), 403, "forbidden")
        problem(_redirects(member, project["id"], "DELETE", "https://app.example.com/cb"), 403, "forbidden")
        assert snapshot(harness) == before


def test_a_redirect_url_edit_never_overwrites_a_change_made_meanwhile(harness: Harness) -> None:
    """The list is read, the identity engine told (maybe over the network), then the row locked: if
    another request changed the list in between, the edit is refused (409) rather than undo it."""
    owner, _org_id, project = _setup(harness)
    theirs = ["https://app.example.com/theirs"]
    runtime = harness.runtime

    class Meddling(NoLifecycle):
        async def redirects_changing(self, db: AsyncSession, changed: Project, urls: list[str]) -> None:
            async with transaction(runtime.sessionmaker) as other:
                await other.execute(
                    sa_update(Project).where(Project.id == changed.id).values(redirect_urls=theirs)
                )

    async def edit() -> None:
        async with transaction(runtime.sessionmaker) as db:
            service = ProjectService(db, Meddling(), runtime.keys)
            target = await get_project(db, project["id"])
            await service.add_redirect_url(
                target, "https://app.example.com/mine", actor=Actor(owner.account_id)
            )

    with pytest.raises(Conflict):
        harness.run(edit)
    assert owner.ok("GET", f"{API}/projects/{project['id']}")["redirect_urls"] == theirs


def test_openapi_says_a_patch_replaces_the_whole_redirect_url_list(harness: Harness) -> None:
    document = harness.client.get("/openapi.json").json()
    field = document["components"]["schemas"]["ProjectUpdate"]["properties"]["redirect_urls"]
    assert "Replaces the whole list" in json.dumps(field)
    paths = document["paths"]["/console/api/projects/{project_id}/redirect-urls"]
    assert {"post", "delete"} <= set(paths)


def test_one_origin_is_added_or_removed_keeping_the_others(harness: Harness) -> None:
    owner, org_id, project = _setup(harness)
    path = f"{API}/projects/{project['id']}/origins"
    first, second = "https://app.example.com", "http://localhost:3000"
    owner.ok("PATCH", f"{API}/projects/{project['id']}", json={"allowed_origins": [first]})

    added = owner.post(path, json={"origin": f" {second}/ "})
    assert added.status_code == 200, added.text
    assert added.json()["allowed_origins"] == [first, second]  # cleaned as a PATCH cleans them
    event = audit(owner, org_id, action="project.updated")[0]
    assert event["metadata"] == {"changed": {"allowed_origins": [first, second]}}
    before = snapshot(harness)
    assert owner.post(path, json={"origin": second}).json()["allowed_origins"] == [first, second]
    assert snapshot(harness) == before  # already allowed: nothing written

    problem(owner.post(path, json={"origin": "https://*.example.com"}), 422, "invalid-request")
    problem(owner.post(path, json={"origin": "http://app.example.com"}), 422, "invalid-request")
    problem(owner.delete(path, params={"origin": "https://other.example.com"}), 404, "not-found")
    assert snapshot(harness) == before

    removed = owner.delete(path, params={"origin": first})
    assert removed.status_code == 200 and removed.json()["allowed_origins"] == [second]


def test_an_origin_edit_never_overwrites_a_change_made_meanwhile(harness: Harness) -> None:
    """The page read the list, another request changed it, then this edit arrives: refused (409)."""
    owner, _org_id, project = _setup(harness)
    theirs = ["https://theirs.example.com"]
    runtime = harness.runtime

    async def edit() -> None:
        async with transaction(runtime.sessionmaker) as db:
            service = ProjectService(db, NoLifecycle(), runtime.keys)
            target = await get_project(db, project["id"])  # the list as this request read it
            async with transaction(runtime.sessionmaker) as other:
                await other.execute(
                    sa_update(Project).where(Project.id == target.id).values(allowed_origins=theirs)
                )
            await service.add_origin(target, "https://mine.example.com", actor=Actor(owner.account_id))

    with pytest.raises(Conflict):
        harness.run(edit)
    assert owner.ok("GET", f"{API}/projects/{project['id']}")["allowed_origins"] == theirs


def test_two_edits_in_one_transaction_both_stay(harness: Harness) -> None:
    """A redirect URL, then an origin, in one transaction: the second edit re-reads the row under lock,
    and the first one's change is still there (a provisioning script does both at once)."""
    owner, _org_id, project = _setup(harness)
    runtime = harness.runtime

    async def edit() -> None:
        async with transaction(runtime.sessionmaker) as db:
            service = ProjectService(db, NoLifecycle(), runtime.keys)
            target = await get_project(db, project["id"])
            actor = Actor(owner.account_id)
            target = await service.add_redirect_url(target, "https://app.example.com/both", actor=actor)
            await service.add_origin(target, "https://both.example.com", actor=actor)

    harness.run(edit)
    answer = owner.ok("GET", f"{API}/projects/{project['id']}")
    assert "https://app.example.com/both" in answer["redirect_urls"]
    assert "https://both.example.com" in answer["allowed_origins"]
