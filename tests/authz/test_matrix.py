"""The role x route matrix (G25; L1 console boundary).

EXPECTED names the minimum access of every console route. A route added without a row here, or whose
handler's `opt["access"]` disagrees with it, fails test_every_console_route_has_a_rule. The matrix test
then calls every route as every kind of caller against a real fixture world and checks the answer:
allowed callers get the route's success status, lower roles 403, accounts outside the org 404 (the
same answer as for an unknown id), and anonymous or backend-key callers 401.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pyotp
import pytest
from litestar import Litestar, Router, get, post
from litestar.testing import TestClient
from sqlalchemy import select, update

from silver_auth.accounts.guards import console_guard
from silver_auth.app import create_app
from silver_auth.audit.chain import seal_pending
from silver_auth.audit.models import AuditChainHead
from silver_auth.core import clock
from silver_auth.db.session import transaction
from silver_auth.orgs.models import Org
from silver_auth.settings import Settings
from silver_auth.web.http import EXCEPTION_HANDLERS
from silver_auth.webhooks.delivery import DeliveryWorker
from tests.factories import PASSWORD, ConsoleUser, Harness

CONSOLE = "/console/api"
ROLES = ("viewer", "developer", "admin", "owner")
RANK = {role: rank for rank, role in enumerate(ROLES)}
PROBLEM = "application/problem+json"
HOOK_URL = "http://127.0.0.1:9/hooks"
"""A test-environment receiver on loopback (the discard port): allowed without any DNS lookup."""

# (method, path template) -> minimum access. Keep in step with the routes: that is the point.
EXPECTED: dict[tuple[str, str], str] = {
    # sessions
    ("POST", "/console/api/sign-in"): "public",
    ("POST", "/console/api/sign-out"): "account",
    ("GET", "/console/api/me"): "account",
    ("GET", "/console/api/sessions"): "account",
    ("DELETE", "/console/api/sessions/{session_id}"): "account",
    ("POST", "/console/api/sessions/revoke-others"): "account",
    # orgs
    ("GET", "/console/api/orgs"): "account",
    ("POST", "/console/api/orgs"): "account",
    ("GET", "/console/api/orgs/{org_id}"): "viewer",
    ("PATCH", "/console/api/orgs/{org_id}"): "admin",
    ("DELETE", "/console/api/orgs/{org_id}"): "owner",
    ("GET", "/console/api/orgs/{org_id}/usage"): "viewer",
    # members
    ("GET", "/console/api/orgs/{org_id}/members"): "viewer",
    ("PATCH", "/console/api/orgs/{org_id}/members/{account_id}"): "admin",
    ("DELETE", "/console/api/orgs/{org_id}/members/{account_id}"): "admin",
    ("POST", "/console/api/orgs/{org_id}/leave"): "viewer",
    # invitations
    ("GET", "/console/api/orgs/{org_id}/invitations"): "admin",
    ("POST", "/console/api/orgs/{org_id}/invitations"): "admin",
    ("DELETE", "/console/api/invitations/{invitation_id}"): "admin",
    ("POST", "/console/api/invitations/accept"): "account",
    # projects
    ("GET", "/console/api/orgs/{org_id}/projects"): "viewer",
    ("POST", "/console/api/orgs/{org_id}/projects"): "admin",
    ("GET", "/console/api/projects/{project_id}"): "viewer",
    ("PATCH", "/console/api/projects/{project_id}"): "admin",
    ("DELETE", "/console/api/projects/{project_id}"): "admin",
    ("POST", "/console/api/projects/{project_id}/redirect-urls"): "admin",
    ("DELETE", "/console/api/projects/{project_id}/redirect-urls"): "admin",
    ("POST", "/console/api/projects/{project_id}/origins"): "admin",
    ("DELETE", "/console/api/projects/{project_id}/origins"): "admin",
    ("GET", "/console/api/projects/{project_id}/branding"): "viewer",
    ("PATCH", "/console/api/projects/{project_id}/branding"): "admin",
    # keys
    ("GET", "/console/api/projects/{project_id}/keys"): "viewer",
    ("POST", "/console/api/projects/{project_id}/keys"): "developer",
    ("DELETE", "/console/api/keys/{key_id}"): "developer",
    ("POST", "/console/api/keys/{key_id}/rotate"): "developer",
    # audit
    ("GET", "/console/api/orgs/{org_id}/audit"): "admin",
    # Authentik backend (this matrix runs the builtin one: these answer 404 "not enabled";
    # tests/authentik/ runs them with Authentik)
    ("GET", "/console/api/oidc/start"): "public",
    ("GET", "/console/api/oidc/callback"): "public",
    ("GET", "/console/api/projects/{project_id}/identity"): "viewer",
    ("POST", "/console/api/projects/{project_id}/identity/rotate-secret"): "admin",
    # signing keys of end-user session JWTs
    ("GET", "/console/api/projects/{project_id}/signing-keys"): "viewer",
    ("POST", "/console/api/projects/{project_id}/signing-keys/rotate"): "admin",
    # end-users (read-only view)
    ("GET", "/console/api/projects/{project_id}/users"): "viewer",
    # webhook endpoints, their messages and replays (VIEWER reads, DEVELOPER changes)
    ("GET", "/console/api/projects/{project_id}/webhooks"): "viewer",
    ("POST", "/console/api/projects/{project_id}/webhooks"): "developer",
    ("GET", "/console/api/projects/{project_id}/webhooks/metrics"): "viewer",
    ("GET", "/console/api/webhooks/{endpoint_id}"): "viewer",
    ("PATCH", "/console/api/webhooks/{endpoint_id}"): "developer",
    ("DELETE", "/console/api/webhooks/{endpoint_id}"): "developer",
    ("POST", "/console/api/webhooks/{endpoint_id}/rotate-secret"): "developer",
    ("GET", "/console/api/webhooks/{endpoint_id}/secret"): "developer",
    ("POST", "/console/api/webhooks/{endpoint_id}/test"): "developer",
    ("GET", "/console/api/webhooks/{endpoint_id}/messages"): "viewer",
    ("GET", "/console/api/webhooks/{endpoint_id}/messages/{message_id}"): "viewer",
    ("POST", "/console/api/webhooks/{endpoint_id}/messages/{message_id}/replay"): "developer",
    ("POST", "/console/api/webhooks/{endpoint_id}/replay"): "developer",
    # the account's own password and MFA; MFA rows last, in this order: enable, then disable
    ("POST", "/console/api/me/password"): "account",
    ("GET", "/console/api/mfa"): "account",
    ("POST", "/console/api/mfa/totp"): "account",
    ("POST", "/console/api/mfa/totp/confirm"): "account",
    ("POST", "/console/api/mfa/recovery-codes"): "account",
    ("POST", "/console/api/mfa/disable"): "account",
}

# Console sessions are the caller's own business, not an org's: they are not in the org audit log.
UNAUDITED = frozenset(
    {
        "/console/api/sign-in",
        "/console/api/sign-out",
        "/console/api/sessions/{session_id}",
        "/console/api/sessions/revoke-others",
        "/console/api/mfa/totp",  # a pending enrolment protects nothing yet; confirming it is audited
    }
)

PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def _template(path: str) -> str:
    """`/orgs/{org_id:str}` -> `/orgs/{org_id}`."""
    return PARAM.sub(r"{\1}", path)


def console_routes(app: Litestar) -> dict[tuple[str, str], Any]:
    """Every (method, path template) under /console/api with its handler; OPTIONS and HEAD aside."""
    found: dict[tuple[str, str], Any] = {}
    for route in app.routes:
        if not route.path.startswith(CONSOLE):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                if method in ("OPTIONS", "HEAD"):
                    continue
                key = (method, _template(route.path))
                assert key not in found, f"{key} registered twice"
                found[key] = handler
    return found


def test_every_console_route_has_a_rule(settings: Settings) -> None:
    routes = console_routes(create_app(settings))
    missing = sorted(set(routes) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(routes))
    assert not missing, f"console routes without a row in EXPECTED: {missing}"
    assert not stale, f"rows in EXPECTED without a route: {stale}"
    for key, handler in routes.items():
        assert handler.opt.get("access") == EXPECTED[key], f"{key}: {handler.opt.get('access')!r}"
        # The rule only counts if the console guard reads it.
        assert console_guard in handler.resolve_guards(), f"{key} is not behind console_guard"


def test_a_route_without_an_access_rule_is_refused() -> None:
    """Fail closed: a console handler that forgot `opt={"access": …}` answers 403 and never runs."""
    ran: list[str] = []

    @get("/forgot", sync_to_thread=False)
    def forgot() -> dict[str, str]:
        ran.append("forgot")
        return {"secret": "data"}

    @post("/forgot-too", opt={"other": "thing"}, sync_to_thread=False)
    def forgot_too() -> dict[str, str]:
        ran.append("forgot-too")
        return {"secret": "data"}

    @get("/explicitly-none", opt={"access": None}, sync_to_thread=False)
    def explicitly_none() -> dict[str, str]:
        ran.append("explicitly-none")
        return {"secret": "data"}

    @get("/open", opt={"access": "public"}, sync_to_thread=False)
    def open_route() -> dict[str, str]:
        return {"hello": "world"}

    app = Litestar(
        route_handlers=[
            Router(
                path=CONSOLE,
                route_handlers=[forgot, forgot_too, explicitly_none, open_route],
                guards=[console_guard],
            )
        ],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
    with TestClient(app) as client:
        for method, path in (("GET", "/forgot"), ("POST", "/forgot-too"), ("GET", "/explicitly-none")):
            response = client.request(method, CONSOLE + path)
            assert response.status_code == 403, (path, response.text)
            assert response.headers["content-type"].startswith(PROBLEM)
            assert response.json()["type"].endswith("/forbidden")
            assert "secret" not in response.text
        # The same router lets a route with a rule through, so the refusals above are the rule's doing.
        assert client.get(CONSOLE + "/open").json() == {"hello": "world"}
    assert ran == []


# ---------------------------------------------------------------------------------------------
# The fixture world and one prepared call per route


@dataclass
class Call:
    path: str
    json: Any = None
    status: int = 200
    """The route's success status for an allowed caller."""
    as_user: ConsoleUser | None = None
    """Send the request with this session instead of the caller's main one (for sign-out)."""


