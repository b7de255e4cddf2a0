"""The platform-admin route matrix (G6, G7, G26; L5, L6).

EXPECTED lists every /admin/api route: a route added without a row, or not behind the platform-admin
guard, fails test_every_admin_route_has_a_row. The matrix then calls every route as every kind of
caller: only a member of SEQN-A whose session passed MFA gets through; anonymous and backend-key callers
get 401, accounts outside SEQN-A 403 forbidden (MFA or not), SEQN-A members without MFA 403
mfa-required. A refused call writes nothing at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar, Router, get, post
from litestar.testing import TestClient

from silver_auth.accounts.guards import console_guard
from silver_auth.admin.guards import PLATFORM_ADMIN_ACCESS, platform_admin_guard
from silver_auth.app import create_app
from silver_auth.settings import Settings
from silver_auth.web.http import EXCEPTION_HANDLERS
from tests.accounts.support import enable_mfa, mfa_sign_in
from tests.admin.support import ADMIN, make_mfa_session, platform_admin, problem
from tests.dbstate import chain_head_seq, snapshot
from tests.factories import ConsoleUser, Harness

PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")

# Every /admin/api route (method, path template); all of them need SEQN-A with an MFA session.
EXPECTED: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/admin/api/orgs"),
        ("GET", "/admin/api/orgs/{org_id}"),
        ("PUT", "/admin/api/orgs/{org_id}/plan"),
        ("GET", "/admin/api/accounts"),
        ("GET", "/admin/api/accounts/{account_id}"),
        ("POST", "/admin/api/accounts/{account_id}/sessions/revoke"),
        ("GET", "/admin/api/identity/users"),
        ("GET", "/admin/api/identity/groups"),
        ("POST", "/admin/api/identity/users/{user_id}/deactivate"),
        ("POST", "/admin/api/identity/users/{user_id}/reset-mfa"),
        ("GET", "/admin/api/alerts"),
    }
)
IDENTITY_PROXY = {key for key in EXPECTED if key[1].startswith("/admin/api/identity/")}


def admin_routes(app: Litestar) -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for route in app.routes:
        if not route.path.startswith("/admin"):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                if method not in ("OPTIONS", "HEAD"):
                    found[(method, PARAM.sub(r"{\1}", route.path))] = handler
    return found


def test_every_admin_route_has_a_row(settings: Settings) -> None:
    routes = admin_routes(create_app(settings))
    assert set(routes) == EXPECTED, f"missing: {set(routes) - EXPECTED}; stale: {EXPECTED - set(routes)}"
    for key, handler in routes.items():
        assert handler.opt.get("access") == PLATFORM_ADMIN_ACCESS, key
        guards = handler.resolve_guards()
        assert platform_admin_guard in guards, f"{key} is not behind platform_admin_guard"
        assert console_guard not in guards, key
        assert handler.summary, f"{key} has no OpenAPI summary"


def test_admin_routes_are_documented_in_openapi(harness: Harness) -> None:
    paths = harness.client.get("/openapi.json").json()["paths"]
    for method, template in EXPECTED:
        assert paths[template][method.lower()]["summary"], (method, template)


def test_g7_an_admin_route_without_the_platform_admin_rule_is_refused(harness: Harness) -> None:
    """Fail closed: no rule, or a console rule such as "public", never reaches the handler."""
    ran: list[str] = []

    @get("/forgot", sync_to_thread=False)
    def forgot() -> dict[str, str]:
        ran.append("forgot")
        return {"secret": "data"}

    @get("/public", opt={"access": "public"}, sync_to_thread=False)
    def public() -> dict[str, str]:
        ran.append("public")
        return {"secret": "data"}

    @post("/account", opt={"access": "account"}, sync_to_thread=False)
    def account() -> dict[str, str]:
        ran.append("account")
        return {"secret": "data"}

    app = Litestar(
        route_handlers=[
            Router(path=ADMIN, route_handlers=[forgot, public, account], guards=[platform_admin_guard])
        ],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
    with TestClient(app) as client:
        for method, path in (("GET", "/forgot"), ("GET", "/public"), ("POST", "/account")):
            problem(client.request(method, ADMIN + path), 403, "forbidden")
    assert ran == []


# ---------------------------------------------------------------------------------------------


@dataclass
class Call:
    path: str
    json: Any = None
    status: int = 200


class World:
    """An org with a project and a secret key, its owner, and accounts to act on."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.owner = harness.user()
        self.org_id: str = harness.org(self.owner, "World")["id"]
        self.project_id: str = harness.project(self.owner, self.org_id)["id"]
        self.secret_key: str = harness.key(self.owner, self.project_id)["key"]

    def fresh_org(self) -> str:
        return str(self.harness.org(self.owner, "Scratch")["id"])

    def victim(self) -> str:
        """A signed-in account (a live session to revoke, an account to deactivate)."""
        return self.harness.user().account_id


