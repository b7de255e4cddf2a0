"""Platform-admin operations: plans (G27), support views, session revocation (G29), identity proxy (G26)."""

from __future__ import annotations

import pytest

from silver_auth.accounts.sessions import ConsoleSession
from silver_auth.identity.providers.builtin import BuiltinIdentityProvider
from silver_auth.mfa.models import RecoveryCode, TotpFactor
from tests.accounts.support import mfa_sign_in
from tests.admin.support import (
    ADMIN,
    MFA_SECRETS,
    admin_events,
    make_mfa_session,
    plant_totp,
    platform_admin,
    problem,
    rows,
    session_id,
)
from tests.dbstate import snapshot
from tests.factories import PASSWORD, Harness
from tests.orgs.support import audit, set_plan

# --- plans ---------------------------------------------------------------------------------------


def test_g27_plan_change_is_a_subscription_event_in_the_orgs_audit_log(harness: Harness) -> None:
    admin = platform_admin(harness)
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    answer = admin.ok("PUT", f"{ADMIN}/orgs/{org_id}/plan", json={"plan": "scale"})
    assert answer == {"org_id": org_id, "previous": "free", "plan": "scale", "over_quota": []}
    assert owner.ok("GET", f"/console/api/orgs/{org_id}")["plan"] == "scale"
    # The org's own admins see it through the console's audit route.
    [event] = audit(owner, org_id, action="subscription.changed")
    assert event["actor"] == admin.account_id
    assert event["target"] == org_id
    assert event["metadata"]["from"] == "free" and event["metadata"]["to"] == "scale"
    assert event["metadata"]["forced"] is False
    # The new plan's quotas apply at once.
    assert owner.ok("GET", f"/console/api/orgs/{org_id}")["limits"]["projects"] == 200


@pytest.mark.parametrize(
    "body", [{"plan": "enterprise"}, {"plan": "Pro"}, {"plan": None}, {}, {"plan": "pro", "x": 1}]
)
def test_unknown_plan_is_refused_with_422_and_writes_nothing(
    harness: Harness, body: dict[str, object]
) -> None:
    admin = platform_admin(harness)
    org_id = harness.org(harness.user())["id"]
    before = snapshot(harness)
    problem(admin.request("PUT", f"{ADMIN}/orgs/{org_id}/plan", json=body), 422, "invalid-request")
    assert snapshot(harness) == before


def test_plan_change_of_an_unknown_org_is_404(harness: Harness) -> None:
    admin = platform_admin(harness)
    before = snapshot(harness)
    problem(admin.request("PUT", f"{ADMIN}/orgs/org_nope/plan", json={"plan": "pro"}), 404, "not-found")
    problem(admin.get(f"{ADMIN}/orgs/org_nope"), 404, "not-found")
    assert snapshot(harness) == before


def test_downgrade_below_usage_is_refused_with_409_unless_forced(harness: Harness) -> None:
    admin = platform_admin(harness)
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    set_plan(harness, org_id, "pro")
    for name in ("A", "B", "C", "D"):  # Free allows 3 projects
        harness.project(owner, org_id, name)
    before = snapshot(harness)
    body = problem(
        admin.request("PUT", f"{ADMIN}/orgs/{org_id}/plan", json={"plan": "free"}), 409, "conflict"
    )
    assert "projects 4 of 3" in body["detail"] and "force" in body["detail"]
    assert body["over_quota"] == [{"quota": "projects", "used": 4, "limit": 3}]
    assert snapshot(harness) == before

    forced = admin.ok("PUT", f"{ADMIN}/orgs/{org_id}/plan", json={"plan": "free", "force": True})
    assert forced["plan"] == "free" and forced["over_quota"] == [{"quota": "projects", "used": 4, "limit": 3}]
    [event] = audit(owner, org_id, action="subscription.changed")
    assert event["metadata"]["forced"] is True
    assert event["metadata"]["over_quota"] == {"projects": {"used": 4, "limit": 3}}
    # The org keeps its projects but can't add more until it is back under the limit.
    problem(
        owner.request("POST", f"/console/api/orgs/{org_id}/projects", json={"name": "E"}),
        403,
        "quota-exceeded",
    )