def set_plan(harness: Harness, org_id: str, plan: str) -> None:
    """Plans change only through platform admins, which come later: set it in the database."""

    async def work() -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            await db.execute(update(Org).where(Org.id == org_id).values(plan=plan))

    harness.run(work)


def chain_seq(harness: Harness) -> int:
    async def work() -> int:
        await seal_pending(harness.runtime.sessionmaker)
        async with harness.runtime.engine.connect() as connection:
            return int(await connection.scalar(select(AuditChainHead.seq)) or 0)

    return harness.run(work)


@dataclass
class World:
    """An org on the Scale plan with one member of each role, an outsider, a project, keys."""

    harness: Harness
    users: dict[str, ConsoleUser] = field(default_factory=dict)

    def __post_init__(self) -> None:
        h = self.harness
        self.owner = h.user()
        self.org_id: str = h.org(self.owner, "World")["id"]
        set_plan(h, self.org_id, "scale")
        self.users = {"owner": self.owner}
        for role in ("admin", "developer", "viewer"):
            self.users[role] = h.member(self.owner, self.org_id, role)
        self.users["outsider"] = h.user()
        self.spare = h.user()  # the target of member routes, and a second owner where one is needed
        self.join(self.spare, self.org_id, "viewer")
        self.project_id: str = h.project(self.owner, self.org_id)["id"]
        self.secret_key: str = h.key(self.owner, self.project_id, "secret", "live")["key"]
        self.elsewhere_owner = h.user()
        self.elsewhere_id: str = h.org(self.elsewhere_owner, "Elsewhere")["id"]
        set_plan(h, self.elsewhere_id, "scale")
        self.endpoint_id = self.endpoint()

    def join(self, user: ConsoleUser, org_id: str, role: str, inviter: ConsoleUser | None = None) -> None:
        invite = (inviter or self.owner).ok(
            "POST", f"{CONSOLE}/orgs/{org_id}/invitations", 201, json={"role": role}
        )
        user.ok("POST", f"{CONSOLE}/invitations/accept", json={"token": invite["token"]})

    def fresh_org(self, caller_role: str) -> str:
        """A new org (for DELETE org, leave) where the caller holds `caller_role` (outsiders: none)."""
        org_id: str = self.harness.org(self.owner, "Scratch")["id"]
        if caller_role == "owner":  # the world owner created it; a second owner lets them leave
            self.spare = self.harness.sign_in(self.spare.email)  # removal ended its sessions (G29)
            self.join(self.spare, org_id, "owner")
        elif caller_role in ROLES:
            self.join(self.users[caller_role], org_id, caller_role)
        return org_id

    def spare_role(self) -> str | None:
        members = self.owner.ok("GET", f"{CONSOLE}/orgs/{self.org_id}/members")["items"]
        return next((m["role"] for m in members if m["account_id"] == self.spare.account_id), None)

    def spare_member(self) -> str:
        if self.spare_role() is None:
            self.spare = self.harness.sign_in(self.spare.email)  # removal ended its sessions (G29)
            self.join(self.spare, self.org_id, "viewer")
        return self.spare.account_id

    def new_session(self, caller: ConsoleUser | None) -> ConsoleUser:
        """Another session of the caller's account (the owner's for anonymous callers)."""
        return self.harness.sign_in((caller or self.owner).email)

    def invitation(self) -> str:
        body = self.owner.ok(
            "POST", f"{CONSOLE}/orgs/{self.org_id}/invitations", 201, json={"role": "viewer"}
        )
        return str(body["id"])

    def key(self) -> str:
        return str(self.harness.key(self.owner, self.project_id, "secret", "test")["id"])

    def endpoint(self) -> str:
        """A new webhook endpoint of the world's project (test environment: loopback, never a lookup)."""
        body = self.owner.ok(
            "POST",
            f"{CONSOLE}/projects/{self.project_id}/webhooks",
            201,
            json={"url": HOOK_URL, "environment": "test"},
        )
        return str(body["id"])

    def message(self) -> str:
        """A test message of the world's endpoint, sequenced so that it has a delivery to read and replay."""
        sent = self.owner.ok("POST", f"{CONSOLE}/webhooks/{self.endpoint_id}/test", 202)
        runtime = self.harness.runtime
        worker = DeliveryWorker(runtime.sessionmaker, runtime.sealer, runtime.settings)
        self.harness.run(worker.sequence)
        return str(sent["id"])

    def origin(self) -> str:
        """An origin just allowed by the owner (for the route that removes one)."""
        origin = f"https://{secrets.token_hex(4)}.example.com"
        self.owner.ok("POST", f"{CONSOLE}/projects/{self.project_id}/origins", json={"origin": origin})
        return origin

    def redirect_url(self) -> str:
        """A redirect URL just registered by the owner (for the route that removes one)."""
        url = f"https://app.example.com/{secrets.token_hex(4)}"
        self.owner.ok("POST", f"{CONSOLE}/projects/{self.project_id}/redirect-urls", json={"url": url})
        return url


