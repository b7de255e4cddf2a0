"""The pull API (GET /v1/backend/events): a receiver that was down catches up, in order, with the same ids
its webhooks carry, for as long as the org's plan keeps events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core import clock
from silver_auth.db.session import transaction
from silver_auth.orgs.models import Org
from silver_auth.plans.service import plan_for
from silver_auth.webhooks.delivery import DeliveryWorker
from silver_auth.webhooks.events import EventType
from silver_auth.webhooks.outbox import emit
from tests.conftest import BACKEND
from tests.factories import ConsoleUser, Harness
from tests.webhooks.support import deliver, hooks, receiver

__all__ = ["hooks"]

EVENTS = "/v1/backend/events"
CONSOLE = "/console/api"
PROBLEM = "application/problem+json"
DAY = 86_400.0


@dataclass(frozen=True)
class Place:
    """A project environment and the secret key that reads its events."""

    org_id: str
    project_id: str
    environment: str
    key: str


def place(harness: Harness, owner: ConsoleUser, org_id: str, project_id: str, environment: str) -> Place:
    return Place(
        org_id, project_id, environment, harness.key(owner, project_id, "secret", environment)["key"]
    )


def emit_now(harness: Harness, kind: EventType, *, at: Place | None = None, org_id: str | None = None) -> str:
    """One event committed on its own, as a service's transaction would write it; answers its id."""

    async def work() -> str:
        async with transaction(harness.runtime.sessionmaker) as db:
            if at is not None:
                event = emit(
                    db, kind, {"n": kind.value}, project_id=at.project_id, environment=at.environment
                )
            else:
                event = emit(db, kind, {"org": org_id}, org_id=org_id)
            return event.id

    return harness.run(work)


def sequence(harness: Harness) -> int:
    runtime = harness.runtime
    worker = DeliveryWorker(runtime.sessionmaker, runtime.sealer, runtime.settings)
    return harness.run(worker.sequence)


