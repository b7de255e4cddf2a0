"""Every change emits its webhook event from the service, in the change's transaction, whichever path
makes it: hosted pages, backend API (sk_), console API, code exchange and refresh. A change that is
refused or rolled back leaves no event; no payload carries a secret (G18).

The Authentik sign-in path is at the end (it needs an OpenID provider: slow). No CLI command and no
platform-admin action changes end-users, sessions, members, projects or keys (they manage console
accounts and plans), so those paths have nothing to emit."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import func, select

from silver_auth.audit.service import CLI_ACTOR
from silver_auth.db.session import transaction
from silver_auth.endusers import service
from silver_auth.endusers.service import ProjectEnvironment
from silver_auth.plans import service as plans
from silver_auth.webhooks.events import ORG_WIDE, SAMPLES, EventType
from silver_auth.webhooks.models import WebhookEvent
from tests.authentik.conftest import ak_harness, ak_settings, contract, contract_server, provisioning_token
from tests.authentik.test_hosted_sign_in import World, world
from tests.endusers.support import (
    END_USER_PASSWORD,
    REDIRECT,
    Browser,
    CustomerProject,
    backend,
    code_from,
    customer_project,
    exchange,
    refresh,
    sign_up,
)
from tests.factories import PASSWORD, Harness
from tests.hosted.test_two_step import _enrol, _next_code, _password_step

# The Authentik fixtures: a contract server and a real OpenID provider for the project's application.
__all__ = ["ak_harness", "ak_settings", "contract", "contract_server", "provisioning_token", "world"]

SECRET_SHAPES = re.compile(r"(sk|pk)_(live|test)_[A-Za-z0-9]{43}|whsec_|whsk_|argon2|\$2[aby]\$")


@dataclass(frozen=True)
class Event:
    row_id: int
    type: str
    org_id: str | None
    project_id: str | None
    environment: str | None
    payload: str

    @property
    def data(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.payload)
        data: dict[str, Any] = body["data"]
        return data


def mark(harness: Harness) -> int:
    """The outbox's last row id: events after it are the ones the next action wrote."""

    async def work() -> int:
        async with transaction(harness.runtime.sessionmaker) as db:
            return int(await db.scalar(select(func.coalesce(func.max(WebhookEvent.row_id), 0))) or 0)

    return harness.run(work)


def since(harness: Harness, after: int, *secrets: str) -> list[Event]:
    """Every event written after `after`, in insertion order, each checked: its data has exactly the
    keys of the type's sample, it is scoped as its type says, and it carries no secret."""

    async def work() -> list[Event]:
        async with transaction(harness.runtime.sessionmaker) as db:
            rows = await db.scalars(
                select(WebhookEvent).where(WebhookEvent.row_id > after).order_by(WebhookEvent.row_id)
            )
            return [Event(e.row_id, e.type, e.org_id, e.project_id, e.environment, e.payload) for e in rows]

    events = harness.run(work)
    for event in events:
        kind = EventType(event.type)
        assert set(event.data) == set(SAMPLES[kind]), (kind, sorted(event.data))
        if kind in ORG_WIDE:
            assert event.org_id and event.project_id is None and event.environment is None
        else:
            assert event.org_id is None and event.project_id and event.environment
        assert not SECRET_SHAPES.search(event.payload), event.payload
        for secret in (PASSWORD, END_USER_PASSWORD, *secrets):
            assert secret not in event.payload
    return events


def only(events: list[Event], kind: EventType) -> Event:
    matching = [e for e in events if e.type == kind]
    assert len(matching) == 1, (kind, [e.type for e in events])
    return matching[0]


def of(events: list[Event], kind: EventType) -> list[Event]:
    return [e for e in events if e.type == kind]


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _in_project(event: Event, project: CustomerProject) -> None:
    assert (event.project_id, event.environment) == (project.project_id, project.environment)


def _signed_in(harness: Harness, project: CustomerProject, email: str) -> tuple[Browser, str]:
    """A second session of an existing user, through the sign-in page; answers the browser and code."""
    browser = Browser(harness)
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT, state="again")
    response = browser.submit(project.pages("sign-in"), {"email": email, "password": END_USER_PASSWORD})
    code, _ = code_from(response)
    return browser, code


# --- end-users ------------------------------------------------------------------------------------


def _by_sign_up(harness: Harness, project: CustomerProject, email: str) -> str:
    _browser, code = sign_up(harness, project, email)
    return str(exchange(harness, project, code).json()["user_id"])


