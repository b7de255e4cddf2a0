"""Orgs, members, roles and invitations (G25), with their audit events, plan member
quota, and another org's ids answering exactly like unknown ids (acceptance: no existence leak)."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from silver_auth.audit.models import AuditEvent
from silver_auth.core import clock
from tests.factories import ConsoleUser, Harness
from tests.orgs.support import API, audit, audit_actions, problem, set_plan, snapshot

DAY = 86400


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _invite(user: ConsoleUser, org_id: str, role: str = "viewer", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = user.ok(
        "POST", f"{API}/orgs/{org_id}/invitations", 201, json={"role": role, **extra}
    )
    return body


def _accept(user: ConsoleUser, token: str) -> Any:
    return user.post(f"{API}/invitations/accept", json={"token": token})


def _members(user: ConsoleUser, org_id: str) -> dict[str, str]:
    items = user.ok("GET", f"{API}/orgs/{org_id}/members")["items"]
    return {m["account_id"]: m["role"] for m in items}


def _team(harness: Harness) -> tuple[str, dict[str, ConsoleUser]]:
    """An org on the Pro plan (room for members) with an owner, an admin, a developer and a viewer."""
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    set_plan(harness, org_id, "pro")
    team = {"owner": owner}
    for role in ("admin", "developer", "viewer"):
        team[role] = harness.member(owner, org_id, role)
    return org_id, team


# --- orgs ----------------------------------------------------------------------------------------


def test_create_org_answers_201_with_id_and_makes_the_caller_owner(harness: Harness) -> None:
    user = harness.user()
    response = user.post(f"{API}/orgs", json={"name": "  Acme \t  Corp  "})
    assert response.status_code == 201, response.text
    org = response.json()
    assert org["id"].startswith("org_")
    assert org["name"] == "Acme Corp"  # whitespace collapsed
    assert org["role"] == "owner"
    assert org["plan"] == "free"
    assert org["usage"] == {"projects": 0, "members": 1}
    assert org["limits"] == {"projects": 3, "members": 3}  # the Free plan (L7)
    assert _members(user, org["id"]) == {user.account_id: "owner"}

    events = audit(user, org["id"])
    assert [e["action"] for e in events] == ["member.added", "org.created"]
    created = events[1]
    assert created["actor"] == user.account_id
    assert created["target"] == org["id"]
    assert created["metadata"] == {"name": "Acme Corp"}
    assert events[0]["target"] == user.account_id
    assert events[0]["metadata"] == {"role": "owner"}


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": " \u00a0\t\n"},
        {"name": "\u200b\u200b"},  # only zero-width spaces: blank to a reader
        {"name": "x" * 101},
        {"name": "a\x00b"},  # Postgres refuses NUL: this was a 500
        {"name": "bell\x07"},
        {"name": "\u202eevil.exe"},  # a bidi override makes a name display as something else
        {"name": 42},
        {"name": None},
        {},
        {"name": "Acme", "plan": "scale"},  # unknown fields are refused, not ignored
    ],
)
def test_bad_org_names_are_422_and_write_nothing(harness: Harness, body: dict[str, Any]) -> None:
    user = harness.user()
    before = snapshot(harness)
    problem(user.post(f"{API}/orgs", json=body), 422, "invalid-request")
    assert snapshot(harness) == before
    assert user.ok("GET", f"{API}/orgs")["items"] == []


def test_lone_surrogate_in_a_name_is_422(harness: Harness) -> None:
    user = harness.user()
    before = snapshot(harness)
    response = user.post(
        f"{API}/orgs", content=b'{"name": "a\\ud800b"}', headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert snapshot(harness) == before


def test_hundred_character_name_is_fine(harness: Harness) -> None:
    user = harness.user()
    org = user.ok("POST", f"{API}/orgs", 201, json={"name": "é" * 100})
    assert org["name"] == "é" * 100


def test_list_orgs_shows_only_the_callers_orgs_with_their_role(harness: Harness) -> None:
    alice, bob = harness.user(), harness.user()
    first = harness.org(alice, "First")
    second = harness.org(alice, "Second")
    bobs = harness.org(bob, "Bob's")
    _accept(bob, _invite(alice, second["id"], "developer")["token"])

    alice_orgs = alice.ok("GET", f"{API}/orgs")["items"]
    assert [(o["id"], o["name"], o["role"]) for o in alice_orgs] == [
        (first["id"], "First", "owner"),
        (second["id"], "Second", "owner"),
    ]
    bob_orgs = {o["id"]: o["role"] for o in bob.ok("GET", f"{API}/orgs")["items"]}
    assert bob_orgs == {bobs["id"]: "owner", second["id"]: "developer"}
    assert harness.user().ok("GET", f"{API}/orgs")["items"] == []


def test_org_detail_shows_role_usage_and_plan_limits(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    harness.project(owner, org_id, "One")
    harness.project(owner, org_id, "Two")
    viewer = harness.member(owner, org_id, "viewer")
    _invite(owner, org_id)  # a pending invitation is not a member yet

    detail = viewer.ok("GET", f"{API}/orgs/{org_id}")
    assert detail["role"] == "viewer"
    assert detail["usage"] == {"projects": 2, "members": 2}
    assert detail["limits"] == {"projects": 3, "members": 3}
    assert owner.ok("GET", f"{API}/orgs/{org_id}")["role"] == "owner"


def test_admin_renames_org_with_audit(harness: Harness) -> None:
    org_id, team = _team(harness)
    renamed = team["admin"].ok("PATCH", f"{API}/orgs/{org_id}", json={"name": " New   name "})
    assert renamed["name"] == "New name"
    assert renamed["role"] == "admin"
    assert team["viewer"].ok("GET", f"{API}/orgs/{org_id}")["name"] == "New name"
    event = audit(team["owner"], org_id, action="org.updated")[0]
    assert event["actor"] == team["admin"].account_id
    assert event["metadata"] == {"name": {"from": "Acme", "to": "New name"}}

    before = snapshot(harness)
    problem(team["admin"].patch(f"{API}/orgs/{org_id}", json={"name": "  "}), 422, "invalid-request")
    problem(team["developer"].patch(f"{API}/orgs/{org_id}", json={"name": "Mine"}), 403, "forbidden")
    assert snapshot(harness) == before


def test_owner_deletes_org_with_its_projects_keys_and_members(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    project = harness.project(owner, org_id)
    key = harness.key(owner, project["id"])
    viewer = harness.member(owner, org_id, "viewer")
    assert harness.backend("/v1/backend/project", key["key"]).status_code == 200  # cache warm

    admin = harness.member(owner, org_id, "admin")
    problem(admin.delete(f"{API}/orgs/{org_id}"), 403, "forbidden")  # G25: only the owner

    assert owner.delete(f"{API}/orgs/{org_id}").status_code == 204
    for user in (owner, viewer):
        problem(user.get(f"{API}/orgs/{org_id}"), 404, "not-found")
        assert user.ok("GET", f"{API}/orgs")["items"] == []
    problem(owner.get(f"{API}/projects/{project['id']}"), 404, "not-found")
    problem(harness.backend("/v1/backend/project", key["key"]), 401, "unauthorized")

    async def deleted_event() -> AuditEvent | None:
        async with harness.runtime.sessionmaker() as db:
            result: AuditEvent | None = await db.scalar(
                select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.action == "org.deleted")
            )
            return result

    event = harness.run(deleted_event)
    assert event is not None, "deleting an org appends an audit event that outlives the org"
    assert event.actor == owner.account_id
    assert event.metadata_["projects"] == [project["id"]]


# --- members and roles ---------------------------------------------------------------------------


def test_members_list_shows_email_and_role_to_every_member(harness: Harness) -> None:
    org_id, team = _team(harness)
    listed = team["viewer"].ok("GET", f"{API}/orgs/{org_id}/members")["items"]
    assert {(m["account_id"], m["email"], m["role"]) for m in listed} == {
        (user.account_id, user.email, role) for role, user in team.items()
    }


def test_admin_switches_developer_and_viewer(harness: Harness) -> None:
    org_id, team = _team(harness)
    admin, dev = team["admin"], team["developer"]
    path = f"{API}/orgs/{org_id}/members/{dev.account_id}"
    changed = admin.ok("PATCH", path, json={"role": "viewer"})
    assert changed["role"] == "viewer" and changed["email"] == dev.email
    project = harness.project(team["owner"], org_id)
    problem(
        dev.post(f"{API}/projects/{project['id']}/keys", json={"kind": "secret", "environment": "live"}),
        403,
        "forbidden",
    )
    assert admin.ok("PATCH", path, json={"role": "developer"})["role"] == "developer"
    harness.key(dev, project["id"])  # the developer role works again at once

    events = audit(admin, org_id, action="member.role_changed")
    assert [e["metadata"] for e in events] == [
        {"from": "viewer", "to": "developer"},
        {"from": "developer", "to": "viewer"},
    ]
    assert all(e["actor"] == admin.account_id and e["target"] == dev.account_id for e in events)

    # Setting the role a member already has changes nothing and records nothing.
    before = snapshot(harness)
    assert admin.ok("PATCH", path, json={"role": "developer"})["role"] == "developer"
    assert snapshot(harness) == before


def test_admin_can_promote_to_admin_but_not_touch_owners(harness: Harness) -> None:
    org_id, team = _team(harness)
    admin, owner = team["admin"], team["owner"]
    members = f"{API}/orgs/{org_id}/members"
    assert (
        admin.ok("PATCH", f"{members}/{team['viewer'].account_id}", json={"role": "admin"})["role"] == "admin"
    )

    before = snapshot(harness)
    problem(
        admin.patch(f"{members}/{team['developer'].account_id}", json={"role": "owner"}), 403, "forbidden"
    )
    problem(admin.patch(f"{members}/{admin.account_id}", json={"role": "owner"}), 403, "forbidden")
    problem(admin.patch(f"{members}/{owner.account_id}", json={"role": "viewer"}), 403, "forbidden")
    problem(admin.delete(f"{members}/{owner.account_id}"), 403, "forbidden")
    problem(
        team["developer"].patch(f"{members}/{team['viewer'].account_id}", json={"role": "viewer"}),
        403,
        "forbidden",
    )
    problem(admin.patch(f"{members}/{owner.account_id}", json={"role": "boss"}), 422, "invalid-request")
    assert snapshot(harness) == before


def test_only_an_owner_grants_and_removes_owner_and_the_last_owner_stays(harness: Harness) -> None:
    org_id, team = _team(harness)
    owner, admin = team["owner"], team["admin"]
    members = f"{API}/orgs/{org_id}/members"

    # The last owner can neither be demoted nor removed, nor leave: 409, nothing written.
    before = snapshot(harness)
    problem(owner.patch(f"{members}/{owner.account_id}", json={"role": "admin"}), 409, "conflict")
    problem(owner.delete(f"{members}/{owner.account_id}"), 409, "conflict")
    problem(owner.post(f"{API}/orgs/{org_id}/leave"), 409, "conflict")
    assert snapshot(harness) == before

    # The owner makes the admin an owner; now the first owner may step down.
    assert owner.ok("PATCH", f"{members}/{admin.account_id}", json={"role": "owner"})["role"] == "owner"
    assert owner.ok("PATCH", f"{members}/{owner.account_id}", json={"role": "admin"})["role"] == "admin"
    # The new sole owner is now the last one; the demoted one can no longer touch owners.
    problem(admin.patch(f"{members}/{admin.account_id}", json={"role": "viewer"}), 409, "conflict")
    problem(owner.delete(f"{members}/{admin.account_id}"), 403, "forbidden")
    # An owner removes another owner once there are two.
    assert admin.ok("PATCH", f"{members}/{owner.account_id}", json={"role": "owner"})["role"] == "owner"
    assert admin.delete(f"{members}/{owner.account_id}").status_code == 204
    assert _members(admin, org_id)[admin.account_id] == "owner"
    assert owner.account_id not in _members(admin, org_id)

    changes = [e["metadata"] for e in audit(admin, org_id, action="member.role_changed")]
    assert changes == [
        {"from": "admin", "to": "owner"},
        {"from": "owner", "to": "admin"},
        {"from": "admin", "to": "owner"},
    ]
    removed = audit(admin, org_id, action="member.removed")[0]
    assert removed["target"] == owner.account_id
    assert removed["metadata"] == {"role": "owner", "sessions_revoked": 1}  # offboarding (G29)


def test_removed_member_gets_404_for_everything_in_the_org(harness: Harness) -> None:
    org_id, team = _team(harness)
    dev = team["developer"]
    project = harness.project(team["owner"], org_id)
    key = harness.key(dev, project["id"])
    assert team["admin"].delete(f"{API}/orgs/{org_id}/members/{dev.account_id}").status_code == 204
    # G29 offboarding: the removed member's sessions end at once; signed in again, the org is gone.
    problem(dev.request("GET", f"{API}/orgs/{org_id}"), 401, "unauthorized")
    dev = harness.sign_in(dev.email)

    for method, path in (
        ("GET", f"{API}/orgs/{org_id}"),
        ("GET", f"{API}/orgs/{org_id}/members"),
        ("GET", f"{API}/orgs/{org_id}/projects"),
        ("GET", f"{API}/projects/{project['id']}"),
        ("GET", f"{API}/projects/{project['id']}/keys"),
        ("DELETE", f"{API}/keys/{key['id']}"),
        ("POST", f"{API}/orgs/{org_id}/leave"),
    ):
        problem(dev.request(method, path), 404, "not-found")
    assert dev.ok("GET", f"{API}/orgs")["items"] == []
    assert dev.account_id not in _members(team["owner"], org_id)
    removed = audit(team["owner"], org_id, action="member.removed")[0]
    assert removed["actor"] == team["admin"].account_id
    assert removed["target"] == dev.account_id
    assert removed["metadata"] == {"role": "developer", "sessions_revoked": 1}

    # Removing someone who is not (or no longer) a member is a 404 too.
    problem(team["admin"].delete(f"{API}/orgs/{org_id}/members/{dev.account_id}"), 404, "not-found")


def test_member_leaves(harness: Harness) -> None:
    org_id, team = _team(harness)
    viewer = team["viewer"]
    assert viewer.post(f"{API}/orgs/{org_id}/leave").status_code == 204
    problem(viewer.get(f"{API}/orgs/{org_id}"), 404, "not-found")
    assert viewer.ok("GET", f"{API}/orgs")["items"] == []
    event = audit(team["owner"], org_id, action="member.removed")[0]
    assert event["actor"] == viewer.account_id and event["target"] == viewer.account_id


# --- invitations ---------------------------------------------------------------------------------


def test_invitation_is_a_one_time_link(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    invite = _invite(owner, org_id, "developer", email="  Dev@Example.com ")
    assert invite["id"].startswith("inv_")
    assert invite["status"] == "pending"
    assert invite["role"] == "developer"
    assert invite["email"] == "dev@example.com"
    assert invite["url"].endswith("/console/invitations/" + invite["token"])
    assert len(invite["token"]) >= 40  # 256 bits, url-safe
    assert _parse(invite["expires_at"]) - _parse(invite["created_at"]) == timedelta(days=7)

    joiner = harness.user()
    joined = joiner.ok("POST", f"{API}/invitations/accept", json={"token": invite["token"]})
    assert joined["id"] == org_id and joined["role"] == "developer"
    assert _members(owner, org_id)[joiner.account_id] == "developer"

    # A second use, by the same account or anyone else, is a 404 and writes nothing.
    other = harness.user()
    before = snapshot(harness)
    problem(_accept(other, invite["token"]), 404, "not-found")
    problem(_accept(joiner, invite["token"]), 404, "not-found")
    assert snapshot(harness) == before


def test_second_use_of_an_invitation_writes_nothing(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    invite = _invite(owner, org_id)
    first, second = harness.user(), harness.user()
    first.ok("POST", f"{API}/invitations/accept", json={"token": invite["token"]})
    before = snapshot(harness)
    problem(_accept(second, invite["token"]), 404, "not-found")
    problem(_accept(second, invite["token"] + "x"), 404, "not-found")
    problem(_accept(second, "not-a-token"), 404, "not-found")
    assert snapshot(harness) == before
    assert second.ok("GET", f"{API}/orgs")["items"] == []

    listed = owner.ok("GET", f"{API}/orgs/{org_id}/invitations")["items"]
    assert [(i["id"], i["status"]) for i in listed] == [(invite["id"], "accepted")]
    actions = audit_actions(owner, org_id)
    assert actions[:3] == ["member.added", "invitation.accepted", "invitation.created"]
    accepted = audit(owner, org_id, action="invitation.accepted")[0]
    assert accepted["actor"] == first.account_id and accepted["target"] == invite["id"]
    added = audit(owner, org_id, action="member.added")[0]
    assert added["target"] == first.account_id
    assert added["metadata"] == {"role": "viewer", "invitation": invite["id"]}


def test_expired_invitation_is_404_and_writes_nothing(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    invite = _invite(owner, org_id)
    harness.create_account("joiner@example.com")
    clock.advance(8 * DAY)
    # Console sessions idle out after a day: both sign in afresh, eight days later.
    owner = harness.sign_in(owner.email)
    joiner = harness.sign_in("joiner@example.com")
    before = snapshot(harness)
    problem(_accept(joiner, invite["token"]), 404, "not-found")
    assert snapshot(harness) == before
    listed = owner.ok("GET", f"{API}/orgs/{org_id}/invitations")["items"]
    assert [i["status"] for i in listed] == ["expired"]


def test_invitation_still_valid_just_before_it_expires(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    invite = _invite(owner, org_id)
    clock.advance(7 * DAY - 60)
    joiner = harness.user()
    joiner.ok("POST", f"{API}/invitations/accept", json={"token": invite["token"]})
    clock.advance(120)  # now past its expiry, but already used: it stays accepted, not expired
    owner = harness.sign_in(owner.email)
    listed = owner.ok("GET", f"{API}/orgs/{org_id}/invitations")["items"]
    assert [i["status"] for i in listed] == ["accepted"]


def test_revoked_invitation_is_404(harness: Harness) -> None:
    org_id, team = _team(harness)
    admin = team["admin"]
    invite = _invite(admin, org_id)
    assert admin.delete(f"{API}/invitations/{invite['id']}").status_code == 204
    joiner = harness.user()
    before = snapshot(harness)
    problem(_accept(joiner, invite["token"]), 404, "not-found")
    assert snapshot(harness) == before
    listed = admin.ok("GET", f"{API}/orgs/{org_id}/invitations")["items"]
    assert {i["id"]: i["status"] for i in listed}[invite["id"]] == "revoked"
    event = audit(admin, org_id, action="invitation.revoked")[0]
    assert event["actor"] == admin.account_id and event["target"] == invite["id"]

    # Revoking again changes nothing; an accepted invitation cannot be revoked.
    assert admin.delete(f"{API}/invitations/{invite['id']}").status_code == 204
    assert len(audit(admin, org_id, action="invitation.revoked")) == 1
    used = _invite(admin, org_id)
    joiner.ok("POST", f"{API}/invitations/accept", json={"token": used["token"]})
    problem(admin.delete(f"{API}/invitations/{used['id']}"), 409, "conflict")
    problem(team["developer"].delete(f"{API}/invitations/{invite['id']}"), 403, "forbidden")


def test_admin_cannot_invite_an_owner_but_an_owner_can(harness: Harness) -> None:
    org_id, team = _team(harness)
    before = snapshot(harness)
    problem(team["admin"].post(f"{API}/orgs/{org_id}/invitations", json={"role": "owner"}), 403, "forbidden")
    problem(
        team["developer"].post(f"{API}/orgs/{org_id}/invitations", json={"role": "viewer"}), 403, "forbidden"
    )
    problem(
        team["admin"].post(f"{API}/orgs/{org_id}/invitations", json={"role": "god"}), 422, "invalid-request"
    )
    problem(
        team["admin"].post(f"{API}/orgs/{org_id}/invitations", json={"role": "viewer", "email": "a\x00b"}),
        422,
        "invalid-request",
    )
    assert snapshot(harness) == before

    invite = _invite(team["owner"], org_id, "owner")
    new_owner = harness.user()
    assert (
        new_owner.ok("POST", f"{API}/invitations/accept", json={"token": invite["token"]})["role"] == "owner"
    )
    admin_invite = _invite(team["admin"], org_id, "admin")
    assert admin_invite["role"] == "admin"
    created = audit(team["owner"], org_id, action="invitation.created")
    assert [(e["actor"], e["metadata"]["role"]) for e in created[:2]] == [
        (team["admin"].account_id, "admin"),
        (team["owner"].account_id, "owner"),
    ]


def test_accepting_when_already_a_member_is_409_and_keeps_the_link(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    invite = _invite(owner, org_id, "admin")
    member = harness.member(owner, org_id, "viewer")
    before = snapshot(harness)
    problem(_accept(member, invite["token"]), 409, "conflict")
    problem(_accept(owner, invite["token"]), 409, "conflict")
    assert snapshot(harness) == before
    assert _members(owner, org_id)[member.account_id] == "viewer"  # no silent promotion
    # The link was not used up: someone else can still take it.
    assert (
        harness.user().ok("POST", f"{API}/invitations/accept", json={"token": invite["token"]})["role"]
        == "admin"
    )


def test_invitation_token_never_appears_again(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    invite = _invite(owner, org_id, email="friend@example.com")
    token = invite["token"]
    listing = owner.get(f"{API}/orgs/{org_id}/invitations")
    assert token not in listing.text
    assert set(listing.json()["items"][0]) == {
        "id",
        "org_id",
        "role",
        "email",
        "status",
        "created_at",
        "expires_at",
    }
    harness.user().ok("POST", f"{API}/invitations/accept", json={"token": token})
    assert token not in owner.get(f"{API}/orgs/{org_id}/invitations").text
    audit_text = owner.get(f"{API}/orgs/{org_id}/audit").text
    assert token not in audit_text
    assert invite["id"] in audit_text  # the events name the invitation by id
    database = json.dumps(snapshot(harness))
    assert token not in database  # only its hash is kept


def test_free_plan_member_quota(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    first = _invite(owner, org_id)  # owner + 2 = 3 members: the Free plan's limit
    harness.user().ok("POST", f"{API}/invitations/accept", json={"token": first["token"]})
    pending = _invite(owner, org_id)  # pending invitations count too

    before = snapshot(harness)
    body = problem(
        owner.post(f"{API}/orgs/{org_id}/invitations", json={"role": "viewer"}), 403, "quota-exceeded"
    )
    assert "3 members" in body["detail"]
    assert snapshot(harness) == before

    # Revoking the pending invitation frees its seat.
    assert owner.delete(f"{API}/invitations/{pending['id']}").status_code == 204
    third = _invite(owner, org_id)
    harness.user().ok("POST", f"{API}/invitations/accept", json={"token": third["token"]})
    detail = owner.ok("GET", f"{API}/orgs/{org_id}")
    assert detail["usage"]["members"] == 3 == detail["limits"]["members"]
    problem(owner.post(f"{API}/orgs/{org_id}/invitations", json={"role": "viewer"}), 403, "quota-exceeded")


# --- another org's ids ---------------------------------------------------------------------------


def _unknown(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(13)}"


def test_another_orgs_ids_are_404_exactly_like_unknown_ids(harness: Harness) -> None:
    """Acceptance: org A's admin using org B's org, project, key, invitation or member ids gets the
    same 404 as for ids that exist nowhere, and nothing is written."""
    owner_a = harness.user()
    org_a = harness.org(owner_a, "A")["id"]
    admin_a = harness.member(owner_a, org_a, "admin")
    owner_b = harness.user()
    org_b = harness.org(owner_b, "B")["id"]
    project_b = harness.project(owner_b, org_b)["id"]
    key_b = harness.key(owner_b, project_b)["id"]
    invitation_b = _invite(owner_b, org_b)["id"]
    member_b = harness.member(owner_b, org_b, "viewer").account_id

    foreign = {"org": org_b, "project": project_b, "key": key_b, "invitation": invitation_b}
    unknown = {kind: _unknown(kind[:3]) for kind in foreign}
    cases: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/orgs/{org}", None),
        ("PATCH", "/orgs/{org}", {"name": "Mine now"}),
        ("DELETE", "/orgs/{org}", None),
        ("GET", "/orgs/{org}/members", None),
        ("POST", "/orgs/{org}/leave", None),
        ("GET", "/orgs/{org}/invitations", None),
        ("POST", "/orgs/{org}/invitations", {"role": "viewer"}),
        ("GET", "/orgs/{org}/projects", None),
        ("POST", "/orgs/{org}/projects", {"name": "Sneaky"}),
        ("GET", "/orgs/{org}/audit", None),
        ("GET", "/projects/{project}", None),
        ("PATCH", "/projects/{project}", {"name": "Mine"}),
        ("DELETE", "/projects/{project}", None),
        ("GET", "/projects/{project}/keys", None),
        ("POST", "/projects/{project}/keys", {"kind": "secret", "environment": "live"}),
        ("DELETE", "/keys/{key}", None),
        ("POST", "/keys/{key}/rotate", {"grace_seconds": 0}),
        ("DELETE", "/invitations/{invitation}", None),
    ]
    before = snapshot(harness)
    for method, template, body in cases:
        theirs = admin_a.request(method, API + template.format(**foreign), json=body)
        nowhere = admin_a.request(method, API + template.format(**unknown), json=body)
        where = f"{method} {template}"
        problem(theirs, 404, "not-found")
        problem(nowhere, 404, "not-found")
        assert theirs.json() == nowhere.json(), where
        assert theirs.headers.get("content-length") == nowhere.headers.get("content-length"), where

    # B's member ids under A's own org look like unknown accounts too.
    for method, body in (("PATCH", {"role": "viewer"}), ("DELETE", None)):
        theirs = admin_a.request(method, f"{API}/orgs/{org_a}/members/{member_b}", json=body)
        nowhere = admin_a.request(method, f"{API}/orgs/{org_a}/members/{_unknown('acc')}", json=body)
        problem(theirs, 404, "not-found")
        assert theirs.json() == nowhere.json()
    assert snapshot(harness) == before
    assert owner_b.ok("GET", f"{API}/orgs/{org_b}")["name"] == "B"
