"""Console read view, G14 for the hosted pages' cookie, password changes ending sessions, sign-up
conflicts, OpenAPI coverage."""

from __future__ import annotations

from pathlib import Path

from litestar.testing import TestClient

from silver_auth.app import create_app
from silver_auth.settings import Settings
from tests.conftest import base_settings
from tests.dbstate import row_count
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


def test_console_members_see_end_users_per_environment(harness: Harness) -> None:
    project = customer_project(harness, "test")
    sign_up(harness, project, "seen@example.com")
    viewer = harness.member(project.owner, project.org_id, "viewer")
    base = f"/console/api/projects/{project.project_id}/users"
    test_users = viewer.ok("GET", f"{base}?environment=test")
    assert [u["email"] for u in test_users["items"]] == ["seen@example.com"]
    assert viewer.ok("GET", f"{base}?environment=live")["items"] == []
    assert viewer.get(f"{base}?environment=prod").status_code == 422
    outsider = harness.user()
    assert outsider.get(f"{base}?environment=test").status_code == 404


def test_g14_rotating_session_secret_signs_end_users_out(
    harness: Harness, settings: Settings, tmp_path: Path
) -> None:
    project = customer_project(harness)
    browser, _code = sign_up(harness, project, "g14@example.com")
    assert browser.get(project.pages("account/two-step/")).status_code == 200
    rotated = base_settings(
        tmp_path / "rotated",
        DATABASE_URL=settings.sqlalchemy_url,
        SILVER_KEY_PEPPER=settings.secret("key_pepper").decode(),
        SILVER_SEALING_KEYS=settings.sealing_keys.get_secret_value(),  # type: ignore[union-attr]
    )
    with TestClient(create_app(rotated), raise_server_exceptions=False) as client:
        after = Browser(Harness(client, rotated), cookies=dict(browser.cookies))
        response = after.get(project.pages("account/two-step/"))
        assert response.status_code == 401 and "Sign in first" in response.text


def test_a_new_password_ends_every_session(harness: Harness) -> None:
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "reset@example.com")
    body = exchange(harness, project, code).json()
    changed = backend(
        harness, project, "PATCH", f"/users/{body['user_id']}", json={"password": "a brand new passphrase"}
    )
    assert changed.status_code == 200, changed.text
    verdict = backend(harness, project, "POST", "/sessions/verify", json={"token": body["jwt"]}).json()
    assert verdict["reason"] == "revoked"


def test_sign_up_with_a_taken_email_or_weak_password_shows_the_error(harness: Harness) -> None:
    project = customer_project(harness)
    sign_up(harness, project, "taken@example.com")
    users = row_count(harness, "end_users")
    for email, password, message in (
        ("taken@example.com", END_USER_PASSWORD, "already exists"),
        ("new@example.com", "short", "at least 12 characters"),
        ("not-an-email", END_USER_PASSWORD, "not a valid address"),
    ):
        browser = Browser(harness)
        browser.get(project.pages("sign-up"), redirect_url=REDIRECT)
        response = browser.submit(project.pages("sign-up"), {"email": email, "password": password})
        assert response.status_code in (409, 422), response.text
        assert message in response.text and "<form" in response.text
        assert harness.settings.end_user_cookie_name not in browser.cookies
    assert row_count(harness, "end_users") == users


def test_openapi_documents_the_end_user_routes(harness: Harness) -> None:
    paths = harness.client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/backend/users",
        "/v1/backend/users/{user_id}",
        "/v1/backend/sessions/verify",
        "/v1/client/sessions/exchange",
        "/v1/client/sessions/refresh",
        "/v1/client/sessions/sign-out",
        "/v1/projects/{project_id}/jwks.json",
    ):
        assert path in paths, path
    # Hosted HTML pages (authorize and end-session too) are not API; the OpenID Provider's JSON is.
    issuer = "/p/{project_id}/{environment}"
    assert {p for p in paths if p.startswith("/p/")} == {
        f"{issuer}/.well-known/openid-configuration",
        *(f"{issuer}/oauth2/{name}" for name in ("jwks", "token", "userinfo", "introspect", "revoke")),
    }
