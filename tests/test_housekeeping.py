"""`silver-auth purge`: expired sessions, codes, login states and stale failure records go; live ones
stay, and so does the audit log within the org's plan retention (L7; tests/audit/test_retention.py)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from silver_auth.alerts.models import Alert, AlertDelivery
from silver_auth.core import clock
from silver_auth.db.session import transaction
from silver_auth.ops.housekeeping import purge_expired
from tests.audit.support import events, verify
from tests.dbstate import snapshot
from tests.endusers.support import customer_project, exchange, sign_up
from tests.factories import PASSWORD, Harness


def _purge(harness: Harness) -> dict[str, int]:
    async def work() -> dict[str, int]:
        async with transaction(harness.runtime.sessionmaker) as db:
            return await purge_expired(db)

    return harness.run(work)


def test_purge_drops_only_what_has_expired(harness: Harness) -> None:
    project = customer_project(harness)
    _, used_code = sign_up(harness, project, "old@example.com")
    assert exchange(harness, project, used_code).status_code == 200
    sign_up(harness, project, "unexchanged@example.com")  # its code is never used
    harness.client.post("/console/api/sign-in", json={"email": project.owner.email, "password": "wrong" * 3})
    # A month and a half later every one of those has expired...
    clock.advance(45 * 24 * 3600)
    # ...and these are fresh.
    fresh_owner = harness.sign_in(project.owner.email, PASSWORD)
    _, fresh_code = sign_up(harness, project, "new@example.com")
    before = snapshot(harness)
    logged = events(harness)

    counts = _purge(harness)

    after = snapshot(harness)
    assert counts["console_sessions"] >= 1 and counts["end_user_sessions"] == 2
    assert counts["end_user_codes"] >= 1 and counts["auth_failures"] >= 1
    # The audit log keeps what the Free plan keeps (30 days) and every event of no org; the chain
    # still verifies across what went (G27, L7).
    horizon = clock.now() - timedelta(days=30)
    kept = [e.id for e in logged if e.org_id != project.org_id or e.at >= horizon]
    assert [e.id for e in events(harness) if e.action != "audit.events_purged"] == kept
    assert counts["audit_events"] == len(logged) - len(kept) > 0
    assert verify(harness).broken is None
    assert len(after["end_user_sessions"]) == 1 and len(after["end_user_codes"]) == 1
    assert len(after["end_users"]) == len(before["end_users"])  # users are not sessions
    fresh_owner.ok("GET", "/console/api/me")
    assert exchange(harness, project, fresh_code).status_code == 200
    assert _purge(harness) == dict.fromkeys(counts, 0)  # nothing more to do


def _alert(alert_id: str, *, state: str, cleared_days_ago: float | None) -> Alert:
    now = clock.now()
    return Alert(
        id=alert_id,
        kind="test_kind",
        subject=alert_id,
        message="m",
        context={},
        state=state,
        raised_at=now - timedelta(days=400),
        last_seen_at=now - timedelta(days=400),
        occurrences=1,
        notified_at=now - timedelta(days=400),
        cleared_at=None if cleared_days_ago is None else now - timedelta(days=cleared_days_ago),
    )


def test_purge_drops_alerts_cleared_half_a_year_ago_with_their_deliveries(harness: Harness) -> None:
    rows = {
        "alr_old": _alert("alr_old", state="cleared", cleared_days_ago=200),
        "alr_recent": _alert("alr_recent", state="cleared", cleared_days_ago=20),
        "alr_standing": _alert("alr_standing", state="raised", cleared_days_ago=None),
    }

    async def seed() -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            db.add_all(rows.values())
            await db.flush()
            db.add_all(
                AlertDelivery(
                    id=f"alrd_{alert_id}",
                    alert_id=alert_id,
                    event="raised",
                    channel_index=1,
                    channel="json://127.0.0.1",
                    service="JSON",
                    status="sent",
                    at=clock.now() - timedelta(days=400),
                )
                for alert_id in rows
            )

    harness.run(seed)
    assert _purge(harness)["alerts"] == 1

    async def left() -> tuple[list[str], list[str]]:
        async with transaction(harness.runtime.sessionmaker) as db:
            alerts = await db.scalars(select(Alert.id).order_by(Alert.id))
            deliveries = await db.scalars(select(AlertDelivery.alert_id).order_by(AlertDelivery.alert_id))
            return list(alerts), list(deliveries)

    assert harness.run(left) == (["alr_recent", "alr_standing"], ["alr_recent", "alr_standing"])
