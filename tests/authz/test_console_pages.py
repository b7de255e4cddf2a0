"""The role x route matrix of the console's HTML pages (G25): every page under /console/ outside the
JSON API has a row in PAGES, its handler's rule agrees, it sits behind page_guard, and each kind of
caller gets the answer its role allows (as an HTML page, never JSON)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar

from silver_auth.admin.guards import PLATFORM_ADMIN_ACCESS
from silver_auth.app import create_app
from silver_auth.console.pages import page_guard
from silver_auth.orgs.guards import org_role_guard
from silver_auth.settings import Settings
from silver_auth.webhooks.delivery import DeliveryWorker
from tests.admin.support import platform_admin
from tests.authz.test_matrix import RANK, ROLES, _template, set_plan
from tests.endusers.support import REDIRECT, CustomerProject, sign_up
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
    ("GET", "/console/account"): "account",
    ("POST", "/console/account/password"): "account",
    ("GET", "/console/account/mfa"): "account",
    ("POST", "/console/account/mfa/totp"): "account",
    ("POST", "/console/account/mfa/totp/confirm"): "account",
    ("POST", "/console/account/mfa/recovery-codes"): "account",
    ("POST", "/console/account/mfa/disable"): "account",
    ("GET", "/console/account/sessions"): "account",
    ("POST", "/console/account/sessions/revoke-others"): "account",
    ("POST", "/console/account/sessions/{session_id}/revoke"): "account",
    # members, roles and invitations
    ("GET", "/console/orgs/{org_id}/members"): "viewer",
    ("POST", "/console/orgs/{org_id}/members/{account_id}/role"): "admin",
    ("POST", "/console/orgs/{org_id}/members/{account_id}/remove"): "admin",
    ("POST", "/console/orgs/{org_id}/leave"): "viewer",
    ("POST", "/console/orgs/{org_id}/invitations"): "admin",
    ("POST", "/console/invitations/{invitation_id}/revoke"): "admin",
    ("GET", "/console/invitations/{token}"): "public",
    ("POST", "/console/invitations/{token}"): "account",
    # projects, their settings, API keys and signing keys
    ("GET", "/console/orgs/{org_id}/projects"): "viewer",
    ("GET", "/console/projects/{project_id}"): "viewer",
    ("POST", "/console/projects/{project_id}/name"): "admin",
    ("POST", "/console/projects/{project_id}/origins"): "admin",
    ("POST", "/console/projects/{project_id}/origins/remove"): "admin",
    ("POST", "/console/projects/{project_id}/redirect-urls"): "admin",
    ("POST", "/console/projects/{project_id}/redirect-urls/remove"): "admin",
    ("POST", "/console/projects/{project_id}/delete"): "admin",  # the matrix types no name: kept
    ("GET", "/console/projects/{project_id}/keys"): "viewer",
    ("POST", "/console/projects/{project_id}/keys"): "developer",
    ("POST", "/console/keys/{key_id}/rotate"): "developer",
    ("POST", "/console/keys/{key_id}/revoke"): "developer",
    ("GET", "/console/projects/{project_id}/signing-keys"): "viewer",
    ("POST", "/console/projects/{project_id}/signing-keys/rotate"): "admin",
    # webhooks
    ("GET", "/console/projects/{project_id}/webhooks"): "viewer",
    ("POST", "/console/projects/{project_id}/webhooks"): "developer",
    ("GET", "/console/webhooks/{endpoint_id}"): "viewer",
    ("POST", "/console/webhooks/{endpoint_id}"): "developer",
    ("GET", "/console/webhooks/{endpoint_id}/messages/{message_id}"): "viewer",
    ("POST", "/console/webhooks/{endpoint_id}/messages/{message_id}/replay"): "developer",
    ("POST", "/console/webhooks/{endpoint_id}/replay"): "developer",
    ("POST", "/console/webhooks/{endpoint_id}/test"): "developer",
    ("POST", "/console/webhooks/{endpoint_id}/rotate-secret"): "developer",
    ("POST", "/console/webhooks/{endpoint_id}/delete"): "developer",  # last: the endpoint is gone after
    # end-users
    ("GET", "/console/projects/{project_id}/users"): "viewer",
    ("GET", "/console/projects/{project_id}/users/{user_id}"): "viewer",
    ("POST", "/console/projects/{project_id}/users/{user_id}/ban"): "developer",
    ("POST", "/console/projects/{project_id}/users/{user_id}/unban"): "developer",
    ("POST", "/console/projects/{project_id}/users/{user_id}/sessions/revoke"): "developer",
    (
        "POST",
        "/console/projects/{project_id}/users/{user_id}/sessions/{end_user_session_id}/revoke",
    ): "developer",
    # audit log
    ("GET", "/console/orgs/{org_id}/audit"): "admin",
    ("GET", "/console/orgs/{org_id}/audit/export"): "admin",
    # try sign-in and branding
    ("GET", "/console/projects/{project_id}/try"): "viewer",
    ("POST", "/console/projects/{project_id}/try"): "viewer",
    ("GET", "/console/projects/{project_id}/try/callback"): "viewer",
    ("GET", "/console/projects/{project_id}/branding"): "viewer",
    ("POST", "/console/projects/{project_id}/branding"): "admin",
    ("POST", "/console/projects/{project_id}/branding/logo/remove"): "admin",
    # platform admin
    ("GET", "/console/admin"): "platform-admin",
    ("GET", "/console/admin/orgs/{org_id}"): "platform-admin",
    ("POST", "/console/admin/orgs/{org_id}/plan"): "platform-admin",
    ("GET", "/console/admin/accounts"): "platform-admin",
    ("GET", "/console/admin/accounts/{account_id}"): "platform-admin",
    ("POST", "/console/admin/accounts/{account_id}/sessions/revoke"): "platform-admin",
    ("GET", "/console/admin/directory"): "platform-admin",
    ("POST", "/console/admin/directory/users/{directory_user_id}/deactivate"): "platform-admin",
    ("POST", "/console/admin/directory/users/{directory_user_id}/reset-mfa"): "platform-admin",
}

SHOWN_ONCE: dict[tuple[str, str], int] = {
    ("POST", "/console/projects/{project_id}/webhooks"): 201,
    ("POST", "/console/webhooks/{endpoint_id}/rotate-secret"): 200,
}
"""Forms whose answer is a page showing a new secret (never a redirect carrying it), with its status."""


DOWNLOADS = {("GET", "/console/orgs/{org_id}/audit/export")}
"""Pages that answer an allowed caller with a file to save (`Content-Disposition: attachment`), not HTML;
a refusal is an HTML page like any other."""


def path_ids(harness: Harness, owner: ConsoleUser, org_id: str) -> dict[str, str]:
    """A value for each path parameter of the pages, made by the owner: every role's request reaches
    real rows."""
    set_plan(harness, org_id, "scale")  # room for the members and invitations below
    project = owner.post(f"/console/api/orgs/{org_id}/projects", json={"name": "Matrix"}).json()
    endpoint = owner.ok(
        "POST",
        f"/console/api/projects/{project['id']}/webhooks",
        201,
        json={"url": "http://127.0.0.1:9/hooks", "environment": "test"},
    )
    message = owner.ok("POST", f"/console/api/webhooks/{endpoint['id']}/test", 202)
    runtime = harness.runtime
    # Sequenced here rather than waited for: the message's delivery row exists before any page asks.
    harness.run(DeliveryWorker(runtime.sessionmaker, runtime.sealer, runtime.settings).sequence)
    invitations = f"/console/api/orgs/{org_id}/invitations"
    pending = owner.ok("POST", invitations, 201, json={"role": "developer"})
    link = owner.ok("POST", invitations, 201, json={"role": "viewer"})
    session_id = owner.get("/console/api/sessions").json()["items"][0]["id"]
    bystander = harness.create_account()  # the admin pages' account and directory user, not a caller
    key = owner.post(
        f"/console/api/projects/{project['id']}/keys", json={"kind": "secret", "environment": "test"}
    ).json()
    user_id, end_user_session_id = signed_up_end_user(harness, owner, org_id, project["id"])
    return {
        "org_id": org_id,
        "project_id": project["id"],
        "name": "console.css",
        "endpoint_id": endpoint["id"],
        "message_id": message["id"],
        "account_id": harness.member(owner, org_id, "developer").account_id,  # one nobody signs in as
        "invitation_id": pending["id"],
        "token": link["token"],
        "directory_user_id": bystander,
        "session_id": session_id,
        "key_id": key["id"],
        "user_id": user_id,
        "end_user_session_id": end_user_session_id,
    }


RUN_LAST = {("POST", "/console/orgs/{org_id}/leave")}
"""Rows after which the caller is no longer in the org: walked after every other row."""


def walk_order(pages: dict[tuple[str, str], str]) -> list[tuple[tuple[str, str], str]]:
    return sorted(pages.items(), key=lambda row: row[0] in RUN_LAST)


def signed_up_end_user(harness: Harness, owner: ConsoleUser, org_id: str, project_id: str) -> tuple[str, str]:
    """An end-user of the live environment (the pages' default) who signed up on the hosted page, and
    the session that sign-up started."""
    owner.ok("PATCH", f"/console/api/projects/{project_id}", json={"redirect_urls": [REDIRECT]})
    publishable = harness.key(owner, project_id, "publishable", "live")["key"]
    project = CustomerProject(owner, org_id, project_id, "live", publishable, secret="")
    sign_up(harness, project, "matrix-end-user@example.com")
    user = owner.ok("GET", f"/console/api/projects/{project_id}/users", params={"environment": "live"})[
        "items"
    ][0]
    secret = harness.key(owner, project_id, "secret", "live")["key"]
    listed = harness.backend(f"/v1/backend/users/{user['id']}/sessions", secret).json()["items"]
    return user["id"], listed[0]["id"]


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
    for (method, template), access in walk_order(PAGES):
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
                expected = 200 if method == "GET" else SHOWN_ONCE.get((method, template), 303)
            else:
                expected = 403
        allowed = expected in (303, *SHOWN_ONCE.values()) and method == "POST"
        if allowed and response.status_code in (400, 409, 422):
            expected = response.status_code  # allowed, but the matrix's form is not this page's form
        assert response.status_code == expected, (caller, method, template, response.text[:300])
        if expected == 200 and (method, template) in DOWNLOADS:
            assert response.headers["content-disposition"].startswith("attachment"), (caller, template)
        elif expected != 303:
            assert response.headers["content-type"].startswith("text/html"), (caller, template)


PLATFORM_ADMIN_CALLERS = ["platform admin", "platform admin without MFA", "owner", "outsider", "anonymous"]


@pytest.mark.parametrize("caller", PLATFORM_ADMIN_CALLERS)
def test_console_platform_admin_pages_matrix(harness: Harness, caller: str) -> None:
    """The admin pages follow the admin API's rule, not the org roles: a platform admin who is no
    member of the org opens its pages, its own owner does not, and neither does an admin whose session
    skipped MFA (G6, G7)."""
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    ids = path_ids(harness, owner, org_id)
    users: dict[str, ConsoleUser] = {
        "platform admin": platform_admin(harness),
        "platform admin without MFA": platform_admin(harness, mfa=False),
        "owner": owner,
        "outsider": harness.user(),
    }
    for (method, template), access in PAGES.items():
        if access != PLATFORM_ADMIN_ACCESS:
            continue
        path = template.format(**ids)
        if caller == "anonymous":
            harness.client.cookies.clear()
            response = harness.client.request(method, path, data={"plan": "pro"}, follow_redirects=False)
            expected = 303 if method == "GET" else 401
        else:
            user = users[caller]
            response = user.request(
                method, path, data={"plan": "pro", "csrf_token": user.csrf_token}, follow_redirects=False
            )
            expected = (200 if method == "GET" else 303) if caller == "platform admin" else 403
        assert response.status_code == expected, (caller, method, template, response.text[:300])
        if expected != 303:
            assert response.headers["content-type"].startswith("text/html"), (caller, template)
