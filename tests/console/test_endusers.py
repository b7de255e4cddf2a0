"""The end-users pages: the list (email search, environments, pages), one user's details and sessions,
ban, unban and session revocation through the backend's services (developer and up), each audited;
a user or session outside the path's project is not found."""

from __future__ import annotations

import re

import httpx

from tests.console.support import assert_page
from tests.endusers.support import CustomerProject, backend, customer_project, sign_up
from tests.factories import ConsoleUser, Harness

NEXT_PAGE = re.compile(r'<a href="([^"]+)" rel="next">')


def users_path(project_id: str, **query: str) -> str:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/console/projects/{project_id}/users" + (f"?{params}" if params else "")


def user_path(project: CustomerProject, user_id: str, action: str = "") -> str:
    return f"/console/projects/{project.project_id}/users/{user_id}{action}?environment={project.environment}"


def text_of(user: ConsoleUser, path: str, status: int = 200) -> str:
    """The page at `path`, checked as every console page is (CSP, no-store, nothing inline)."""
    response = user.get(path)
    assert_page(response, status)
    return response.text


def make_user(harness: Harness, project: CustomerProject, email: str) -> str:
    response = backend(harness, project, "POST", "/users", json={"email": email})
    assert response.status_code == 201, response.text
    user_id: str = response.json()["id"]
    return user_id


def submit(user: ConsoleUser, page_path: str, action: str) -> httpx.Response:
    """Post the form of `page_path` whose action is `action`, with its own hidden fields (the CSRF
    token from the form, not the header), as a browser without JavaScript does."""
    parsed = assert_page(user.get(page_path), 200)
    forms = [form for form in parsed.forms if form["action"] == action]
    assert forms, f"no form posting to {action} on {page_path}"
    return user.post(action, data=forms[0]["fields"], csrf=False, follow_redirects=False)


