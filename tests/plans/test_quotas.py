"""Plan quotas (L7) on every path that creates something: filled to the limit, one more is refused with
the one `quota-exceeded` problem naming the plan and the limit, and writes nothing (no row, no audit
event, no webhook outbox event). Concurrent creates stop at the limit (the org row, or for keys the
project row, is locked while counting)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from silver_auth.plans.service import PLANS, Plan
from tests.concurrent import send_together
from tests.dbstate import row_count, snapshot
from tests.endusers.support import (
    END_USER_PASSWORD,
    REDIRECT,
    Browser,
    backend,
    customer_project,
    warm,
)
from tests.factories import ConsoleUser, Harness
from tests.plans.support import (
    HOOK_URL,
    assert_quota_problem,
    assert_wrote_nothing,
    backend_request,
    console_request,
    set_plan,
    small_free_plan,
)

API = "/console/api"


@pytest.fixture
def free(monkeypatch: pytest.MonkeyPatch) -> Plan:
    return small_free_plan(monkeypatch)


def _statuses(responses: list[Any]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


# --- projects per org ----------------------------------------------------------------------------


def test_l7_a_project_past_the_quota_is_refused_and_writes_nothing(harness: Harness, free: Plan) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    for name in ("One", "Two"):
        harness.project(owner, org_id, name)
    before = snapshot(harness)

    body = assert_quota_problem(
        owner.post(f"{API}/orgs/{org_id}/projects", json={"name": "Three"}), free, "projects", 2
    )

    assert body["detail"] == "the Free plan allows 2 projects per org"
    assert_wrote_nothing(harness, before)
    other = harness.org(owner, "Other")["id"]  # the quota is per org
    harness.project(owner, other)


def test_l7_concurrent_project_creates_stop_at_the_quota(harness: Harness, free: Plan) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    answers = send_together(
        harness,
        [
            console_request(owner, "POST", f"{API}/orgs/{org_id}/projects", json={"name": f"P{n}"})
            for n in range(6)
        ],
    )
    assert _statuses(answers) == {201: 2, 403: 4}, [a.text for a in answers]
    assert len(owner.ok("GET", f"{API}/orgs/{org_id}/projects")["items"]) == 2


# --- members per org: at invitation and at acceptance --------------------------------------------


def test_l7_an_invitation_past_the_member_quota_is_refused(harness: Harness, free: Plan) -> None:
    """A pending invitation holds a place: every link handed out can be used."""
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    pending = owner.ok("POST", f"{API}/orgs/{org_id}/invitations", 201, json={"role": "viewer"})
    before = snapshot(harness)

    body = assert_quota_problem(
        owner.post(f"{API}/orgs/{org_id}/invitations", json={"role": "viewer"}), free, "members", 2
    )

    assert "pending invitations count" in body["detail"]
    assert_wrote_nothing(harness, before)
    owner.ok("DELETE", f"{API}/invitations/{pending['id']}", 204)  # revoking frees the place
    owner.ok("POST", f"{API}/orgs/{org_id}/invitations", 201, json={"role": "viewer"})


def test_l7_accepting_an_invitation_past_the_member_quota_is_refused(harness: Harness) -> None:
    """Links made on a larger plan, then the org moved to Free (3 members): the fourth member's link is
    refused when used, writes nothing, and stays usable once a place is free."""
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    set_plan(harness, org_id, "pro")
    tokens = [
        owner.ok("POST", f"{API}/orgs/{org_id}/invitations", 201, json={"role": "viewer"})["token"]
        for _ in range(3)
    ]
    set_plan(harness, org_id, "free")
    joined = [harness.user() for _ in range(2)]
    for user, token in zip(joined, tokens, strict=False):
        user.ok("POST", f"{API}/invitations/accept", json={"token": token})
    late = harness.user()
    before = snapshot(harness)

    assert_quota_problem(
        late.post(f"{API}/invitations/accept", json={"token": tokens[2]}), PLANS["free"], "members", 3
    )

    assert_wrote_nothing(harness, before)
    assert late.get(f"{API}/orgs/{org_id}").status_code == 404  # not a member
    owner.ok("DELETE", f"{API}/orgs/{org_id}/members/{joined[0].account_id}", 204)
    late.ok("POST", f"{API}/invitations/accept", json={"token": tokens[2]})
    assert len(owner.ok("GET", f"{API}/orgs/{org_id}/members")["items"]) == 3


def test_l7_concurrent_acceptances_take_only_the_places_left(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    set_plan(harness, org_id, "pro")
    tokens = [
        owner.ok("POST", f"{API}/orgs/{org_id}/invitations", 201, json={"role": "viewer"})["token"]
        for _ in range(5)
    ]
    set_plan(harness, org_id, "free")  # 3 members: the owner and two places
    users = [harness.user() for _ in tokens]
    answers = send_together(
        harness,
        [
            console_request(user, "POST", f"{API}/invitations/accept", json={"token": token})
            for user, token in zip(users, tokens, strict=True)
        ],
    )
    assert _statuses(answers) == {200: 2, 403: 3}, [a.text for a in answers]
    assert all(a.json()["quota"] == "members" for a in answers if a.status_code == 403)
    assert len(owner.ok("GET", f"{API}/orgs/{org_id}/members")["items"]) == 3


# --- end-users per project -----------------------------------------------------------------------


def test_l7_an_end_user_past_the_quota_is_refused_on_every_path(harness: Harness, free: Plan) -> None:
    """The backend API and the hosted sign-up page (the Authentik first sign-in:
    tests/authentik/test_hosted_sign_in.py) all create through one function, under one check."""
    project = customer_project(harness)
    live_key = harness.key(project.owner, project.project_id, "secret", "live")["key"]
    warm(harness, project.publishable)
    assert harness.backend("/v1/backend/project", live_key).status_code == 200  # its first use is recorded
    for n in range(2):
        assert (
            backend(harness, project, "POST", "/users", json={"email": f"u{n}@example.com"}).status_code
            == 201
        )
    before = snapshot(harness)

    refused = backend(harness, project, "POST", "/users", json={"email": "third@example.com"})
    assert_quota_problem(refused, free, "end_users", 2)
    # The live environment is the same project: its users count together with the test ones.
    live = harness.client.post(
        "/v1/backend/users",
        json={"email": "live@example.com"},
        headers={"authorization": f"Bearer {live_key}"},
    )
    assert_quota_problem(live, free, "end_users", 2)
    assert_wrote_nothing(harness, before)

    browser = Browser(harness)
    browser.get(project.pages("sign-up"), redirect_url=REDIRECT)
    page = browser.submit(
        project.pages("sign-up"), {"email": "page@example.com", "password": END_USER_PASSWORD}
    )
    assert page.status_code == 403 and "the Free plan allows 2 end-users per project" in page.text
    assert row_count(harness, "end_users") == 2


def test_l7_end_users_are_counted_per_project(harness: Harness, free: Plan) -> None:
    """Two projects of one org each take the plan's end-user quota (it used to be counted per org)."""
    first = customer_project(harness)
    second_id = harness.project(first.owner, first.org_id, "Second")["id"]
    second_key = harness.key(first.owner, second_id, "secret", "test")["key"]
    for n in range(2):
        assert (
            backend(harness, first, "POST", "/users", json={"email": f"a{n}@example.com"}).status_code == 201
        )
    for n in range(2):
        made = harness.client.post(
            "/v1/backend/users",
            json={"email": f"b{n}@example.com"},
            headers={"authorization": f"Bearer {second_key}"},
        )
        assert made.status_code == 201, made.text
    assert_quota_problem(
        backend(harness, first, "POST", "/users", json={"email": "a2@example.com"}), free, "end_users", 2
    )