Prepare = Callable[[World, ConsoleUser | None, str], Call]


def _session_id(user: ConsoleUser) -> str:
    return str(user.ok("GET", f"{CONSOLE}/me")["session_id"])


def _next_code(secret: str) -> str:
    """A code from the next time step (a TOTP code is accepted once: each call needs a new step)."""
    clock.advance(31)
    return pyotp.TOTP(secret).at(clock.now())


_SECRETS: dict[str, str] = {}


def _started_totp(caller: ConsoleUser) -> str:
    """Start (or restart) the caller's TOTP enrolment; remembers the secret for later codes."""
    secret = str(caller.ok("POST", f"{CONSOLE}/mfa/totp", json={"password": PASSWORD})["secret"])
    _SECRETS[caller.account_id] = secret
    return secret


def _with_mfa(caller: ConsoleUser | None) -> str:
    """The caller with TOTP enabled; returns a fresh code (a dummy for anonymous callers)."""
    if caller is None:
        return "000000"
    if not caller.ok("GET", f"{CONSOLE}/mfa")["enabled"]:
        caller.ok("POST", f"{CONSOLE}/mfa/totp/confirm", json={"code": _next_code(_started_totp(caller))})
    return _next_code(_SECRETS[caller.account_id])


def _pending_totp_code(caller: ConsoleUser | None) -> str:
    return _next_code(_started_totp(caller)) if caller else "000000"