def _by_backend(harness: Harness, project: CustomerProject, email: str) -> str:
    body = _ok(backend(harness, project, "POST", "/users", json={"email": email}), 201)
    return str(body["id"])


@pytest.mark.parametrize(
    ("create", "via"),
    [(_by_sign_up, "hosted-page"), (_by_backend, "backend-api")],
    ids=["sign-up", "backend"],
)
def test_user_created_once_by_each_path(
    harness: Harness, create: Callable[[Harness, CustomerProject, str], str], via: str
) -> None:
    project = customer_project(harness, environment="live")
    before = mark(harness)
    user_id = create(harness, project, "Ada@Example.com")
    events = since(harness, before, project.secret, project.publishable)
    created = only(events, EventType.USER_CREATED)
    _in_project(created, project)
    assert created.data["id"] == user_id and created.data["email"] == "ada@example.com"
    assert created.data["via"] == via and created.data["environment"] == "live"
    assert created.data["banned"] is False and created.data["mfa_enabled"] is False
    if via == "hosted-page":  # the user exists before their first session, for every receiver
        session = only(events, EventType.SESSION_CREATED)
        assert created.row_id < session.row_id and session.data["user_id"] == user_id
    else:
        assert not of(events, EventType.SESSION_CREATED)


@pytest.mark.parametrize("field", ["email", "password"])
def test_user_updated_once_and_a_new_password_ends_each_session(harness: Harness, field: str) -> None:
    project = customer_project(harness)
    user_id = _by_sign_up(harness, project, "change@example.com")
    _signed_in(harness, project, "change@example.com")
    before = mark(harness)
    new = {"email": "changed@example.com"} if field == "email" else {"password": "another fine passphrase"}
    _ok(backend(harness, project, "PATCH", f"/users/{user_id}", json=new))
    events = since(harness, before, "another fine passphrase")
    updated = only(events, EventType.USER_UPDATED)
    _in_project(updated, project)
    assert updated.data["id"] == user_id and updated.data["changed"] == [field]
    revoked = of(events, EventType.SESSION_REVOKED)
    if field == "email":
        assert updated.data["email"] == "changed@example.com" and not revoked
    else:
        assert len(revoked) == 2 and {e.data["reason"] for e in revoked} == {"password_changed"}
        assert len({e.data["id"] for e in revoked}) == 2 and all(e.data["revoked_at"] for e in revoked)
    # Nothing changed: no event.
    again = mark(harness)
    _ok(backend(harness, project, "PATCH", f"/users/{user_id}", json={"email": updated.data["email"]}))
    assert since(harness, again) == []


def test_ban_revokes_each_session_once_and_unban_follows(harness: Harness) -> None:
    project = customer_project(harness)
    user_id = _by_sign_up(harness, project, "banned@example.com")
    _signed_in(harness, project, "banned@example.com")
    before = mark(harness)
    _ok(backend(harness, project, "POST", f"/users/{user_id}/ban"))
    events = since(harness, before)
    banned = only(events, EventType.USER_BANNED)
    assert banned.data["banned"] is True and banned.data["sessions_revoked"] == 2
    revoked = of(events, EventType.SESSION_REVOKED)
    assert len(revoked) == 2 and {e.data["reason"] for e in revoked} == {"banned"}
    assert [e.type for e in events].count(EventType.SESSION_REVOKED) == 2
    again = mark(harness)
    _ok(backend(harness, project, "POST", f"/users/{user_id}/ban"))  # already banned: nothing happens
    assert since(harness, again) == []
    _ok(backend(harness, project, "POST", f"/users/{user_id}/unban"))
    unbanned = only(since(harness, again), EventType.USER_UNBANNED)
    assert unbanned.data["id"] == user_id and unbanned.data["banned"] is False


def test_user_deleted_once_and_its_sessions_send_nothing_more(harness: Harness) -> None:
    project = customer_project(harness)
    user_id = _by_sign_up(harness, project, "gone@example.com")
    before = mark(harness)
    _ok(backend(harness, project, "DELETE", f"/users/{user_id}"), 204)
    events = since(harness, before)
    assert [e.type for e in events] == [EventType.USER_DELETED]
    assert events[0].data == {"id": user_id, "project_id": project.project_id, "environment": "test"}


# --- end-user sessions ----------------------------------------------------------------------------


