"""The backend API (`Authorization: Bearer sk_…`): end-users and sessions of the key's project and
environment only; other projects' and environments' ids are 404; every change audited."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from silver_auth.plans import service as plans
from tests.dbstate import snapshot
from tests.endusers.support import (
    END_USER_PASSWORD,
    REDIRECT,
    Browser,
    backend,
    customer_project,
    exchange,
    sign_up,
)
from tests.factories import Harness

PROBLEM = "application/problem+json"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _problem(response: Any, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith("/" + slug)


def _actions(harness: Harness) -> str:
    return " ".join(snapshot(harness)["audit_events"])


def test_create_read_update_list_delete(harness: Harness) -> None:
    project = customer_project(harness)
    created = _ok(backend(harness, project, "POST", "/users", json={"email": "Made@Example.com"}), 201)
    assert created["email"] == "made@example.com" and created["has_password"] is False
    assert created["environment"] == "test" and created["project_id"] == project.project_id
    _problem(backend(harness, project, "POST", "/users", json={"email": "made@example.com"}), 409, "conflict")
    _problem(
        backend(harness, project, "POST", "/users", json={"email": "p@example.com", "password": "short"}),
        422,
        "invalid-request",
    )
    for index in range(3):
        _ok(
            backend(
                harness,
                project,
                "POST",
                "/users",
                json={"email": f"page{index}@example.com", "password": END_USER_PASSWORD},
            ),
            201,
        )
    first = _ok(backend(harness, project, "GET", "/users", params={"limit": 2}))
    assert len(first["items"]) == 2 and first["next"]
    rest = _ok(backend(harness, project, "GET", "/users", params={"limit": 2, "after": first["next"]}))
    assert len(rest["items"]) == 2 and rest["next"] is None
    found = _ok(backend(harness, project, "GET", "/users", params={"email": "PAGE1"}))
    assert [u["email"] for u in found["items"]] == ["page1@example.com"]
    assert _ok(backend(harness, project, "GET", "/users", params={"email": "%"}))["items"] == []

    user_id = created["id"]
    assert _ok(backend(harness, project, "GET", f"/users/{user_id}"))["email"] == "made@example.com"
    updated = _ok(
        backend(harness, project, "PATCH", f"/users/{user_id}", json={"password": END_USER_PASSWORD})
    )
    assert updated["has_password"] is True
    _ok(backend(harness, project, "DELETE", f"/users/{user_id}"), 204)
    _problem(backend(harness, project, "GET", f"/users/{user_id}"), 404, "not-found")
    actions = _actions(harness)
    for action in ("end_user.created", "end_user.updated", "end_user.deleted"):
        assert action in actions


def test_the_key_sees_only_its_project_and_environment(harness: Harness) -> None:
    project = customer_project(harness, "test")
    other = customer_project(harness, "test", owner=project.owner)
    live_sk = harness.key(project.owner, project.project_id, "secret", "live")["key"]
    _b, code = sign_up(harness, project, "mine@example.com")
    body = _ok(exchange(harness, project, code))
    user_id, session_id = body["user_id"], body["session_id"]
    live = type(project)(
        project.owner, project.org_id, project.project_id, "live", project.publishable, live_sk
    )
    for caller in (other, live):
        for method, path in (
            ("GET", f"/users/{user_id}"),
            ("PATCH", f"/users/{user_id}"),
            ("DELETE", f"/users/{user_id}"),
            ("POST", f"/users/{user_id}/ban"),
            ("POST", f"/users/{user_id}/unban"),
            ("GET", f"/users/{user_id}/sessions"),
            ("POST", f"/users/{user_id}/sessions/revoke"),
            ("GET", f"/sessions/{session_id}"),
            ("POST", f"/sessions/{session_id}/revoke"),
        ):
            response = backend(harness, caller, method, path, json={} if method in ("PATCH",) else None)
            unknown = backend(
                harness,
                caller,
                method,
                path.replace(user_id, "usr_" + "0" * 26).replace(session_id, "sess_" + "0" * 26),
                json={} if method == "PATCH" else None,
            )
            _problem(response, 404, "not-found")
            assert response.json() == unknown.json()
        assert _ok(backend(harness, caller, "GET", "/users"))["items"] == []
        verdict = _ok(backend(harness, caller, "POST", "/sessions/verify", json={"token": body["jwt"]}))
        assert verdict["valid"] is False and verdict["reason"] in ("wrong-project", "wrong-environment")
        assert verdict["user"] is None and verdict["session"] is None


def test_ban_revokes_sessions_unban_lets_the_user_back(harness: Harness) -> None:
    project = customer_project(harness)
    _b, code = sign_up(harness, project, "ban@example.com")
    body = _ok(exchange(harness, project, code))
    user_id = body["user_id"]
    sessions = _ok(backend(harness, project, "GET", f"/users/{user_id}/sessions"))["items"]
    assert [s["status"] for s in sessions] == ["active"]
    _ok(backend(harness, project, "POST", f"/users/{user_id}/ban"))
    sessions = _ok(backend(harness, project, "GET", f"/users/{user_id}/sessions"))["items"]
    assert [s["status"] for s in sessions] == ["revoked"]
    unbanned = _ok(backend(harness, project, "POST", f"/users/{user_id}/unban"))
    assert unbanned["banned"] is False
    browser = Browser(harness)
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT)
    response = browser.submit(
        project.pages("sign-in"), {"email": "ban@example.com", "password": END_USER_PASSWORD}
    )
    assert response.status_code == 303
    # The old session stays revoked after the unban.
    verdict = _ok(backend(harness, project, "POST", "/sessions/verify", json={"token": body["jwt"]}))
    assert verdict["reason"] == "revoked"
    actions = _actions(harness)
    assert "end_user.banned" in actions and "end_user.unbanned" in actions


def test_revoke_all_sessions_of_a_user(harness: Harness) -> None:
    project = customer_project(harness)
    _b, code = sign_up(harness, project, "all@example.com")
    first = _ok(exchange(harness, project, code))
    browser = Browser(harness)
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT)
    browser.submit(project.pages("sign-in"), {"email": "all@example.com", "password": END_USER_PASSWORD})
    answer = _ok(backend(harness, project, "POST", f"/users/{first['user_id']}/sessions/revoke"))
    assert answer == {"revoked": 2}
    assert "end_user.sessions_revoked" in _actions(harness)
    session = _ok(backend(harness, project, "GET", f"/sessions/{first['session_id']}"))
    assert session["status"] == "revoked" and session["revoked_at"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/users/usr_x"),
        ("PATCH", "/users/usr_x"),
        ("DELETE", "/users/usr_x"),
        ("POST", "/users/usr_x/ban"),
        ("POST", "/users/usr_x/unban"),
        ("GET", "/users/usr_x/sessions"),
        ("POST", "/users/usr_x/sessions/revoke"),
        ("POST", "/sessions/verify"),
        ("GET", "/sessions/sess_x"),
        ("POST", "/sessions/sess_x/revoke"),
    ],
)
def test_l1_every_backend_route_needs_a_secret_key(harness: Harness, method: str, path: str) -> None:
    project = customer_project(harness)
    for headers in (
        {},
        {"authorization": "Bearer sk_test_nope"},
        {"authorization": f"Bearer {project.publishable}"},
    ):
        harness.client.cookies.clear()
        response = harness.client.request(method, f"/v1/backend{path}", headers=headers, content=b"{not json")
        _problem(response, 401, "unauthorized")


def test_sign_up_respects_the_plan_end_user_quota(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(plans.PLANS, "free", replace(plans.PLANS["free"], end_users=1))
    project = customer_project(harness)
    sign_up(harness, project, "first@example.com")
    before = snapshot(harness)
    browser = Browser(harness)
    browser.get(project.pages("sign-up"), redirect_url=REDIRECT)
    response = browser.submit(
        project.pages("sign-up"), {"email": "second@example.com", "password": END_USER_PASSWORD}
    )
    assert response.status_code == 403 and "the Free plan allows 1 end-user per project" in response.text
    _problem(
        backend(harness, project, "POST", "/users", json={"email": "third@example.com"}),
        403,
        "quota-exceeded",
    )
    after = snapshot(harness)
    assert after["end_users"] == before["end_users"] and after["audit_events"] == before["audit_events"]


def test_malformed_backend_requests_are_4xx(harness: Harness) -> None:
    project = customer_project(harness)
    for method, path, kwargs in (
        ("POST", "/users", {"content": b"{nope"}),
        ("POST", "/users", {"json": {"email": "x@example.com", "admin": True}}),
        ("POST", "/users", {"json": {"email": "not-an-email"}}),
        ("GET", "/users", {"params": {"limit": "1000"}}),
        ("POST", "/sessions/verify", {"json": {"token": ""}}),
        ("POST", "/sessions/verify", {"json": {"token": 5}}),
        ("GET", "/users/usr_%00", {}),
        ("GET", "/sessions/sess_%01", {}),
    ):
        response = backend(harness, project, method, path, **kwargs)
        assert 400 <= response.status_code < 500, (path, kwargs, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)