PREPARE: dict[tuple[str, str], Prepare] = {
    ("POST", "/console/api/sign-in"): lambda w, c, r: Call(
        f"{CONSOLE}/sign-in", {"email": (c or w.users["outsider"]).email, "password": PASSWORD}
    ),
    ("POST", "/console/api/sign-out"): lambda w, c, r: Call(
        f"{CONSOLE}/sign-out", status=204, as_user=w.new_session(c) if c else None
    ),
    ("GET", "/console/api/me"): lambda w, c, r: Call(f"{CONSOLE}/me"),
    ("GET", "/console/api/sessions"): lambda w, c, r: Call(f"{CONSOLE}/sessions"),
    ("DELETE", "/console/api/sessions/{session_id}"): lambda w, c, r: Call(
        f"{CONSOLE}/sessions/{_session_id(w.new_session(c))}", status=204
    ),
    ("POST", "/console/api/sessions/revoke-others"): lambda w, c, r: Call(
        f"{CONSOLE}/sessions/revoke-others"
    ),
    ("GET", "/console/api/orgs"): lambda w, c, r: Call(f"{CONSOLE}/orgs"),
    ("POST", "/console/api/orgs"): lambda w, c, r: Call(f"{CONSOLE}/orgs", {"name": "Mine"}, 201),
    ("GET", "/console/api/orgs/{org_id}"): lambda w, c, r: Call(f"{CONSOLE}/orgs/{w.org_id}"),
    ("PATCH", "/console/api/orgs/{org_id}"): lambda w, c, r: Call(
        f"{CONSOLE}/orgs/{w.org_id}", {"name": f"World {r}"}
    ),
    ("DELETE", "/console/api/orgs/{org_id}"): lambda w, c, r: Call(
        f"{CONSOLE}/orgs/{w.fresh_org(r)}", status=204
    ),
    ("GET", "/console/api/orgs/{org_id}/usage"): lambda w, c, r: Call(f"{CONSOLE}/orgs/{w.org_id}/usage"),
    ("GET", "/console/api/orgs/{org_id}/members"): lambda w, c, r: Call(f"{CONSOLE}/orgs/{w.org_id}/members"),
    ("PATCH", "/console/api/orgs/{org_id}/members/{account_id}"): lambda w, c, r: Call(
        f"{CONSOLE}/orgs/{w.org_id}/members/{w.spare_member()}",
        {"role": "developer" if w.spare_role() == "viewer" else "viewer"},
    ),
    ("DELETE", "/console/api/orgs/{org_id}/members/{account_id}"): lambda w, c, r: Call(
        f"{CONSOLE}/orgs/{w.org_id}/members/{w.spare_member()}", status=204
    ),
    ("POST", "/console/api/orgs/{org_id}/leave"): lambda w, c, r: Call(
        f"{CONSOLE}/orgs/{w.fresh_org(r)}/leave", status=204
    ),
    ("GET", "/console/api/orgs/{org_id}/invitations"): lambda w, c, r: Call(
        f"{CONSOLE}/orgs/{w.org_id}/invitations"
    ),
    ("POST", "/console/api/orgs/{org_id}/invitations"): lambda w, c, r: Call(
        f"{CONSOLE}/orgs/{w.org_id}/invitations", {"role": "viewer"}, 201
    ),
    ("DELETE", "/console/api/invitations/{invitation_id}"): lambda w, c, r: Call(
        f"{CONSOLE}/invitations/{w.invitation()}", status=204
    ),
    ("POST", "/console/api/invitations/accept"): lambda w, c, r: Call(
        f"{CONSOLE}/invitations/accept",
        {
            "token": w.elsewhere_owner.ok(
                "POST", f"{CONSOLE}/orgs/{w.elsewhere_id}/invitations", 201, json={"role": "viewer"}
            )["token"]
        },
    ),
    ("GET", "/console/api/orgs/{org_id}/projects"): lambda w, c, r: Call(
        f"{CONSOLE}/orgs/{w.org_id}/projects"
    ),
    ("POST", "/console/api/orgs/{org_id}/projects"): lambda w, c, r: Call(
        f"{CONSOLE}/orgs/{w.org_id}/projects", {"name": "Another"}, 201
    ),
    ("GET", "/console/api/projects/{project_id}"): lambda w, c, r: Call(f"{CONSOLE}/projects/{w.project_id}"),
    ("PATCH", "/console/api/projects/{project_id}"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}", {"name": f"Web {r}"}
    ),
    ("DELETE", "/console/api/projects/{project_id}"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.harness.project(w.owner, w.org_id, 'Doomed')['id']}", status=204
    ),
    ("POST", "/console/api/projects/{project_id}/redirect-urls"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/redirect-urls",
        {"url": f"https://app.example.com/{r}-{secrets.token_hex(4)}"},
    ),
    ("DELETE", "/console/api/projects/{project_id}/redirect-urls"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/redirect-urls?url={quote(w.redirect_url(), safe='')}"
    ),
    ("POST", "/console/api/projects/{project_id}/origins"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/origins",
        {"origin": f"https://{r}-{secrets.token_hex(4)}.example.com"},
    ),
    ("DELETE", "/console/api/projects/{project_id}/origins"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/origins?origin={quote(w.origin(), safe='')}"
    ),
    ("GET", "/console/api/projects/{project_id}/branding"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/branding"
    ),
    ("PATCH", "/console/api/projects/{project_id}/branding"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/branding", {"display_name": f"Web {r}"}
    ),
    ("GET", "/console/api/projects/{project_id}/keys"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/keys"
    ),
    ("POST", "/console/api/projects/{project_id}/keys"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/keys", {"kind": "publishable", "environment": "test"}, 201
    ),
    ("DELETE", "/console/api/keys/{key_id}"): lambda w, c, r: Call(f"{CONSOLE}/keys/{w.key()}"),
    ("POST", "/console/api/keys/{key_id}/rotate"): lambda w, c, r: Call(
        f"{CONSOLE}/keys/{w.key()}/rotate", {"grace_seconds": 0}, 201
    ),
    ("GET", "/console/api/orgs/{org_id}/audit"): lambda w, c, r: Call(f"{CONSOLE}/orgs/{w.org_id}/audit"),
    ("GET", "/console/api/oidc/start"): lambda w, c, r: Call(f"{CONSOLE}/oidc/start", status=404),
    ("GET", "/console/api/oidc/callback"): lambda w, c, r: Call(
        f"{CONSOLE}/oidc/callback?code=x&state=y", status=404
    ),
    ("GET", "/console/api/projects/{project_id}/identity"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/identity", status=404
    ),
    ("POST", "/console/api/projects/{project_id}/identity/rotate-secret"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/identity/rotate-secret", status=404
    ),
    ("GET", "/console/api/projects/{project_id}/signing-keys"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/signing-keys"
    ),
    ("POST", "/console/api/projects/{project_id}/signing-keys/rotate"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/signing-keys/rotate", status=201
    ),
    ("GET", "/console/api/projects/{project_id}/users"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/users?environment=test"
    ),
    ("GET", "/console/api/projects/{project_id}/webhooks"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/webhooks"
    ),
    ("POST", "/console/api/projects/{project_id}/webhooks"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/webhooks", {"url": HOOK_URL, "environment": "test"}, 201
    ),
    ("GET", "/console/api/projects/{project_id}/webhooks/metrics"): lambda w, c, r: Call(
        f"{CONSOLE}/projects/{w.project_id}/webhooks/metrics"
    ),
    ("GET", "/console/api/webhooks/{endpoint_id}"): lambda w, c, r: Call(
        f"{CONSOLE}/webhooks/{w.endpoint_id}"
    ),
    ("PATCH", "/console/api/webhooks/{endpoint_id}"): lambda w, c, r: Call(
        f"{CONSOLE}/webhooks/{w.endpoint_id}", {"description": f"changed by {r}"}
    ),
    ("DELETE", "/console/api/webhooks/{endpoint_id}"): lambda w, c, r: Call(
        f"{CONSOLE}/webhooks/{w.endpoint()}", status=204
    ),
    ("POST", "/console/api/webhooks/{endpoint_id}/rotate-secret"): lambda w, c, r: Call(
        f"{CONSOLE}/webhooks/{w.endpoint_id}/rotate-secret", {"overlap_hours": 0}
    ),
    ("GET", "/console/api/webhooks/{endpoint_id}/secret"): lambda w, c, r: Call(
        f"{CONSOLE}/webhooks/{w.endpoint_id}/secret",
        status=409,  # never shown again (G16)
    ),
    ("POST", "/console/api/webhooks/{endpoint_id}/test"): lambda w, c, r: Call(
        f"{CONSOLE}/webhooks/{w.endpoint_id}/test", status=202
    ),
    ("GET", "/console/api/webhooks/{endpoint_id}/messages"): lambda w, c, r: Call(
        f"{CONSOLE}/webhooks/{w.endpoint_id}/messages"
    ),
    ("GET", "/console/api/webhooks/{endpoint_id}/messages/{message_id}"): lambda w, c, r: Call(
        f"{CONSOLE}/webhooks/{w.endpoint_id}/messages/{w.message()}"
    ),
    ("POST", "/console/api/webhooks/{endpoint_id}/messages/{message_id}/replay"): lambda w, c, r: Call(
        f"{CONSOLE}/webhooks/{w.endpoint_id}/messages/{w.message()}/replay", status=202
    ),
    ("POST", "/console/api/webhooks/{endpoint_id}/replay"): lambda w, c, r: Call(
        f"{CONSOLE}/webhooks/{w.endpoint_id}/replay", {"since": "2020-01-01T00:00:00Z"}, status=202
    ),
    ("POST", "/console/api/me/password"): lambda w, c, r: Call(
        f"{CONSOLE}/me/password", {"current_password": PASSWORD, "new_password": PASSWORD}
    ),
    ("GET", "/console/api/mfa"): lambda w, c, r: Call(f"{CONSOLE}/mfa"),
    ("POST", "/console/api/mfa/totp"): lambda w, c, r: Call(f"{CONSOLE}/mfa/totp", {"password": PASSWORD}),
    ("POST", "/console/api/mfa/totp/confirm"): lambda w, c, r: Call(
        f"{CONSOLE}/mfa/totp/confirm", {"code": _pending_totp_code(c)}
    ),
    ("POST", "/console/api/mfa/recovery-codes"): lambda w, c, r: Call(
        f"{CONSOLE}/mfa/recovery-codes", {"code": _with_mfa(c)}
    ),
    ("POST", "/console/api/mfa/disable"): lambda w, c, r: Call(
        f"{CONSOLE}/mfa/disable", {"password": PASSWORD, "code": _with_mfa(c)}
    ),
}