def test_session_created_by_each_sign_in_on_the_hosted_pages(harness: Harness) -> None:
    project = customer_project(harness)
    before = mark(harness)
    _by_sign_up(harness, project, "pages@example.com")
    _signed_in(harness, project, "pages@example.com")
    created = of(since(harness, before), EventType.SESSION_CREATED)
    assert len(created) == 2 and {e.data["via"] for e in created} == {"hosted-page"}
    assert {e.data["mfa"] for e in created} == {False}
    # With a second factor: the password step starts nothing, the code step one session.
    secret, _codes = _enrol(harness, project, "two-step@example.com")
    browser = _password_step(harness, project, "two-step@example.com")
    step = mark(harness)
    code_from(browser.submit(project.pages("sign-in/code"), {"code": _next_code(secret)}))
    session = only(since(harness, step, secret), EventType.SESSION_CREATED)
    assert session.data["mfa"] is True
    _in_project(session, project)


Ending = Callable[[Harness, CustomerProject, Browser, dict[str, Any]], None]


def _sign_out(harness: Harness, project: CustomerProject, browser: Browser, body: dict[str, Any]) -> None:
    browser.get(project.pages("sign-out"), redirect_url=REDIRECT, state="bye")
    # Signed out already, the page offers no form: post the first one again, with the old cookies.
    form = body.setdefault("sign_out_form", browser.hidden())
    assert browser.submit(project.pages("sign-out"), {}, hidden=form).status_code == 303


def _revoke_one(harness: Harness, project: CustomerProject, browser: Browser, body: dict[str, Any]) -> None:
    _ok(backend(harness, project, "POST", f"/sessions/{body['session_id']}/revoke"))


def _revoke_all(harness: Harness, project: CustomerProject, browser: Browser, body: dict[str, Any]) -> None:
    _ok(backend(harness, project, "POST", f"/users/{body['user_id']}/sessions/revoke"))


def _refresh_reuse(
    harness: Harness, project: CustomerProject, browser: Browser, body: dict[str, Any]
) -> None:
    refresh(harness, project, body["session_token"])  # the first use rotates; every later one is a reuse
    assert refresh(harness, project, body["session_token"]).status_code == 401


def _code_reuse(harness: Harness, project: CustomerProject, browser: Browser, body: dict[str, Any]) -> None:
    assert exchange(harness, project, body["code"]).json()["reason"] == "code-already-used"


@pytest.mark.parametrize(
    ("end", "reason"),
    [
        (_sign_out, "signed_out"),
        (_revoke_one, "revoked"),
        (_revoke_all, "revoked"),
        (_refresh_reuse, "refresh_token_reuse"),
        (_code_reuse, "code_reuse"),
    ],
    ids=["sign-out", "backend-revoke", "backend-revoke-all", "refresh-reuse", "code-reuse"],
)
def test_session_revoked_once_by_each_path(harness: Harness, end: Ending, reason: str) -> None:
    project = customer_project(harness)
    browser, code = sign_up(harness, project, "ending@example.com")
    body = {**_ok(exchange(harness, project, code)), "code": code}
    cookies = dict(browser.cookies)
    before = mark(harness)
    end(harness, project, browser, body)
    events = since(harness, before, body["session_token"], code, *cookies.values())
    assert [e.type for e in events] == [EventType.SESSION_REVOKED]
    revoked = events[0]
    _in_project(revoked, project)
    assert revoked.data["id"] == body["session_id"] and revoked.data["user_id"] == body["user_id"]
    assert revoked.data["reason"] == reason and revoked.data["revoked_at"]
    # Ended already: the same request again (signing out with the old cookie too) emits nothing.
    again = mark(harness)
    browser.cookies = dict(cookies)
    end(harness, project, browser, body)
    assert since(harness, again) == []


# --- members, projects, keys (console API) --------------------------------------------------------


def test_member_added_by_org_creation_and_by_invitation(harness: Harness) -> None:
    before = mark(harness)
    owner = harness.user()
    org = harness.org(owner)
    first = only(since(harness, before), EventType.ORG_MEMBER_ADDED)
    assert first.org_id == org["id"]
    assert first.data == {
        "org_id": org["id"],
        "account_id": owner.account_id,
        "email": owner.email,
        "role": "owner",
        "via": "org-created",
    }
    invite = owner.ok("POST", f"/console/api/orgs/{org['id']}/invitations", 201, json={"role": "developer"})
    joining = harness.user()
    step = mark(harness)
    joining.ok("POST", "/console/api/invitations/accept", json={"token": invite["token"]})
    added = only(since(harness, step, invite["token"]), EventType.ORG_MEMBER_ADDED)
    assert added.org_id == org["id"] and added.data["account_id"] == joining.account_id
    assert added.data["role"] == "developer" and added.data["via"] == "invitation"