PREPARE: dict[tuple[str, str], Callable[[World], Call]] = {
    ("GET", "/admin/api/orgs"): lambda w: Call(f"{ADMIN}/orgs?q=world"),
    ("GET", "/admin/api/orgs/{org_id}"): lambda w: Call(f"{ADMIN}/orgs/{w.org_id}"),
    ("PUT", "/admin/api/orgs/{org_id}/plan"): lambda w: Call(
        f"{ADMIN}/orgs/{w.fresh_org()}/plan", {"plan": "pro"}
    ),
    ("GET", "/admin/api/accounts"): lambda w: Call(f"{ADMIN}/accounts?q=example"),
    ("GET", "/admin/api/accounts/{account_id}"): lambda w: Call(f"{ADMIN}/accounts/{w.owner.account_id}"),
    ("POST", "/admin/api/accounts/{account_id}/sessions/revoke"): lambda w: Call(
        f"{ADMIN}/accounts/{w.victim()}/sessions/revoke"
    ),
    ("GET", "/admin/api/identity/users"): lambda w: Call(f"{ADMIN}/identity/users"),
    ("GET", "/admin/api/identity/groups"): lambda w: Call(f"{ADMIN}/identity/groups"),
    ("POST", "/admin/api/identity/users/{user_id}/deactivate"): lambda w: Call(
        f"{ADMIN}/identity/users/{w.victim()}/deactivate"
    ),
    ("POST", "/admin/api/identity/users/{user_id}/reset-mfa"): lambda w: Call(
        f"{ADMIN}/identity/users/{w.victim()}/reset-mfa"
    ),
    ("GET", "/admin/api/alerts"): lambda w: Call(f"{ADMIN}/alerts?state=standing"),
}

CALLERS = (
    "anonymous",
    "backend-key",
    "plain-account",
    "mfa-not-seqn-a",
    "seqn-a-without-mfa",
    "seqn-a-with-mfa",
)


def test_every_route_has_a_prepared_call() -> None:
    assert set(PREPARE) == EXPECTED


def caller_for(harness: Harness, caller: str) -> ConsoleUser | None:
    if caller == "plain-account":
        return harness.user()
    if caller == "mfa-not-seqn-a":
        return make_mfa_session(harness, harness.user())
    if caller == "seqn-a-without-mfa":
        return platform_admin(harness, mfa=False)
    if caller == "seqn-a-with-mfa":
        return platform_admin(harness)
    return None


def send(
    harness: Harness, caller: str, user: ConsoleUser | None, method: str, call: Call, key: str
) -> httpx.Response:
    if user is not None:
        return user.request(method, call.path, json=call.json)
    harness.client.cookies.clear()
    headers = {"authorization": f"Bearer {key}"} if caller == "backend-key" else {}
    return harness.client.request(method, call.path, json=call.json, headers=headers)