def test_setting_the_same_plan_changes_and_records_nothing(harness: Harness) -> None:
    admin = platform_admin(harness)
    org_id = harness.org(harness.user())["id"]
    before = snapshot(harness)
    answer = admin.ok("PUT", f"{ADMIN}/orgs/{org_id}/plan", json={"plan": "free"})
    assert answer["previous"] == answer["plan"] == "free"
    assert snapshot(harness) == before


# --- org and account views -----------------------------------------------------------------------


def test_org_search_and_pagination(harness: Harness) -> None:
    admin = platform_admin(harness)
    owner = harness.user()
    ids = [harness.org(owner, f"Acme {n}")["id"] for n in range(5)]
    other = harness.org(owner, "Globex")["id"]
    harness.project(owner, ids[0])
    first = admin.ok("GET", f"{ADMIN}/orgs", params={"q": "ACME", "limit": 2})
    assert [o["id"] for o in first["items"]] == ids[:2] and first["next_offset"] == 2
    assert first["items"][0] == {
        **first["items"][0],
        "name": "Acme 0",
        "plan": "free",
        "members": 1,
        "projects": 1,
    }
    rest = admin.ok("GET", f"{ADMIN}/orgs", params={"q": "acme", "limit": 2, "offset": 4})
    assert [o["id"] for o in rest["items"]] == ids[4:] and rest["next_offset"] is None
    assert [o["id"] for o in admin.ok("GET", f"{ADMIN}/orgs", params={"q": other})["items"]] == [other]
    # LIKE wildcards are plain characters.
    assert admin.ok("GET", f"{ADMIN}/orgs", params={"q": "%"})["items"] == []
    problem(admin.get(f"{ADMIN}/orgs", params={"limit": 0}), 422, "invalid-request")
    for path in ("orgs", "accounts", "identity/users"):  # NUL was a Postgres error (500)
        problem(admin.get(f"{ADMIN}/{path}", params={"q": "a\x00b"}), 422, "invalid-request")
        assert admin.ok("GET", f"{ADMIN}/{path}", params={"q": "   "})["items"]  # blank: no filter
    problem(admin.get(f"{ADMIN}/orgs", params={"offset": -1}), 422, "invalid-request")


def test_org_support_view(harness: Harness) -> None:
    admin = platform_admin(harness)
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    dev = harness.member(owner, org_id, "developer")
    project_id = harness.project(owner, org_id)["id"]
    secret = harness.key(owner, project_id)
    view = admin.ok("GET", f"{ADMIN}/orgs/{org_id}")
    assert view["plan"] == "free"
    assert {(m["account_id"], m["role"]) for m in view["members"]} == {
        (owner.account_id, "owner"),
        (dev.account_id, "developer"),
    }
    [project] = view["projects"]
    [key] = project["keys"]
    assert key["id"] == secret["id"] and key["prefix"] == secret["prefix"] and key["status"] == "active"
    assert set(key) == {"id", "kind", "environment", "prefix", "status", "created_at", "last_used_at"}
    usage = {u["quota"]: (u["used"], u["limit"]) for u in view["usage"]}
    assert usage == {
        "projects": (1, 3),
        "members": (2, 3),
        "end_users": (0, 1000),
        "webhook_endpoints": (0, 2),
        "api_keys_per_project": (1, 10),
    }


def test_account_search_and_support_view(harness: Harness) -> None:
    admin = platform_admin(harness)
    target = harness.user("Target.Person@example.com")
    harness.sign_in(target.email)  # a second session, before TOTP makes sign-in two-step
    org_id = harness.org(target, "Target Org")["id"]
    plant_totp(harness, target.account_id)
    found = admin.ok("GET", f"{ADMIN}/accounts", params={"q": "target.person"})["items"]
    assert [a["id"] for a in found] == [target.account_id]
    assert found[0]["email"] == "target.person@example.com" and found[0]["groups"] == []
    admins = admin.ok("GET", f"{ADMIN}/accounts", params={"q": admin.email})["items"]
    assert admins[0]["groups"] == ["SEQN-A"]

    view = admin.ok("GET", f"{ADMIN}/accounts/{target.account_id}")
    assert view["mfa_enabled"] is True and view["is_active"] is True
    assert view["orgs"] == [{"org_id": org_id, "name": "Target Org", "role": "owner"}]
    assert len(view["sessions"]) == 2
    assert set(view["sessions"][0]) == {
        "id",
        "created_at",
        "last_seen_at",
        "expires_at",
        "ip",
        "user_agent",
        "mfa",
    }
    unenrolled = platform_admin(harness, mfa=False)
    assert admin.ok("GET", f"{ADMIN}/accounts/{unenrolled.account_id}")["mfa_enabled"] is False
    pending = harness.user()
    plant_totp(harness, pending.account_id, confirmed=False)  # an unfinished enrolment protects nothing
    assert admin.ok("GET", f"{ADMIN}/accounts/{pending.account_id}")["mfa_enabled"] is False
    problem(admin.get(f"{ADMIN}/accounts/acc_nope"), 404, "not-found")


