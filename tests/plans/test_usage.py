"""What the plans say in public (`/v1/config`) and what an org sees of its use
(`/console/api/orgs/{org_id}/usage`), counted exactly as the quota checks count (L7)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from silver_auth.plans.service import PLAN_FIELDS, PLANS, Plan
from tests.endusers.support import backend, customer_project
from tests.factories import Harness
from tests.plans.support import HOOK_URL, assert_quota_problem, small_free_plan

API = "/console/api"


def test_l7_config_lists_each_plan_with_every_quota(harness: Harness) -> None:
    plans = harness.client.get("/v1/config").json()["plans"]
    assert [(p["id"], p["name"]) for p in plans] == [("free", "Free"), ("pro", "Pro"), ("scale", "Scale")]
    for published in plans:
        assert tuple(published) == PLAN_FIELDS
        assert published == asdict(PLANS[published["id"]])
    assert [p["audit_retention_days"] for p in plans] == [30, 180, 365]
    assert [p["requests_per_minute"] for p in plans] == [600, 6_000, 60_000]


def _by_quota(usage: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["quota"]: entry for entry in usage["quotas"]}


def test_l7_console_shows_the_orgs_use_of_each_quota(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    free: Plan = small_free_plan(monkeypatch)
    project = customer_project(harness)  # two keys (publishable and secret, test)
    owner, org_id = project.owner, project.org_id
    spare = harness.project(owner, org_id, "Spare")["id"]
    owner.ok("POST", f"{API}/orgs/{org_id}/invitations", 201, json={"role": "viewer"})
    owner.ok("POST", f"{API}/projects/{spare}/webhooks", 201, json={"url": HOOK_URL, "environment": "test"})
    for n in range(2):
        assert (
            backend(harness, project, "POST", "/users", json={"email": f"u{n}@example.com"}).status_code
            == 201
        )

    usage = owner.ok("GET", f"{API}/orgs/{org_id}/usage")

    assert (usage["org_id"], usage["plan"], usage["plan_name"]) == (org_id, "free", "Free")
    assert usage["retention"] == {"audit_days": 30, "webhook_event_days": 7}
    quotas = _by_quota(usage)
    assert list(quotas) == [
        "projects",
        "members",
        "end_users",
        "webhook_endpoints",
        "api_keys_per_project",
        "requests_per_minute",
    ]
    assert quotas["projects"] == {"quota": "projects", "per": "org", "limit": 2, "used": 2}
    assert quotas["members"] == {"quota": "members", "per": "org", "limit": 2, "used": 1, "pending": 1}
    projects = {project.project_id: "Web", spare: "Spare"}

    def each(counts: dict[str, int]) -> list[dict[str, Any]]:
        return [
            {"project_id": pid, "name": projects[pid], "used": counts.get(pid, 0)} for pid in sorted(projects)
        ]

    assert quotas["end_users"] == {
        "quota": "end_users",
        "per": "project",
        "limit": 2,
        "used": 2,
        "projects": each({project.project_id: 2}),
    }
    assert quotas["webhook_endpoints"]["used"] == 1
    assert quotas["webhook_endpoints"]["projects"] == each({spare: 1})
    assert quotas["api_keys_per_project"]["projects"] == each({project.project_id: 2})
    assert quotas["requests_per_minute"] == {
        "quota": "requests_per_minute",
        "per": "key",
        "limit": 600,
        "used": None,
    }
    # What the view says is used is what a refusal says is used.
    refused = backend(harness, project, "POST", "/users", json={"email": "more@example.com"})
    assert_quota_problem(refused, free, "end_users", quotas["end_users"]["used"])


def test_the_usage_view_follows_the_plan(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    member = harness.member(owner, org_id, "viewer")  # viewers may read it
    usage = member.ok("GET", f"{API}/orgs/{org_id}/usage")
    assert _by_quota(usage)["projects"]["limit"] == PLANS["free"].projects
    outsider = harness.user()
    assert outsider.get(f"{API}/orgs/{org_id}/usage").status_code == 404


def test_the_openapi_document_names_the_quota_problem_members(harness: Harness) -> None:
    document = harness.client.get("/openapi.json").json()
    problem = document["components"]["schemas"]["Problem"]["properties"]
    assert {"plan", "plan_name", "quota", "limit", "used"} <= problem.keys()
    paths = document["paths"]
    for path, method in (
        ("/console/api/orgs/{org_id}/projects", "post"),
        ("/console/api/orgs/{org_id}/invitations", "post"),
        ("/console/api/invitations/accept", "post"),
        ("/console/api/projects/{project_id}/keys", "post"),
        ("/console/api/projects/{project_id}/webhooks", "post"),
        ("/v1/backend/users", "post"),
    ):
        declared = paths[path][method]["responses"]["403"]["description"]
        assert "quota-exceeded" in declared, (path, declared)
    assert "OrgUsage" in str(paths["/console/api/orgs/{org_id}/usage"]["get"]["responses"]["200"])
