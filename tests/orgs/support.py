"""Helpers for the org and project tests: audit reads, database snapshots, plan changes."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update

from silver_auth.db.session import transaction
from silver_auth.orgs.models import Org
from tests.dbstate import snapshot
from tests.factories import ConsoleUser, Harness

__all__ = ["API", "audit", "audit_actions", "problem", "set_plan", "snapshot"]

API = "/console/api"
PROBLEM = "application/problem+json"


def audit(admin: ConsoleUser, org_id: str, **filters: str) -> list[dict[str, Any]]:
    """The org's audit events, newest first, read through the API as an admin or owner."""
    items: list[dict[str, Any]] = admin.ok("GET", f"{API}/orgs/{org_id}/audit", params=filters)["items"]
    return items


def audit_actions(admin: ConsoleUser, org_id: str) -> list[str]:
    return [event["action"] for event in audit(admin, org_id)]


def set_plan(harness: Harness, org_id: str, plan: str) -> None:
    """Plans are changed by platform admins, which come in a later issue: set it in the database."""

    async def work() -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            await db.execute(update(Org).where(Org.id == org_id).values(plan=plan))

    harness.run(work)


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """Assert a problem+json answer with this status and type; return its body."""
    assert response.status_code == status, f"{response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug), body
    assert body["status"] == status
    return body
