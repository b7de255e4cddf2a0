"""Small plans for quota tests (filling the real Free plan's 1,000 end-users is slow), and the checks
every refusal must pass: the one problem shape, and nothing written."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
from sqlalchemy import update

from silver_auth.core.errors import PROBLEM_BASE, PROBLEM_CONTENT_TYPE
from silver_auth.db.session import transaction
from silver_auth.orgs.models import Org
from silver_auth.plans import service as plans
from silver_auth.plans.service import Plan, QuotaName, allowance
from tests.concurrent import Request
from tests.dbstate import snapshot
from tests.factories import ConsoleUser, Harness

SMALL = {"projects": 2, "members": 2, "end_users": 2, "webhook_endpoints": 1, "api_keys_per_project": 3}
HOOK_URL = "http://127.0.0.1:9/hooks"
"""A test-environment receiver on loopback (the discard port): allowed without any DNS lookup."""


def small_free_plan(monkeypatch: Any) -> Plan:
    """The Free plan with limits a test can reach in a few requests."""
    plan = replace(plans.PLANS["free"], **SMALL)
    monkeypatch.setitem(plans.PLANS, "free", plan)
    return plan


def assert_quota_problem(response: httpx.Response, plan: Plan, quota: QuotaName, used: int) -> dict[str, Any]:
    """The one refusal (L7): 403 `quota-exceeded` naming the plan (id and name), the quota, its limit."""
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith(PROBLEM_CONTENT_TYPE)
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_BASE + "quota-exceeded"
    named = (body["plan"], body["plan_name"], body["quota"], body["limit"], body["used"])
    assert named == (plan.id, plan.name, quota, plan.limit(quota), used), body
    assert body["detail"].startswith(allowance(plan, quota)), body["detail"]
    return body


def assert_wrote_nothing(harness: Harness, before: dict[str, list[str]]) -> None:
    """Every table as it was: no row, no audit event, no webhook outbox event."""
    after = snapshot(harness)
    assert after["audit_events"] == before["audit_events"]
    assert after["webhook_events"] == before["webhook_events"]
    assert after == before


def console_request(user: ConsoleUser, method: str, path: str, **kwargs: Any) -> Request:
    """One console request for `send_together`, with the user's own cookie and CSRF token."""
    headers = {"cookie": f"{user.cookie_name}={user.cookie}", "x-csrf-token": user.csrf_token}
    return method, path, {"headers": headers, **kwargs}


def backend_request(secret_key: str, method: str, path: str, **kwargs: Any) -> Request:
    return method, f"/v1/backend{path}", {"headers": {"authorization": f"Bearer {secret_key}"}, **kwargs}


def set_plan(harness: Harness, org_id: str, plan_id: str) -> None:
    """What a platform admin's forced plan change leaves behind (admin.change_plan), without the admin."""

    async def work() -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            await db.execute(update(Org).where(Org.id == org_id).values(plan=plan_id))

    harness.run(work)