def page(harness: Harness, key: str, after: str | None = None, limit: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if after is not None:
        params["after"] = after
    if limit is not None:
        params["limit"] = limit
    response = harness.backend(EVENTS, key, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def drain(harness: Harness, key: str, after: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """Every event after `after`, page by page; answers them and the cursor to poll with next."""
    items: list[dict[str, Any]] = []
    while True:
        got = page(harness, key, after)
        items += got["items"]
        after = got["next"]
        if not got["has_more"]:
            return items, after


@dataclass
class World:
    owner: ConsoleUser
    live: Place
    test: Place
    sibling: Place
    """Another project of the same org."""
    stranger: Place
    """A project of another org."""
    cursors: dict[str, str]
    """Per key: where the listing stood once the world was built (whatever its setup emitted)."""


def world(harness: Harness) -> World:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    project_id = harness.project(owner, org_id, "Web")["id"]
    sibling_id = harness.project(owner, org_id, "Mobile")["id"]
    other_owner = harness.user()
    other_org = harness.org(other_owner, "Elsewhere")["id"]
    other_project = harness.project(other_owner, other_org)["id"]
    built = World(
        owner,
        place(harness, owner, org_id, project_id, "live"),
        place(harness, owner, org_id, project_id, "test"),
        place(harness, owner, org_id, sibling_id, "live"),
        place(harness, other_owner, other_org, other_project, "live"),
        {},
    )
    sequence(harness)
    for where in (built.live, built.test, built.sibling, built.stranger):
        built.cursors[where.key] = drain(harness, where.key)[1]
    return built


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


def test_a_key_lists_its_project_environment_and_its_org_only(hooks: Harness) -> None:
    w = world(hooks)
    live_user = emit_now(hooks, EventType.USER_CREATED, at=w.live)
    test_user = emit_now(hooks, EventType.USER_CREATED, at=w.test)
    sibling_user = emit_now(hooks, EventType.USER_CREATED, at=w.sibling)
    stranger_user = emit_now(hooks, EventType.USER_CREATED, at=w.stranger)
    member = emit_now(hooks, EventType.ORG_MEMBER_ADDED, org_id=w.live.org_id)
    project = emit_now(hooks, EventType.PROJECT_CREATED, org_id=w.live.org_id)
    stranger_member = emit_now(hooks, EventType.ORG_MEMBER_ADDED, org_id=w.stranger.org_id)
    live_session = emit_now(hooks, EventType.SESSION_CREATED, at=w.live)
    # A test event goes to its one endpoint, never to the pull API.
    endpoint = w.owner.ok(
        "POST",
        f"{CONSOLE}/projects/{w.live.project_id}/webhooks",
        201,
        json={"url": "http://127.0.0.1:9/hooks", "environment": "test"},
    )
    test_event = w.owner.ok("POST", f"{CONSOLE}/webhooks/{endpoint['id']}/test", 202)["id"]
    sequence(hooks)

    seen = {where: drain(hooks, where.key, w.cursors[where.key])[0] for where in (w.live, w.test, w.sibling)}
    assert ids(seen[w.live]) == [live_user, member, project, live_session]
    assert ids(seen[w.test]) == [test_user, member, project]
    assert ids(seen[w.sibling]) == [sibling_user, member, project]
    stranger = drain(hooks, w.stranger.key, w.cursors[w.stranger.key])[0]
    assert ids(stranger) == [stranger_user, stranger_member]
    every = [i for items in (*seen.values(), stranger) for i in ids(items)]
    assert test_event not in every
    # Oldest first by cursor; each item is the body a webhook would carry.
    cursors = [int(item["cursor"]) for item in seen[w.live]]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    first = seen[w.live][0]
    assert (
        first["type"] == "user.created" and first["version"] == 1 and first["data"] == {"n": "user.created"}
    )
    assert first["timestamp"].endswith("Z")
    assert seen[w.live][1]["type"] == "org.member.added"


def test_paging_with_after_then_polling_with_next(hooks: Harness) -> None:
    w = world(hooks)
    made = [emit_now(hooks, EventType.USER_UPDATED, at=w.live) for _ in range(5)]
    sequence(hooks)
    cursor = w.cursors[w.live.key]
    pages = []
    for _ in range(3):
        got = page(hooks, w.live.key, cursor, limit=2)
        pages.append(got)
        cursor = got["next"]
    assert [ids(p["items"]) for p in pages] == [made[0:2], made[2:4], made[4:5]]
    assert [p["has_more"] for p in pages] == [True, True, False]
    assert [p["next"] for p in pages] == [p["items"][-1]["cursor"] for p in pages]
    # Polling with the last `next`: nothing new, and the same cursor back to poll with again.
    idle = page(hooks, w.live.key, cursor)
    assert idle == {"items": [], "next": cursor, "has_more": False}
    later = [emit_now(hooks, EventType.USER_DELETED, at=w.live) for _ in range(2)]
    # Committed but not yet sequenced: not listed yet (a position is what makes an event readable).
    assert page(hooks, w.live.key, cursor)["items"] == []
    sequence(hooks)
    fresh = page(hooks, w.live.key, cursor)
    assert ids(fresh["items"]) == later and fresh["has_more"] is False
    assert page(hooks, w.live.key, fresh["next"])["items"] == []
    # From the start (no `after`, or an empty one), the same order.
    assert ids(drain(hooks, w.live.key)[0])[-7:] == made + later
    assert ids(drain(hooks, w.live.key, "")[0])[-7:] == made + later


def test_pull_ids_are_the_webhook_ids_of_the_deliveries(hooks: Harness) -> None:
    w = world(hooks)
    with receiver() as target:
        w.owner.ok(
            "POST",
            f"{CONSOLE}/projects/{w.test.project_id}/webhooks",
            201,
            json={"url": target.url, "environment": "test"},
        )
        made = [
            emit_now(hooks, EventType.USER_CREATED, at=w.test),
            emit_now(hooks, EventType.ORG_MEMBER_ADDED, org_id=w.test.org_id),
            emit_now(hooks, EventType.SESSION_REVOKED, at=w.test),
        ]
        deliver(hooks)
        pushed = [(r.headers["webhook-id"], json.loads(r.body)) for r in target.received]
    pulled = drain(hooks, w.test.key, w.cursors[w.test.key])[0]
    assert [i for i, _ in pushed] == ids(pulled) == made
    for (_, body), item in zip(pushed, pulled, strict=True):
        assert {k: item[k] for k in ("type", "version", "timestamp", "data")} == body


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "0x10", " 1", "1e3", "٣", "²"])
def test_a_malformed_cursor_is_refused(hooks: Harness, after: str) -> None:
    w = world(hooks)
    response = hooks.backend(EVENTS, w.live.key, params={"after": after})
    assert response.status_code == 422, (after, response.text)
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith("/invalid-request")


def test_an_overlong_cursor_is_refused(hooks: Harness) -> None:
    w = world(hooks)
    response = hooks.backend(EVENTS, w.live.key, params={"after": "9" * 19})
    assert response.status_code == 422 and response.headers["content-type"].startswith(PROBLEM)


def test_the_pull_api_needs_a_secret_key(hooks: Harness) -> None:
    owner = hooks.user()
    org_id = hooks.org(owner)["id"]
    project_id = hooks.project(owner, org_id)["id"]
    publishable = hooks.key(owner, project_id, "publishable", "live")["key"]
    hooks.client.cookies.clear()
    for headers in ({}, {"authorization": "Bearer sk_live_nope"}, {"authorization": f"Bearer {publishable}"}):
        response = hooks.client.get(EVENTS, headers=headers, params={"after": "not-a-cursor"})
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["type"].endswith("/unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
    # A console session is not a backend key either.
    assert owner.get(EVENTS).status_code == 401


def set_plan(harness: Harness, org_id: str, plan: str) -> None:
    async def work() -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            await db.execute(update(Org).where(Org.id == org_id).values(plan=plan))

    harness.run(work)


@pytest.mark.parametrize("plan", ["free", "pro"])
def test_events_are_kept_for_the_plan_retention_then_gone(hooks: Harness, plan: str) -> None:
    w = world(hooks)
    set_plan(hooks, w.live.org_id, plan)
    days = plan_for(plan).event_retention_days
    kept = [
        emit_now(hooks, EventType.USER_CREATED, at=w.live),
        emit_now(hooks, EventType.PROJECT_CREATED, org_id=w.live.org_id),
    ]
    sequence(hooks)
    start = w.cursors[w.live.key]
    clock.advance((days - 1) * DAY)
    assert ids(drain(hooks, w.live.key, start)[0]) == kept
    newer = emit_now(hooks, EventType.USER_UPDATED, at=w.live)
    sequence(hooks)
    clock.advance(2 * DAY)  # the first two are now older than the retention; the third is not
    assert ids(drain(hooks, w.live.key, start)[0]) == [newer]
    assert ids(drain(hooks, w.live.key)[0]) == [newer]


@pytest.mark.skipif(BACKEND != "postgres", reason="two open write transactions need Postgres")
def test_an_event_committed_late_is_listed_after_the_cursor(hooks: Harness) -> None:
    """A inserts first (the lower row id) and commits last: the sequencer positions events as they become
    visible, so a reader that already passed B's cursor still gets A next, not never."""
    w = world(hooks)
    sessionmaker = hooks.runtime.sessionmaker
    open_a: dict[str, AsyncSession] = {}

    async def start_a() -> tuple[str, int]:
        db = sessionmaker()
        open_a["db"] = db
        event = emit(
            db, EventType.USER_CREATED, {"who": "a"}, project_id=w.live.project_id, environment="live"
        )
        await db.flush()
        return event.id, event.row_id

    async def commit_b() -> tuple[str, int]:
        async with transaction(sessionmaker) as db:
            event = emit(
                db, EventType.USER_CREATED, {"who": "b"}, project_id=w.live.project_id, environment="live"
            )
            await db.flush()
            return event.id, event.row_id

    async def commit_a() -> None:
        db = open_a.pop("db")
        await db.commit()
        await db.close()

    a_id, a_row = hooks.run(start_a)
    try:
        b_id, b_row = hooks.run(commit_b)
        assert a_row < b_row
        assert sequence(hooks) == 1  # only B is visible
        first = page(hooks, w.live.key, w.cursors[w.live.key])
        assert ids(first["items"]) == [b_id]
        hooks.run(commit_a)
    finally:
        if "db" in open_a:
            hooks.run(open_a["db"].close)
    assert sequence(hooks) == 1
    second = page(hooks, w.live.key, first["next"])
    assert ids(second["items"]) == [a_id]
    assert int(second["items"][0]["cursor"]) > int(first["next"])
