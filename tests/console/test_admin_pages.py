"""The console's platform-admin pages: the admin API's rule (SEQN-A and MFA in this session, G6, G7)
and its services (plans G27, support views G28, session revocation G29, identity proxy G26), as HTML."""

from __future__ import annotations

import httpx

from silver_auth.admin.guards import PLATFORM_ADMIN_ACCESS
from silver_auth.orgs.guards import ROLE_ACCESS
from tests.admin.support import ADMIN, admin_events, platform_admin, problem, session_id
from tests.authz.test_console_pages import PAGES
from tests.console.support import assert_page, parse
from tests.dbstate import snapshot
from tests.factories import ConsoleUser, Harness
from tests.orgs.support import audit, set_plan

ADMIN_PAGES = "/console/admin"


def form_post(user: ConsoleUser, path: str, **fields: str) -> httpx.Response:
    """A form post as the page sends it: the CSRF token in the hidden field, not a header."""
    data = {"csrf_token": user.csrf_token, **fields}
    return user.request("POST", path, csrf=False, data=data, follow_redirects=False)


def admin_link(response: httpx.Response) -> bool:
    return 'href="/console/admin"' in response.text


def test_admin_pages_declare_the_admin_apis_rule_not_an_org_role() -> None:
    """The org-role guard acts on role names only: the admin pages' `org_id` must not make it look
    the caller's membership up."""
    assert PLATFORM_ADMIN_ACCESS not in ROLE_ACCESS
    admin_rows = {key: access for key, access in PAGES.items() if key[1].startswith(ADMIN_PAGES)}
    assert admin_rows and set(admin_rows.values()) == {PLATFORM_ADMIN_ACCESS}


def test_a_platform_admin_changes_an_orgs_plan_and_it_is_audited(harness: Harness) -> None:
    admin = platform_admin(harness)
    owner = harness.user()
    org_id = harness.org(owner, "Acme")["id"]

    listing = admin.get(f"{ADMIN_PAGES}?q=acm")
    assert_page(listing, 200)
    assert f"/console/admin/orgs/{org_id}" in listing.text and "Free" in listing.text

    detail = assert_page(admin.get(f"{ADMIN_PAGES}/orgs/{org_id}"), 200)
    [plan_form] = [f for f in detail.forms if f["action"] == f"{ADMIN_PAGES}/orgs/{org_id}/plan"]
    assert plan_form["method"] == "post" and plan_form["fields"]["csrf_token"] == admin.csrf_token

    changed = form_post(admin, f"{ADMIN_PAGES}/orgs/{org_id}/plan", plan="pro")
    assert changed.status_code == 303, changed.text
    assert changed.headers["location"] == f"{ADMIN_PAGES}/orgs/{org_id}"
    assert "Plan: Pro" in admin.get(f"{ADMIN_PAGES}/orgs/{org_id}").text
    assert owner.ok("GET", f"/console/api/orgs/{org_id}")["plan"] == "pro"
    [event] = audit(owner, org_id, action="subscription.changed")
    assert event["actor"] == admin.account_id
    assert event["metadata"]["from"] == "free" and event["metadata"]["to"] == "pro"


def test_a_platform_admin_who_is_no_member_opens_the_org_and_a_member_who_is_no_admin_cannot(
    harness: Harness,
) -> None:
    admin = platform_admin(harness)
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    assert_page(admin.get(f"{ADMIN_PAGES}/orgs/{org_id}"), 200)  # no membership needed
    refused = owner.get(f"{ADMIN_PAGES}/orgs/{org_id}")  # the owner is no platform admin
    assert_page(refused, 403)
    assert "platform admins only" in refused.text
    assert_page(owner.get(f"/console/orgs/{org_id}"), 200)  # while the org's own page is theirs