def test_role_changed_names_both_accounts_and_both_roles(harness: Harness) -> None:
    owner = harness.user()
    org = harness.org(owner)
    member = harness.member(owner, org["id"], "developer")
    before = mark(harness)
    owner.ok("PATCH", f"/console/api/orgs/{org['id']}/members/{member.account_id}", json={"role": "admin"})
    changed = only(since(harness, before), EventType.ORG_MEMBER_ROLE_CHANGED)
    assert changed.org_id == org["id"]
    assert changed.data == {
        "org_id": org["id"],
        "account_id": member.account_id,
        "email": member.email,
        "changed_by": owner.account_id,
        "old_role": "developer",
        "new_role": "admin",
    }


@pytest.mark.parametrize("how", ["removed", "left"])
def test_member_removed_by_an_admin_or_by_leaving(harness: Harness, how: str) -> None:
    owner = harness.user()
    org = harness.org(owner)
    member = harness.member(owner, org["id"], "viewer")
    before = mark(harness)
    if how == "removed":
        owner.ok("DELETE", f"/console/api/orgs/{org['id']}/members/{member.account_id}", 204)
    else:
        member.ok("POST", f"/console/api/orgs/{org['id']}/leave", 204)
    removed = only(since(harness, before), EventType.ORG_MEMBER_REMOVED)
    assert removed.org_id == org["id"]
    assert removed.data == {
        "org_id": org["id"],
        "account_id": member.account_id,
        "email": member.email,
        "role": "viewer",
    }


def test_project_created_and_deleted_org_wide(harness: Harness) -> None:
    owner = harness.user()
    org = harness.org(owner)
    before = mark(harness)
    project = harness.project(owner, org["id"], "Shop")
    created = only(since(harness, before), EventType.PROJECT_CREATED)
    assert created.org_id == org["id"]
    assert created.data["id"] == project["id"] and created.data["name"] == "Shop"
    step = mark(harness)
    owner.ok("DELETE", f"/console/api/projects/{project['id']}", 204)
    events = since(harness, step)
    assert [e.type for e in events] == [EventType.PROJECT_DELETED]
    assert events[0].org_id == org["id"]
    assert events[0].data == {"id": project["id"], "org_id": org["id"], "name": "Shop"}


def test_org_deletion_emits_project_deleted_for_each_of_its_projects_only(harness: Harness) -> None:
    owner = harness.user()
    org, other = harness.org(owner), harness.org(owner, "Other")
    doomed = {harness.project(owner, org["id"], name)["id"] for name in ("One", "Two")}
    harness.project(owner, other["id"], "Kept")
    before = mark(harness)
    owner.ok("DELETE", f"/console/api/orgs/{org['id']}", 204)
    events = since(harness, before)
    assert [e.type for e in events] == [EventType.PROJECT_DELETED] * 2
    assert {e.data["id"] for e in events} == doomed and {e.org_id for e in events} == {org["id"]}


def test_key_created_rotated_and_revoked_with_the_display_prefix_only(harness: Harness) -> None:
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    before = mark(harness)
    issued = harness.key(owner, project["id"], "secret", "live")
    created = only(since(harness, before, issued["key"]), EventType.KEY_CREATED)
    assert (created.project_id, created.environment) == (project["id"], "live")
    assert created.data["id"] == issued["id"] and created.data["prefix"] == issued["prefix"]
    assert issued["key"].startswith(created.data["prefix"]) and created.data["status"] == "active"

    step = mark(harness)
    rotated_answer = owner.ok(
        "POST", f"/console/api/keys/{issued['id']}/rotate", 201, json={"grace_seconds": 60}
    )
    new_key = rotated_answer["new"]
    rotated = only(since(harness, step, issued["key"], new_key["key"]), EventType.KEY_ROTATED)
    assert rotated.data["id"] == new_key["id"] and rotated.data["replaces"] == issued["id"]
    assert rotated.data["prefix"] == new_key["prefix"] and rotated.project_id == project["id"]

    step = mark(harness)
    owner.ok("DELETE", f"/console/api/keys/{new_key['id']}")
    revoked = only(since(harness, step), EventType.KEY_REVOKED)
    assert revoked.data["id"] == new_key["id"] and revoked.data["status"] == "revoked"
    assert revoked.data["revoked_at"]
    step = mark(harness)
    owner.ok("DELETE", f"/console/api/keys/{new_key['id']}")  # revoked already: nothing new
    assert since(harness, step) == []