@pytest.mark.parametrize("caller", CALLERS)
def test_g6_g7_admin_route_matrix(harness: Harness, caller: str) -> None:
    """Every /admin/api route, called for real by `caller`: only SEQN-A with an MFA session passes."""
    world = World(harness)
    user = caller_for(harness, caller)
    for method, template in sorted(EXPECTED):
        where = f"{caller}: {method} {template}"
        call = PREPARE[(method, template)](world)
        before, seq_before = snapshot(harness), chain_head_seq(harness)
        response = send(harness, caller, user, method, call, world.secret_key)
        if caller == "seqn-a-with-mfa":
            assert response.status_code == call.status, f"{where}: {response.status_code} {response.text}"
            if method != "GET":  # every admin mutation is on the record (G27)
                assert chain_head_seq(harness) > seq_before, f"{where}: not audited"
            continue
        if user is None:
            problem(response, 401, "unauthorized")
        elif caller == "seqn-a-without-mfa":
            body = problem(response, 403, "mfa-required")
            assert "TOTP" in body["detail"] and "sign in again" in body["detail"], body
        else:
            problem(response, 403, "forbidden")
        assert "items" not in response.text, where
        assert snapshot(harness) == before, f"{where}: a refused call wrote something"


def test_acceptance_account_without_mfa_cannot_reach_admin_api(harness: Harness) -> None:
    """G6, L5: SEQN-A alone is not enough; the session must have passed MFA."""
    admin = platform_admin(harness, mfa=False)
    for method, template in EXPECTED:
        path = PARAM.sub(lambda m: admin.account_id, template)
        problem(admin.request(method, path, json={"plan": "pro"}), 403, "mfa-required")
    # Enrolling TOTP does not upgrade this session (a device bound mid-session proves nothing about
    # its sign-in); the same account, signed in again with a code, gets in.
    enrolled = enable_mfa(admin)
    problem(admin.get(f"{ADMIN}/orgs"), 403, "mfa-required")
    upgraded = mfa_sign_in(harness, admin.email, enrolled.secret)
    assert upgraded.ok("GET", f"{ADMIN}/orgs")["items"] == []


def test_acceptance_seqn_a_with_mfa_can_use_identity_proxy(harness: Harness) -> None:
    admin = platform_admin(harness)
    users = admin.ok("GET", f"{ADMIN}/identity/users")["items"]
    assert admin.account_id in [u["id"] for u in users]
    groups = admin.ok("GET", f"{ADMIN}/identity/groups")["items"]
    assert {"id": "SEQN-A", "name": "SEQN-A", "member_count": 1} in groups


def test_g26_acceptance_mfa_without_seqn_a_cannot_do_identity_proxy_operations(harness: Harness) -> None:
    """G26, L6: an MFA session does not make an account a platform admin (G26, L6)."""
    outsider = make_mfa_session(harness, harness.user())
    victim = harness.user()
    before = snapshot(harness)
    for method, template in sorted(IDENTITY_PROXY):
        path = PARAM.sub(lambda m: victim.account_id, template)
        problem(outsider.request(method, path), 403, "forbidden")
    assert snapshot(harness) == before
    victim.ok("GET", "/console/api/me")  # not deactivated, still signed in


def test_unsafe_admin_requests_need_the_csrf_token_and_our_origin(harness: Harness) -> None:
    """The console's CSRF protection covers /admin/api too: header token, and Origin when sent."""
    world = World(harness)
    admin = platform_admin(harness)
    for method, template in sorted(EXPECTED):
        if method == "GET":
            continue
        call = PREPARE[(method, template)](world)
        before = snapshot(harness)
        problem(admin.request(method, call.path, json=call.json, csrf=False), 403, "csrf-failed")
        forged = admin.request(method, call.path, json=call.json, headers={"x-csrf-token": "forged"})
        problem(forged, 403, "csrf-failed")
        foreign = admin.request(method, call.path, json=call.json, headers={"origin": "https://evil.example"})
        problem(foreign, 403, "csrf-failed")
        assert snapshot(harness) == before


def test_revoked_or_forged_cookie_is_unauthorized(harness: Harness) -> None:
    admin = platform_admin(harness)
    forged = ConsoleUser(
        admin.client, admin.cookie_name, admin.cookie + "x", admin.csrf_token, admin.account_id, admin.email
    )
    problem(forged.get(f"{ADMIN}/orgs"), 401, "unauthorized")
    admin.ok("POST", "/console/api/sign-out", 204)
    problem(admin.get(f"{ADMIN}/orgs"), 401, "unauthorized")