def test_l7_concurrent_end_user_creates_stop_at_the_quota(harness: Harness, free: Plan) -> None:
    project = customer_project(harness)
    answers = send_together(
        harness,
        [
            backend_request(project.secret, "POST", "/users", json={"email": f"c{n}@example.com"})
            for n in range(6)
        ],
    )
    assert _statuses(answers) == {201: 2, 403: 4}, [a.text for a in answers]
    assert row_count(harness, "end_users") == 2


# --- webhook endpoints per project ---------------------------------------------------------------


def _endpoint(user: ConsoleUser, project_id: str) -> Any:
    return user.post(f"{API}/projects/{project_id}/webhooks", json={"url": HOOK_URL, "environment": "test"})


def test_l7_a_webhook_endpoint_past_the_quota_is_refused(harness: Harness, free: Plan) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    project_id = harness.project(owner, org_id)["id"]
    assert _endpoint(owner, project_id).status_code == 201
    before = snapshot(harness)

    body = assert_quota_problem(_endpoint(owner, project_id), free, "webhook_endpoints", 1)

    assert body["detail"] == "the Free plan allows 1 webhook endpoint per project"
    assert "whsec_" not in str(body)
    assert_wrote_nothing(harness, before)
    other = harness.project(owner, org_id, "Other")["id"]  # per project
    assert _endpoint(owner, other).status_code == 201


def test_l7_concurrent_endpoint_creates_stop_at_the_quota(harness: Harness, free: Plan) -> None:
    owner = harness.user()
    project_id = harness.project(owner, harness.org(owner)["id"])["id"]
    body = {"url": HOOK_URL, "environment": "test"}
    answers = send_together(
        harness,
        [
            console_request(owner, "POST", f"{API}/projects/{project_id}/webhooks", json=body)
            for _ in range(4)
        ],
    )
    assert _statuses(answers) == {201: 1, 403: 3}, [a.text for a in answers]
    assert len(owner.ok("GET", f"{API}/projects/{project_id}/webhooks")["items"]) == 1


# --- API keys per project ------------------------------------------------------------------------


def test_l7_an_api_key_past_the_quota_is_refused(harness: Harness, free: Plan) -> None:
    owner = harness.user()
    project_id = harness.project(owner, harness.org(owner)["id"])["id"]
    keys = [harness.key(owner, project_id, kind, "test") for kind in ("secret", "secret", "publishable")]
    before = snapshot(harness)

    body = assert_quota_problem(
        owner.post(f"{API}/projects/{project_id}/keys", json={"kind": "secret", "environment": "live"}),
        free,
        "api_keys_per_project",
        3,
    )

    assert body["detail"] == "the Free plan allows 3 active API keys per project; revoke unused ones"
    assert_wrote_nothing(harness, before)
    # A rotation replaces its key: not refused at the limit, and the old one, in its grace period, no
    # longer holds a place.
    owner.ok("POST", f"{API}/keys/{keys[0]['id']}/rotate", 201, json={"grace_seconds": 600})
    assert (
        owner.post(
            f"{API}/projects/{project_id}/keys", json={"kind": "secret", "environment": "live"}
        ).status_code
        == 403
    )
    owner.ok("DELETE", f"{API}/keys/{keys[1]['id']}")  # revoking frees a place
    harness.key(owner, project_id, "secret", "live")