# --- session revocation (G29) --------------------------------------------------------------------


def test_g29_admin_revocation_kills_the_victims_cookie_on_its_next_request(harness: Harness) -> None:
    admin = platform_admin(harness)
    victim = harness.user()
    laptop = harness.sign_in(victim.email)
    victim.ok("GET", "/console/api/me")
    answer = admin.ok("POST", f"{ADMIN}/accounts/{victim.account_id}/sessions/revoke")
    assert answer == {"account_id": victim.account_id, "revoked": 2, "kept_current": False}
    for cookie in (victim, laptop):
        problem(cookie.get("/console/api/me"), 401, "unauthorized")
    [event] = admin_events(harness, "admin.sessions_revoked")
    assert (event.actor, event.target, event.metadata_) == (
        admin.account_id,
        victim.account_id,
        {"revoked": 2, "kept_current": False},
    )
    # Revocation is not deactivation: the account signs in again.
    harness.sign_in(victim.email).ok("GET", "/console/api/me")


def test_g29_admin_revoking_their_own_sessions_keeps_the_current_one(harness: Harness) -> None:
    admin = platform_admin(harness)
    phone = mfa_sign_in(harness, admin.email, MFA_SECRETS[admin.account_id].secret)  # the lost device
    answer = admin.ok("POST", f"{ADMIN}/accounts/{admin.account_id}/sessions/revoke")
    assert answer["revoked"] == 1 and answer["kept_current"] is True
    problem(phone.get("/console/api/me"), 401, "unauthorized")
    admin.ok("GET", f"{ADMIN}/orgs")


def test_revoking_sessions_of_an_unknown_account_is_404(harness: Harness) -> None:
    admin = platform_admin(harness)
    before = snapshot(harness)
    problem(admin.request("POST", f"{ADMIN}/accounts/acc_nope/sessions/revoke"), 404, "not-found")
    assert snapshot(harness) == before


# --- identity proxy (G26) ------------------------------------------------------------------------


def test_directory_users_and_groups(harness: Harness) -> None:
    admin = platform_admin(harness)
    second = platform_admin(harness, mfa=False)
    plain = harness.user("findme@example.com")
    plant_totp(harness, plain.account_id)
    plant_totp(harness, second.account_id, confirmed=False)  # a pending enrolment is no device
    [user] = admin.ok("GET", f"{ADMIN}/identity/users", params={"q": "FINDME"})["items"]
    assert user == {
        "id": plain.account_id,
        "email": "findme@example.com",
        "name": None,
        "is_active": True,
        "groups": [],
        "mfa_devices": 1,
    }
    page = admin.ok("GET", f"{ADMIN}/identity/users", params={"limit": 2})
    assert [u["id"] for u in page["items"]] == [admin.account_id, second.account_id]
    assert page["next_offset"] == 2 and page["items"][1]["mfa_devices"] == 0
    assert page["items"][0]["mfa_devices"] == 1
    assert page["items"][0]["groups"] == ["SEQN-A"]
    groups = admin.ok("GET", f"{ADMIN}/identity/groups")["items"]
    assert groups == [{"id": "SEQN-A", "name": "SEQN-A", "member_count": 2}]


