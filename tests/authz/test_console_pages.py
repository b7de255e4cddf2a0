"""The role x route matrix of the console's HTML pages (G25): every page under /console/ outside the
JSON API has a row in PAGES, its handler's rule agrees, it sits behind page_guard, and each kind of
caller gets the answer its role allows (as an HTML page, never JSON)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar

from silver_auth.app import create_app
from silver_auth.console.pages import page_guard
from silver_auth.orgs.guards import org_role_guard
from silver_auth.settings import Settings
from tests.authz.test_matrix import RANK, ROLES, _template, set_plan
from tests.factories import ConsoleUser, Harness

PAGES: dict[tuple[str, str], str] = {
    ("GET", "/console"): "public",
    ("GET", "/console/setup"): "public",
    ("POST", "/console/setup"): "public",
    ("GET", "/console/sign-up"): "public",
    ("POST", "/console/sign-up"): "public",
    ("GET", "/console/sign-in"): "public",
    ("POST", "/console/sign-in"): "public",
    ("GET", "/console/sign-in/code"): "public",
    ("POST", "/console/sign-in/code"): "public",
    ("GET", "/console/assets/{name}"): "public",
    ("POST", "/console/sign-out"): "account",
    ("GET", "/console/orgs"): "account",
    ("POST", "/console/orgs"): "account",
    ("GET", "/console/orgs/{org_id}"): "viewer",
    ("POST", "/console/orgs/{org_id}/projects"): "admin",
    # account pages
    # members, roles and invitations
    # projects, their settings, API keys and signing keys
    # webhooks
    # end-users
    # audit log
    # try sign-in and branding
    ("GET", "/console/projects/{project_id}/branding"): "viewer",
    ("POST", "/console/projects/{project_id}/branding"): "admin",
    ("POST", "/console/projects/{project_id}/branding/logo/remove"): "admin",
    # platform admin
}


def path_ids(harness: Harness, owner: ConsoleUser, org_id: str) -> dict[str, str]:
    """A value for each path parameter of the pages, made by the owner: every role's request reaches
    real rows."""
    project = owner.post(f"/console/api/orgs/{org_id}/projects", json={"name": "Matrix"}).json()
    return {"org_id": org_id, "project_id": project["id"], "name": "console.css"}


def page_routes(app: Litestar) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for route in app.routes:
        path = route.path
        if not (path == "/console" or path.startswith("/console/")) or path.startswith("/console/api"):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                if method not in ("OPTIONS", "HEAD"):
                    found[(method, _template(path).rstrip("/") or "/")] = handler
    return found


def test_every_console_page_has_a_rule(settings: Settings) -> None:
    routes = page_routes(create_app(settings))
    assert sorted(set(routes) - set(PAGES)) == [], "console pages without a row in PAGES"
    assert sorted(set(PAGES) - set(routes)) == [], "rows in PAGES without a page"
    for key, handler in routes.items():
        assert handler.opt.get("access") == PAGES[key], key
        guards = handler.resolve_guards()
        assert page_guard in guards and org_role_guard in guards, f"{key} is not behind the page guards"


@pytest.mark.parametrize("caller", [*ROLES, "outsider", "anonymous"])
def test_console_page_role_matrix(harness: Harness, caller: str) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    set_plan(harness, org_id, "scale")  # room for a member of each role
    users: dict[str, ConsoleUser] = {"owner": owner, "outsider": harness.user()}
    for role in ("admin", "developer", "viewer"):
        users[role] = harness.member(owner, org_id, role)
    ids = path_ids(harness, owner, org_id)
    for (method, template), access in PAGES.items():
        if access not in RANK:
            continue
        path = template.format(**ids)
        if caller == "anonymous":
            harness.client.cookies.clear()
            response = harness.client.request(method, path, data={"name": "x"}, follow_redirects=False)
            expected = 303 if method == "GET" else 401  # a GET is sent to sign in
        else:
            user = users[caller]
            response = user.request(
                method, path, data={"name": "Matrix", "csrf_token": user.csrf_token}, follow_redirects=False
            )
            if caller == "outsider":
                expected = 404
            elif RANK[caller] >= RANK[access]:
                expected = 200 if method == "GET" else 303
            else:
                expected = 403
        if expected == 303 and response.status_code in (400, 409, 422):
            expected = response.status_code  # allowed, but the matrix's form is not this page's form
        assert response.status_code == expected, (caller, method, template, response.text[:300])
        if expected != 303:
            assert response.headers["content-type"].startswith("text/html"), (caller, template)
