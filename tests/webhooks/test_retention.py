"""Events are kept as long as the org's plan says (Free 7 days, Pro 30), then purged with their deliveries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from silver_auth.core import clock
from silver_auth.db.session import transaction
from silver_auth.ops.housekeeping import purge_expired
from silver_auth.orgs.models import Org
from silver_auth.webhooks.events import EventType
from silver_auth.webhooks.models import WebhookEvent
from silver_auth.webhooks.outbox import emit
from tests.factories import Harness
from tests.webhooks.support import count_rows


def _emit_for(harness: Harness, project: dict[str, Any], plan: str) -> None:
    async def work() -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            await db.execute(update(Org).where(Org.id == project["org_id"]).values(plan=plan))
            emit(db, EventType.WEBHOOK_TEST, {"n": 1}, project_id=project["id"], environment="live")
            emit(db, EventType.PROJECT_CREATED, {"id": project["id"]}, org_id=project["org_id"])

    harness.run(work)


def _purge(harness: Harness) -> dict[str, int]:
    async def work() -> dict[str, int]:
        async with transaction(harness.runtime.sessionmaker) as db:
            return await purge_expired(db)

    return harness.run(work)


def _events_of(harness: Harness, project: dict[str, Any]) -> int:
    """Events of the project or its org: the ones written here and those its creation made."""
    return count_rows(harness, WebhookEvent, project_id=project["id"]) + count_rows(
        harness, WebhookEvent, org_id=project["org_id"]
    )


def test_events_are_purged_after_the_plans_retention(harness: Harness) -> None:
    owner = harness.user()
    free = harness.project(owner, harness.org(owner, "Free")["id"])
    pro = harness.project(owner, harness.org(owner, "Pro")["id"])
    _emit_for(harness, free, "free")
    _emit_for(harness, pro, "pro")
    kept = {"free": _events_of(harness, free), "pro": _events_of(harness, pro)}
    assert kept["free"] >= 2 and kept["pro"] >= 2
    assert _purge(harness)["webhook_events"] == 0
    clock.advance(8 * 86400)
    assert _purge(harness)["webhook_events"] == kept["free"]  # the Pro org keeps 30 days
    assert (_events_of(harness, free), _events_of(harness, pro)) == (0, kept["pro"])
    clock.advance(23 * 86400)
    assert _purge(harness)["webhook_events"] == kept["pro"]
    assert _events_of(harness, pro) == 0