def test_deactivated_account_cannot_sign_in_and_its_sessions_are_dead(harness: Harness) -> None:
    admin = platform_admin(harness)
    victim = harness.user()
    user = admin.ok("POST", f"{ADMIN}/identity/users/{victim.account_id}/deactivate")
    assert user["id"] == victim.account_id and user["is_active"] is False
    problem(victim.get("/console/api/me"), 401, "unauthorized")
    harness.client.cookies.clear()
    refused = harness.client.post("/console/api/sign-in", json={"email": victim.email, "password": PASSWORD})
    problem(refused, 401, "unauthorized")
    [proxy] = admin_events(harness, "identity.user_deactivated")
    assert (proxy.actor, proxy.target) == (admin.account_id, victim.account_id)
    assert proxy.metadata_ == {"provider": "builtin", "email": victim.email}
    [own] = admin_events(harness, "account.deactivated")
    # The backend's own event names the backend; the admin's event follows it in the same transaction.
    assert (own.actor, own.target, own.metadata_) == (
        "identity:builtin",
        victim.account_id,
        {"sessions_revoked": 1},
    )
    assert own.row_id == proxy.row_id - 1
    assert admin.ok("GET", f"{ADMIN}/accounts/{victim.account_id}")["is_active"] is False


def test_reset_mfa_removes_factors_and_recovery_codes_and_revokes_sessions(harness: Harness) -> None:
    admin = platform_admin(harness)
    victim = make_mfa_session(harness, harness.user())
    bystander = harness.user()
    plant_totp(harness, bystander.account_id)
    answer = admin.ok("POST", f"{ADMIN}/identity/users/{victim.account_id}/reset-mfa")
    assert answer == {"user_id": victim.account_id, "removed": 1}
    assert rows(harness, TotpFactor, owner_id=victim.account_id) == []
    assert rows(harness, RecoveryCode, owner_id=victim.account_id) == []
    assert len(rows(harness, RecoveryCode, owner_id=bystander.account_id)) == 10
    problem(victim.get("/console/api/me"), 401, "unauthorized")
    bystander.ok("GET", "/console/api/me")
    [event] = admin_events(harness, "identity.mfa_reset")
    assert event.metadata_ == {"provider": "builtin", "email": victim.email, "removed": 1}
    assert admin_events(harness, "account.mfa_reset")[0].metadata_ == {
        "factors_removed": 1,
        "sessions_revoked": 1,
    }
    # The account still signs in with its password (now without MFA).
    harness.sign_in(victim.email).ok("GET", "/console/api/me")


def test_identity_operations_on_unknown_users_are_404(harness: Harness) -> None:
    admin = platform_admin(harness)
    before = snapshot(harness)
    for op in ("deactivate", "reset-mfa"):
        problem(admin.request("POST", f"{ADMIN}/identity/users/acc_nope/{op}"), 404, "not-found")
    problem(admin.request("POST", f"{ADMIN}/identity/users/acc%00x/deactivate"), 404, "not-found")
    assert snapshot(harness) == before


def test_admins_cannot_deactivate_or_reset_themselves(harness: Harness) -> None:
    admin = platform_admin(harness)
    before = snapshot(harness)
    for op in ("deactivate", "reset-mfa"):
        body = problem(
            admin.request("POST", f"{ADMIN}/identity/users/{admin.account_id}/{op}"), 409, "conflict"
        )
        assert "another platform admin" in body["detail"]
    assert snapshot(harness) == before
    # Another platform admin can (L6: membership stays limited and reviewable).
    other = platform_admin(harness)
    other.ok("POST", f"{ADMIN}/identity/users/{admin.account_id}/deactivate")
    problem(admin.get(f"{ADMIN}/orgs"), 401, "unauthorized")


def test_builtin_backend_serves_the_identity_operations(harness: Harness) -> None:
    assert isinstance(harness.runtime.identity, BuiltinIdentityProvider)
    assert harness.runtime.authentik is None


def test_sessions_table_tracks_admin_mfa_flag(harness: Harness) -> None:
    """The helper's new session is the only MFA one; the account's other sessions stay as they were."""
    user = harness.user()
    other = harness.sign_in(user.email)
    upgraded = make_mfa_session(harness, user)
    live = {
        s.id: s.mfa for s in rows(harness, ConsoleSession, account_id=user.account_id) if not s.revoked_at
    }
    assert live == {session_id(other): False, session_id(upgraded): True}