def test_a_downgrade_over_usage_shows_the_reason_and_writes_nothing_unless_forced(
    harness: Harness,
) -> None:
    admin = platform_admin(harness)
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    set_plan(harness, org_id, "pro")
    for name in ("A", "B", "C", "D"):  # Free allows 3 projects
        harness.project(owner, org_id, name)
    before = snapshot(harness)
    refused = form_post(admin, f"{ADMIN_PAGES}/orgs/{org_id}/plan", plan="free")
    page = assert_page(refused, 409)
    assert "projects 4 of 3" in refused.text
    assert any(f["action"] == f"{ADMIN_PAGES}/orgs/{org_id}/plan" for f in page.forms)  # try again
    assert snapshot(harness) == before

    forced = form_post(admin, f"{ADMIN_PAGES}/orgs/{org_id}/plan", plan="free", force="yes")
    assert forced.status_code == 303, forced.text
    [event] = audit(owner, org_id, action="subscription.changed")
    assert event["metadata"]["forced"] is True


def test_an_unknown_plan_or_org_is_refused_as_a_page(harness: Harness) -> None:
    admin = platform_admin(harness)
    org_id = harness.org(harness.user())["id"]
    before = snapshot(harness)
    assert_page(form_post(admin, f"{ADMIN_PAGES}/orgs/{org_id}/plan", plan="enterprise"), 422)
    assert_page(form_post(admin, f"{ADMIN_PAGES}/orgs/org_nope/plan", plan="pro"), 404)
    assert_page(admin.get(f"{ADMIN_PAGES}/orgs/org_nope"), 404)
    assert_page(admin.get(f"{ADMIN_PAGES}/accounts/acct_nope"), 404)
    assert snapshot(harness) == before