# --- refused changes leave no event ---------------------------------------------------------------


def test_refused_or_rolled_back_changes_leave_no_event(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = customer_project(harness)
    _by_sign_up(harness, project, "taken@example.com")
    owner = project.owner
    before = mark(harness)
    # A duplicate email: the user row was flushed and rolled back (409), on the backend and the page.
    assert backend(harness, project, "POST", "/users", json={"email": "taken@example.com"}).status_code == 409
    browser = Browser(harness)
    browser.get(project.pages("sign-up"), redirect_url=REDIRECT)
    page = browser.submit(
        project.pages("sign-up"), {"email": "taken@example.com", "password": END_USER_PASSWORD}
    )
    assert page.status_code == 409, page.text
    # A wrong password signs nobody in.
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT)
    wrong = browser.submit(
        project.pages("sign-in"), {"email": "taken@example.com", "password": "not it at all"}
    )
    assert wrong.status_code == 401
    # The last owner cannot step down; a rotated key cannot rotate again.
    response = owner.patch(
        f"/console/api/orgs/{project.org_id}/members/{owner.account_id}", json={"role": "admin"}
    )
    assert response.status_code == 409
    key = harness.key(owner, project.project_id, "secret", "test")
    owner.ok("POST", f"/console/api/keys/{key['id']}/rotate", 201, json={"grace_seconds": 60})
    after_rotation = mark(harness)
    assert owner.post(f"/console/api/keys/{key['id']}/rotate", json={"grace_seconds": 60}).status_code == 409
    assert [e.type for e in since(harness, before)] == [EventType.KEY_CREATED, EventType.KEY_ROTATED]
    # Over quota: end-users, projects.
    monkeypatch.setitem(plans.PLANS, "free", replace(plans.PLANS["free"], end_users=1, projects=1))
    assert backend(harness, project, "POST", "/users", json={"email": "over@example.com"}).status_code == 403
    assert (
        owner.post(f"/console/api/orgs/{project.org_id}/projects", json={"name": "More"}).status_code == 403
    )
    assert since(harness, after_rotation) == []


def test_an_event_exists_exactly_when_its_change_commits(harness: Harness) -> None:
    """The service writes the event in the caller's transaction: rolled back, both are gone."""
    project = customer_project(harness)
    scope = ProjectEnvironment(project.project_id, project.environment)
    before = mark(harness)

    async def work(fail: bool) -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            await service.create_user(db, scope, "maybe@example.com", None, actor=CLI_ACTOR, via="test")
            if fail:
                raise RuntimeError("the caller fails after the change")

    with pytest.raises(RuntimeError):
        harness.run(lambda: work(True))
    assert since(harness, before) == []
    harness.run(lambda: work(False))
    assert only(since(harness, before), EventType.USER_CREATED).data["via"] == "test"


# --- hosted sign-in through Authentik ---------------------------------------------------------------


@pytest.mark.slow
def test_authentik_first_sign_in_creates_the_user_before_the_session(world: World) -> None:
    harness, project = world.harness, world.project
    sub, email = world.person()
    before = mark(harness)
    _, back = world.sign_in(sub, amr="pwd,mfa")
    code, _ = code_from(back)
    events = since(harness, before, code, world.client_secret)
    created, session = only(events, EventType.USER_CREATED), only(events, EventType.SESSION_CREATED)
    assert [e.type for e in events] == [EventType.USER_CREATED, EventType.SESSION_CREATED]
    assert created.row_id < session.row_id
    assert created.data["via"] == "authentik" and created.data["email"] == email
    assert session.data["via"] == "authentik" and session.data["mfa"] is True
    assert session.data["user_id"] == created.data["id"]
    _in_project(created, project)
    _in_project(session, project)
    # The next sign-in finds the user: a session only.
    again = mark(harness)
    code_from(world.sign_in(sub)[1])
    assert [e.type for e in since(harness, again)] == [EventType.SESSION_CREATED]