def audit_actions(owner: ConsoleUser, org_id: str, action: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = owner.ok(
        "GET", f"/console/api/orgs/{org_id}/audit", params={"action": action}
    )["items"]
    return items


def signed_up(harness: Harness, project: CustomerProject, email: str) -> tuple[str, str]:
    """An end-user who signed up on the hosted page: their id and the session it started."""
    sign_up(harness, project, email)
    found = backend(harness, project, "GET", "/users", params={"email": email}).json()["items"]
    user_id = found[0]["id"]
    sessions = backend(harness, project, "GET", f"/users/{user_id}/sessions").json()["items"]
    return user_id, sessions[0]["id"]


def test_the_list_searches_by_email_within_one_environment(harness: Harness) -> None:
    project = customer_project(harness)  # keys of the test environment
    for email in ("alice@example.com", "alina@example.com", "bob@example.com"):
        make_user(harness, project, email)
    live = CustomerProject(
        project.owner,
        project.org_id,
        project.project_id,
        "live",
        "",
        harness.key(project.owner, project.project_id, "secret", "live")["key"],
    )
    make_user(harness, live, "carol@example.com")
    owner = project.owner

    test_page = text_of(owner, users_path(project.project_id, environment="test"))
    assert all(e in test_page for e in ("alice@example.com", "alina@example.com", "bob@example.com"))
    assert "carol@example.com" not in test_page
    assert 'aria-current="page">End-users' in test_page  # the project's tab

    found = text_of(owner, users_path(project.project_id, environment="test", email="ALI"))
    assert "alice@example.com" in found and "alina@example.com" in found
    assert "bob@example.com" not in found

    live_page = text_of(owner, users_path(project.project_id))  # live unless told
    assert "carol@example.com" in live_page and "alice@example.com" not in live_page

    nobody = text_of(owner, users_path(project.project_id, environment="test", email="zed"))
    assert "No end-user of the test environment has an email containing" in nobody


def test_an_empty_list_says_how_end_users_appear(harness: Harness) -> None:
    project = customer_project(harness)
    body = text_of(project.owner, users_path(project.project_id, environment="test"))
    assert "No end-users in the test environment yet" in body
    assert f"/p/{project.project_id}/test/sign-up" in body


def test_the_pages_walk_every_user_once(harness: Harness) -> None:
    project = customer_project(harness)
    made = {make_user(harness, project, f"user{n:02d}@example.com") for n in range(27)}  # past one page
    seen: list[str] = []
    path: str | None = users_path(project.project_id, environment="test")
    while path is not None:
        text = text_of(project.owner, path)
        seen += re.findall(r"/users/(usr_[A-Za-z0-9_-]+)\?environment=test", text)
        link = NEXT_PAGE.search(text)
        path = link.group(1).replace("&amp;", "&") if link else None
    assert sorted(seen) == sorted(made)
    assert len(seen) == len(set(seen))


def test_a_bad_cursor_is_explained_on_the_page(harness: Harness) -> None:
    project = customer_project(harness)
    response = project.owner.get(users_path(project.project_id, environment="test", after="nope"))
    assert_page(response, 422)
    assert "not an end-user id" in response.text


def test_details_show_the_user_and_their_sessions(harness: Harness) -> None:
    project = customer_project(harness)
    user_id, session_id = signed_up(harness, project, "dana@example.com")
    response = project.owner.get(user_path(project, user_id))
    parsed = assert_page(response, 200)
    text = response.text
    assert "dana@example.com" in text and session_id in text
    assert "<time datetime=" in text  # created, last seen through ui.when
    actions = {form["action"] for form in parsed.forms}
    assert user_path(project, user_id, "/ban") in actions
    assert user_path(project, user_id, f"/sessions/{session_id}/revoke") in actions
    assert user_path(project, user_id, "/sessions/revoke") in actions


def test_ban_and_unban_call_the_service_and_are_audited(harness: Harness) -> None:
    project = customer_project(harness)
    owner = project.owner
    user_id, session_id = signed_up(harness, project, "erin@example.com")

    response = submit(owner, user_path(project, user_id), user_path(project, user_id, "/ban"))
    assert response.status_code == 303
    assert response.headers["location"] == user_path(project, user_id)
    assert backend(harness, project, "GET", f"/users/{user_id}").json()["banned"] is True
    assert backend(harness, project, "GET", f"/sessions/{session_id}").json()["status"] != "active"
    banned = audit_actions(owner, project.org_id, "end_user.banned")
    assert [(e["actor"], e["target"]) for e in banned] == [(owner.account_id, user_id)]

    assert "Banned" in text_of(owner, user_path(project, user_id))
    response = submit(owner, user_path(project, user_id), user_path(project, user_id, "/unban"))
    assert response.status_code == 303
    assert backend(harness, project, "GET", f"/users/{user_id}").json()["banned"] is False
    assert len(audit_actions(owner, project.org_id, "end_user.unbanned")) == 1


def test_revoking_one_session_and_all_sessions(harness: Harness) -> None:
    project = customer_project(harness)
    owner = project.owner
    user_id, first = signed_up(harness, project, "fay@example.com")

    action = user_path(project, user_id, f"/sessions/{first}/revoke")
    assert submit(owner, user_path(project, user_id), action).status_code == 303
    assert backend(harness, project, "GET", f"/sessions/{first}").json()["status"] == "revoked"
    revoked = audit_actions(owner, project.org_id, "end_user.session_revoked")
    assert [(e["actor"], e["target"]) for e in revoked] == [(owner.account_id, first)]
    assert action not in {f["action"] for f in assert_page(owner.get(user_path(project, user_id)), 200).forms}

    listed = backend(harness, project, "GET", f"/users/{user_id}/sessions").json()["items"]
    assert [s["status"] for s in listed] == ["revoked"]  # revoke-all has nothing live left to end
    response = owner.post(
        user_path(project, user_id, "/sessions/revoke"),
        data={"csrf_token": owner.csrf_token},
        csrf=False,
        follow_redirects=False,
    )
    assert response.status_code == 303
    everything = audit_actions(owner, project.org_id, "end_user.sessions_revoked")
    assert [e["metadata"] for e in everything] == [{"count": 0}]


def test_a_user_of_another_project_is_not_found(harness: Harness) -> None:
    project = customer_project(harness)
    owner = project.owner
    user_id, session_id = signed_up(harness, project, "gil@example.com")
    other = harness.project(owner, project.org_id, "Other")["id"]  # same org, same owner
    foreign = f"/console/projects/{other}/users/{user_id}?environment=test"
    assert_page(owner.get(foreign), 404)
    response = owner.post(
        f"/console/projects/{other}/users/{user_id}/ban?environment=test",
        data={"csrf_token": owner.csrf_token},
        csrf=False,
    )
    assert_page(response, 404)
    assert backend(harness, project, "GET", f"/users/{user_id}").json()["banned"] is False
    assert_page(owner.get(user_path(project, user_id).replace("=test", "=live")), 404)  # other environment

    # Another user's session, named under this user's path, is not found either.
    someone = make_user(harness, project, "hal@example.com")
    response = owner.post(
        user_path(project, someone, f"/sessions/{session_id}/revoke"),
        data={"csrf_token": owner.csrf_token},
        csrf=False,
    )
    assert_page(response, 404)
    assert backend(harness, project, "GET", f"/sessions/{session_id}").json()["status"] == "active"


def test_viewers_read_and_developers_act(harness: Harness) -> None:
    project = customer_project(harness)
    user_id, _ = signed_up(harness, project, "ivy@example.com")
    viewer = harness.member(project.owner, project.org_id, "viewer")
    developer = harness.member(project.owner, project.org_id, "developer")

    seen = assert_page(viewer.get(user_path(project, user_id)), 200)
    assert [form["action"] for form in seen.forms] == ["/console/sign-out"]  # no ban, no revoke
    refused = viewer.post(
        user_path(project, user_id, "/ban"), data={"csrf_token": viewer.csrf_token}, csrf=False
    )
    assert_page(refused, 403)
    assert backend(harness, project, "GET", f"/users/{user_id}").json()["banned"] is False

    response = submit(developer, user_path(project, user_id), user_path(project, user_id, "/ban"))
    assert response.status_code == 303
    banned = audit_actions(project.owner, project.org_id, "end_user.banned")
    assert [e["actor"] for e in banned] == [developer.account_id]


def test_a_form_without_its_token_changes_nothing(harness: Harness) -> None:
    project = customer_project(harness)
    user_id, _ = signed_up(harness, project, "jo@example.com")
    response = project.owner.post(user_path(project, user_id, "/ban"), data={}, csrf=False)
    assert_page(response, 403)
    assert backend(harness, project, "GET", f"/users/{user_id}").json()["banned"] is False