def test_a_signed_in_non_admin_gets_a_403_page_and_nothing_is_written(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    before = snapshot(harness)
    for path in (ADMIN_PAGES, f"{ADMIN_PAGES}/accounts", f"{ADMIN_PAGES}/directory"):
        assert_page(owner.get(path), 403)
    refused = form_post(owner, f"{ADMIN_PAGES}/orgs/{org_id}/plan", plan="scale")
    assert_page(refused, 403)
    assert "SEQN-A" in refused.text
    assert_page(form_post(owner, f"{ADMIN_PAGES}/accounts/{owner.account_id}/sessions/revoke"), 403)
    assert snapshot(harness) == before
    assert owner.ok("GET", f"/console/api/orgs/{org_id}")["plan"] == "free"


def test_an_admin_without_mfa_in_this_session_is_refused_as_the_api_refuses(harness: Harness) -> None:
    admin = platform_admin(harness, mfa=False)
    org_id = harness.org(harness.user())["id"]
    problem(admin.get(f"{ADMIN}/orgs"), 403, "mfa-required")
    before = snapshot(harness)
    refused = admin.get(ADMIN_PAGES)
    assert_page(refused, 403)
    assert "Multi-factor sign-in required" in refused.text
    assert_page(form_post(admin, f"{ADMIN_PAGES}/orgs/{org_id}/plan", plan="pro"), 403)
    assert snapshot(harness) == before


def test_revoke_all_sessions_signs_the_account_out_everywhere(harness: Harness) -> None:
    admin = platform_admin(harness)
    target = harness.user()
    second = harness.sign_in(target.email)
    detail = admin.get(f"{ADMIN_PAGES}/accounts/{target.account_id}")
    page = assert_page(detail, 200)
    assert target.email in detail.text and "Revoke all sessions" in detail.text
    assert target.cookie not in detail.text and session_id(target) not in detail.text  # G28
    revoke = f"{ADMIN_PAGES}/accounts/{target.account_id}/sessions/revoke"
    assert any(form["action"] == revoke for form in page.forms)

    done = form_post(admin, revoke)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{ADMIN_PAGES}/accounts/{target.account_id}"
    for user in (target, second):
        assert user.get("/console/api/me").status_code == 401
    [event] = admin_events(harness, "admin.sessions_revoked")
    assert event.actor == admin.account_id and event.target == target.account_id
    assert event.metadata_["revoked"] == 2
    assert "no active session" in admin.get(f"{ADMIN_PAGES}/accounts/{target.account_id}").text


def test_revoking_your_own_sessions_keeps_this_one(harness: Harness) -> None:
    admin = platform_admin(harness)
    done = form_post(admin, f"{ADMIN_PAGES}/accounts/{admin.account_id}/sessions/revoke")
    assert done.status_code == 303, done.text
    assert admin.get("/console/api/me").status_code == 200


def test_accounts_are_searched_by_email(harness: Harness) -> None:
    admin = platform_admin(harness)
    wanted = harness.user("findme@example.com")
    harness.user("other@example.com")
    found = admin.get(f"{ADMIN_PAGES}/accounts?q=FINDME")
    assert_page(found, 200)
    assert f"/console/admin/accounts/{wanted.account_id}" in found.text
    assert "other@example.com" not in found.text
    none = admin.get(f"{ADMIN_PAGES}/accounts?q=nobody-here")
    assert "email contains “nobody-here”" in none.text
    assert_page(admin.get(f"{ADMIN_PAGES}/accounts?q=%00"), 422)


def test_the_orgs_list_is_paginated_by_the_services_offset(harness: Harness) -> None:
    admin = platform_admin(harness)
    owner = harness.user()
    set_plan(harness, harness.org(owner, "Org 00")["id"], "scale")
    for number in range(1, 26):
        harness.org(owner, f"Org {number:02}")
    first = admin.get(ADMIN_PAGES)
    assert "Org 24" in first.text and "Org 25" not in first.text
    assert 'href="/console/admin?after=25"' in first.text
    second = admin.get(f"{ADMIN_PAGES}?after=25")
    assert "Org 25" in second.text and "Org 24" not in second.text
    assert 'href="/console/admin"' in second.text  # the first page


def test_the_support_view_shows_key_prefixes_never_keys(harness: Harness) -> None:
    admin = platform_admin(harness)
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    project = harness.project(owner, org_id, "Web")
    key = harness.key(owner, project["id"])
    shown = admin.get(f"{ADMIN_PAGES}/orgs/{org_id}")
    assert_page(shown, 200)
    assert key["prefix"] in shown.text and key["key"] not in shown.text  # G28
    assert owner.email in shown.text and "Web" in shown.text


def test_the_directory_proxies_the_builtin_backend(harness: Harness) -> None:
    admin = platform_admin(harness)
    target = harness.user("leaver@example.com")
    directory = admin.get(f"{ADMIN_PAGES}/directory?q=leaver")
    page = assert_page(directory, 200)
    assert "builtin" in directory.text and "leaver@example.com" in directory.text
    assert "SEQN-A" in admin.get(f"{ADMIN_PAGES}/directory").text  # the groups
    deactivate = f"{ADMIN_PAGES}/directory/users/{target.account_id}/deactivate"
    assert any(form["action"] == deactivate for form in page.forms)
    everyone = parse(admin.get(f"{ADMIN_PAGES}/directory")).forms
    own_row = f"{ADMIN_PAGES}/directory/users/{admin.account_id}/"
    assert not any(form["action"].startswith(own_row) for form in everyone)  # the service would refuse

    done = form_post(admin, deactivate)
    assert done.status_code == 303, done.text
    assert target.get("/console/api/me").status_code == 401
    [event] = admin_events(harness, "identity.user_deactivated")
    assert event.actor == admin.account_id and event.target == target.account_id

    before = snapshot(harness)
    own = form_post(admin, f"{ADMIN_PAGES}/directory/users/{admin.account_id}/reset-mfa")
    assert_page(own, 409)
    assert "another platform admin must do this" in own.text
    assert snapshot(harness) == before


def test_the_header_links_the_admin_area_for_platform_admins_only(harness: Harness) -> None:
    admin = platform_admin(harness)
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    assert admin_link(admin.get("/console/orgs"))
    assert 'aria-current="page">Platform admin' in admin.get(ADMIN_PAGES).text
    assert not admin_link(owner.get("/console/orgs"))
    assert not admin_link(owner.get(f"/console/orgs/{org_id}"))
    assert parse(owner.get("/console/orgs")).inline == []