def test_every_route_has_a_prepared_call() -> None:
    assert set(PREPARE) == set(EXPECTED)


def _unknown_ids(template: str) -> str:
    """The route with every id replaced by one that exists nowhere."""
    return PARAM.sub(lambda m: f"{m.group(1).split('_')[0][:3]}_{secrets.token_hex(10)}", template)


def _send(
    harness: Harness, caller: str, user: ConsoleUser | None, method: str, call: Call, secret_key: str
) -> httpx.Response:
    if user is not None:
        return (call.as_user or user).request(method, call.path, json=call.json)
    harness.client.cookies.clear()
    headers = {"authorization": f"Bearer {secret_key}"} if caller == "backend-key" else {}
    return harness.client.request(method, call.path, json=call.json, headers=headers)


def _problem(response: httpx.Response, status: int, slug: str, where: str) -> None:
    assert response.status_code == status, f"{where}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM), where
    assert response.json()["type"].endswith("/" + slug), f"{where}: {response.text}"


@pytest.mark.parametrize("caller", ["outsider", *ROLES, "anonymous", "backend-key"])
def test_role_route_matrix(harness: Harness, caller: str) -> None:
    """Every console route, called for real by `caller` (G25, L1)."""
    world = World(harness)
    user = world.users.get(caller)
    outcomes: dict[str, str] = {}
    for (method, template), access in EXPECTED.items():
        where = f"{caller}: {method} {template}"
        call = PREPARE[(method, template)](world, user, caller)
        seq_before = chain_seq(harness)
        response = _send(harness, caller, user, method, call, world.secret_key)
        signed_in = user is not None
        if access == "public" or (signed_in and access == "account"):
            allowed = True
        elif not signed_in or caller == "outsider":
            allowed = False
        else:
            allowed = RANK[caller] >= RANK[access]

        if allowed:
            assert response.status_code == call.status, f"{where}: {response.status_code} {response.text}"
            # every org mutation is on the record (a route not enabled here, answering 404, changes nothing)
            if method != "GET" and template not in UNAUDITED and call.status < 400:
                assert chain_seq(harness) > seq_before, f"{where}: no audit event appended"
            outcomes[where] = "allowed"
            continue
        if not signed_in:  # console boundary: no session, no data, whatever else is sent
            _problem(response, 401, "unauthorized", where)
        elif caller == "outsider":  # no existence leak: the same answer as for ids that exist nowhere
            _problem(response, 404, "not-found", where)
            unknown = user.request(method, _unknown_ids(template), json=call.json)  # type: ignore[union-attr]
            _problem(unknown, 404, "not-found", where + " (unknown ids)")
            assert response.json() == unknown.json(), where
        else:
            _problem(response, 403, "forbidden", where)
        assert chain_seq(harness) == seq_before, f"{where}: a refused request appended an audit event"
        outcomes[where] = f"refused {response.status_code}"

    # The matrix really exercised both sides for the roles in the middle.
    if caller in ("viewer", "developer", "admin"):
        assert any(v == "allowed" for v in outcomes.values())
        assert any(v.startswith("refused 403") for v in outcomes.values())


def test_unsafe_console_requests_without_csrf_token_are_refused(harness: Harness) -> None:
    """A signed-in owner without the X-CSRF-Token header gets 403 on every unsafe route (except
    sign-in, which has no session yet and checks Origin instead)."""
    world = World(harness)
    for (method, template), access in EXPECTED.items():
        if method == "GET" or access == "public":
            continue
        call = PREPARE[(method, template)](world, world.owner, "owner")
        seq_before = chain_seq(harness)
        response = (call.as_user or world.owner).request(method, call.path, json=call.json, csrf=False)
        _problem(response, 403, "csrf-failed", f"{method} {template}")
        forged = (call.as_user or world.owner).request(
            method, call.path, json=call.json, headers={"x-csrf-token": "forged"}
        )
        _problem(forged, 403, "csrf-failed", f"{method} {template} (forged token)")
        assert chain_seq(harness) == seq_before


def test_webhook_ids_of_another_org_are_not_found(harness: Harness) -> None:
    """An owner of one org naming another org's endpoint (or a message of it) gets the unknown-id answer,
    and an endpoint of one's own does not open another endpoint's message."""
    world = World(harness)
    theirs = world.endpoint_id
    message = world.message()
    intruder = world.elsewhere_owner
    elsewhere_project = harness.project(intruder, world.elsewhere_id)["id"]
    own = intruder.ok(
        "POST",
        f"{CONSOLE}/projects/{elsewhere_project}/webhooks",
        201,
        json={"url": HOOK_URL, "environment": "test"},
    )["id"]
    calls = [
        ("GET", f"{CONSOLE}/webhooks/{theirs}", None),
        ("PATCH", f"{CONSOLE}/webhooks/{theirs}", {"enabled": False}),
        ("DELETE", f"{CONSOLE}/webhooks/{theirs}", None),
        ("POST", f"{CONSOLE}/webhooks/{theirs}/rotate-secret", {}),
        ("GET", f"{CONSOLE}/webhooks/{theirs}/secret", None),
        ("POST", f"{CONSOLE}/webhooks/{theirs}/test", None),
        ("GET", f"{CONSOLE}/webhooks/{theirs}/messages", None),
        ("GET", f"{CONSOLE}/webhooks/{theirs}/messages/{message}", None),
        ("POST", f"{CONSOLE}/webhooks/{theirs}/messages/{message}/replay", None),
        ("POST", f"{CONSOLE}/webhooks/{theirs}/replay", {"since": "2020-01-01T00:00:00Z"}),
        ("GET", f"{CONSOLE}/projects/{world.project_id}/webhooks", None),
        ("GET", f"{CONSOLE}/projects/{world.project_id}/webhooks/metrics", None),
        ("POST", f"{CONSOLE}/projects/{world.project_id}/webhooks", {"url": HOOK_URL, "environment": "test"}),
        ("GET", f"{CONSOLE}/webhooks/{own}/messages/{message}", None),
        ("POST", f"{CONSOLE}/webhooks/{own}/messages/{message}/replay", None),
    ]
    seq_before = chain_seq(harness)
    for method, path, body in calls:
        _problem(intruder.request(method, path, json=body), 404, "not-found", f"{method} {path}")
    assert chain_seq(harness) == seq_before
    state = world.owner.ok("GET", f"{CONSOLE}/webhooks/{theirs}")
    assert state["enabled"] is True
    assert [m["id"] for m in world.owner.ok("GET", f"{CONSOLE}/webhooks/{theirs}/messages")["items"]] == [
        message
    ]
