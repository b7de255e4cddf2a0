"""The audit log (G27, G28): one event per mutation, secret-free metadata, the console listing with
filters and pages in insertion order. The hash chain itself is in test_chain.py."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, insert, text

from silver_auth.audit.chain import GENESIS_HASH, ChainReport
from silver_auth.audit.models import AuditEvent
from silver_auth.audit.service import AuditFilter, list_events
from silver_auth.core import clock
from tests.audit.support import audit, busy_org, events, seal, sealed_events, verify
from tests.conftest import BACKEND
from tests.factories import PASSWORD, Harness

PROBLEM = "application/problem+json"
ITEM_FIELDS = {"id", "seq", "action", "actor", "actor_ip", "target", "project_id", "at", "metadata"}


# --- one event per mutation --------------------------------------------------------------------


def test_every_mutation_appends_an_event(harness: Harness) -> None:
    owner = harness.user()
    org = harness.org(owner)
    org_id = org["id"]
    project = harness.project(owner, org_id)
    project_id = project["id"]
    owner.ok("PATCH", f"/console/api/projects/{project_id}", json={"name": "Renamed"})
    key = harness.key(owner, project_id)
    rotated = owner.ok("POST", f"/console/api/keys/{key['id']}/rotate", 201, json={"grace_seconds": 60})
    owner.ok("DELETE", f"/console/api/keys/{rotated['new']['id']}")
    invite = owner.ok("POST", f"/console/api/orgs/{org_id}/invitations", 201, json={"role": "developer"})
    member = harness.user()
    member.ok("POST", "/console/api/invitations/accept", json={"token": invite["token"]})
    owner.ok("PATCH", f"/console/api/orgs/{org_id}/members/{member.account_id}", json={"role": "admin"})
    spare = owner.ok("POST", f"/console/api/orgs/{org_id}/invitations", 201, json={"role": "viewer"})
    owner.ok("DELETE", f"/console/api/invitations/{spare['id']}", 204)
    owner.ok("DELETE", f"/console/api/orgs/{org_id}/members/{member.account_id}", 204)
    owner.ok("PATCH", f"/console/api/orgs/{org_id}", json={"name": "Acme 2"})
    owner.ok("DELETE", f"/console/api/projects/{project_id}", 204)

    o, m = owner.account_id, member.account_id
    expected = [
        # action, actor, target, project
        ("org.created", o, org_id, None),
        ("member.added", o, o, None),
        ("project.created", o, project_id, project_id),
        ("project.updated", o, project_id, project_id),
        ("key.created", o, key["id"], project_id),
        ("key.rotated", o, key["id"], project_id),
        ("key.revoked", o, rotated["new"]["id"], project_id),
        ("invitation.created", o, invite["id"], None),
        ("invitation.accepted", m, invite["id"], None),
        ("member.added", m, m, None),
        ("member.role_changed", o, m, None),
        ("invitation.created", o, spare["id"], None),
        ("invitation.revoked", o, spare["id"], None),
        ("member.removed", o, m, None),
        ("org.updated", o, org_id, None),
        ("project.deleted", o, project_id, project_id),
    ]
    seal(harness)
    items = audit(owner, org_id, limit=200)["items"]
    assert [(i["action"], i["actor"], i["target"], i["project_id"]) for i in reversed(items)] == expected
    # One writer at a time here, so the chain order is the insertion order.
    seqs = [i["seq"] for i in items]
    assert None not in seqs
    assert seqs == sorted(seqs, reverse=True)
    for item in items:
        assert set(item) == ITEM_FIELDS
        assert item["actor_ip"]  # the source address is recorded
        assert datetime.fromisoformat(item["at"]).utcoffset() == timedelta(0)
    moments = [datetime.fromisoformat(i["at"]) for i in reversed(items)]
    assert moments == sorted(moments)
    assert items[-1]["metadata"] == {"name": "Acme"}
    assert {"kind": "secret", "environment": "live", "prefix": key["prefix"]} == next(
        i["metadata"] for i in items if i["action"] == "key.created"
    )

    # In the database: the org on every row, and each row linked to the one before.
    rows = [e for e in events(harness) if e.org_id == org_id]
    assert len(rows) == len(expected)
    everything = sealed_events(harness)
    for previous, current in itertools.pairwise(everything):
        assert current.seq == (previous.seq or 0) + 1
        assert current.prev_hash == previous.hash
    assert everything[0].prev_hash == GENESIS_HASH
    assert verify(harness) == ChainReport(len(everything), None)


def test_refused_mutations_append_nothing(harness: Harness) -> None:
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    key = harness.key(owner, project["id"])
    viewer = harness.member(owner, org["id"], "viewer")
    stranger = harness.user()
    before = len(events(harness))

    refused = [
        viewer.post(
            f"/console/api/projects/{project['id']}/keys", json={"kind": "secret", "environment": "live"}
        ),
        viewer.delete(f"/console/api/keys/{key['id']}"),
        viewer.patch(f"/console/api/projects/{project['id']}", json={"name": "Nope"}),
        stranger.delete(f"/console/api/projects/{project['id']}"),
        stranger.post(f"/console/api/keys/{key['id']}/rotate", json={}),
        owner.post(
            f"/console/api/projects/{project['id']}/keys", json={"kind": "root", "environment": "live"}
        ),
        owner.post(f"/console/api/keys/{key['id']}/rotate", json={"grace_seconds": -5}),
        owner.post(f"/console/api/orgs/{org['id']}/projects", json={"name": ""}),
        owner.post(f"/console/api/orgs/{org['id']}/projects", content=b"{not json"),
        owner.post(f"/console/api/orgs/{org['id']}/projects", json={"name": "x"}, csrf=False),
    ]
    for response in refused:
        assert 400 <= response.status_code < 500, (response.request.url, response.status_code)
        assert response.headers["content-type"].startswith(PROBLEM)
    assert len(events(harness)) == before


# --- G28: no secret in any audit record --------------------------------------------------------


def test_audit_metadata_holds_no_secret(harness: Harness) -> None:
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    sk = harness.key(owner, project["id"], "secret", "live")
    sk_test = harness.key(owner, project["id"], "secret", "test")
    rotated = owner.ok("POST", f"/console/api/keys/{sk['id']}/rotate", 201, json={"grace_seconds": 30})
    invite = owner.ok("POST", f"/console/api/orgs/{org['id']}/invitations", 201, json={"role": "viewer"})
    member = harness.user()
    member.ok("POST", "/console/api/invitations/accept", json={"token": invite["token"]})
    # A careless admin pastes a secret key into names: the audit trail still must not keep it.
    owner.ok("PATCH", f"/console/api/projects/{project['id']}", json={"name": sk_test["key"]})
    owner.ok("PATCH", f"/console/api/orgs/{org['id']}", json={"name": f"see {rotated['new']['key']}"})
    created = owner.ok(
        "POST",
        f"/console/api/projects/{project['id']}/keys",
        201,
        json={"kind": "secret", "environment": "test", "name": f"Bearer {sk_test['key']}"},
    )

    secrets_seen = {
        "secret key": sk["key"],
        "test secret key": sk_test["key"],
        "rotated key": rotated["new"]["key"],
        "named key": created["key"],
        "invitation token": invite["token"],
        "session cookie": owner.cookie,
        "member cookie": member.cookie,
        "csrf token": owner.csrf_token,
        "password": PASSWORD,
    }
    rows = events(harness)
    assert {"project.updated", "org.updated", "key.rotated", "invitation.accepted"} <= {
        r.action for r in rows
    }
    dump = "\n".join(
        repr((r.actor, r.actor_ip, r.action, r.target, r.org_id, r.project_id, r.metadata_)) for r in rows
    )
    for name, value in secrets_seen.items():
        assert value not in dump, name
    listing = owner.get(f"/console/api/orgs/{org['id']}/audit", params={"limit": 200}).text
    for name, value in secrets_seen.items():
        assert value not in listing, name
    assert "[REDACTED]" in dump  # the pasted keys were redacted, not dropped silently


# --- listing: filters, pages, access -----------------------------------------------------------


def test_filter_by_action_and_actor(harness: Harness) -> None:
    owner, org, project = busy_org(harness)
    admin = harness.member(owner, org["id"], "admin")
    admin_key = harness.key(admin, project["id"])

    keys = audit(owner, org["id"], action="key.created")["items"]
    assert len(keys) == 4
    assert {i["action"] for i in keys} == {"key.created"}
    assert keys[0]["target"] == admin_key["id"]

    by_admin = audit(owner, org["id"], actor=admin.account_id)["items"]
    assert by_admin
    assert {i["actor"] for i in by_admin} == {admin.account_id}
    assert {i["action"] for i in by_admin} == {"invitation.accepted", "member.added", "key.created"}

    both = audit(owner, org["id"], actor=admin.account_id, action="key.created")["items"]
    assert [i["target"] for i in both] == [admin_key["id"]]
    assert audit(owner, org["id"], action="no.such.action") == {"items": [], "next": None}


def test_filter_by_time(harness: Harness) -> None:
    owner = harness.user()
    org = harness.org(owner)  # 2 events
    clock.advance(3600)
    boundary = clock.now()
    clock.advance(1)
    project = harness.project(owner, org["id"])
    harness.key(owner, project["id"])
    clock.advance(3600)
    later = clock.now()
    clock.advance(1)
    harness.key(owner, project["id"])

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

    since = audit(owner, org["id"], since=stamp(boundary))["items"]
    assert [i["action"] for i in since] == ["key.created", "key.created", "project.created"]
    until = audit(owner, org["id"], until=stamp(boundary))["items"]
    assert [i["action"] for i in until] == ["member.added", "org.created"]
    window = audit(owner, org["id"], since=stamp(boundary), until=stamp(later))["items"]
    assert [i["action"] for i in window] == ["key.created", "project.created"]
    offset = boundary.astimezone(timezone(timedelta(hours=2)))
    same = audit(owner, org["id"], since=offset.isoformat())["items"]
    assert [i["id"] for i in same] == [i["id"] for i in since]

    naive = owner.get(f"/console/api/orgs/{org['id']}/audit", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code in (400, 422)
    assert naive.headers["content-type"].startswith(PROBLEM)
    garbage = owner.get(f"/console/api/orgs/{org['id']}/audit", params={"until": "yesterday"})
    assert garbage.status_code in (400, 422)


def test_pagination_with_next_cursor(harness: Harness) -> None:
    owner, org, project = busy_org(harness)
    for _ in range(4):
        owner.ok(
            "PATCH", f"/console/api/projects/{project['id']}", json={"name": f"P{clock.now().timestamp()}"}
        )
    everything = audit(owner, org["id"], limit=200)["items"]
    assert len(everything) == 10  # org, member, project, 3 keys, 4 renames
    assert audit(owner, org["id"], limit=200)["next"] is None

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = audit(owner, org["id"], **params)
        pages += 1
        assert len(page["items"]) <= 3
        seen.extend(page["items"])
        cursor = page["next"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert pages == 4
    assert [i["id"] for i in seen] == [i["id"] for i in everything]

    # Pages combine with filters.
    renames = audit(owner, org["id"], action="project.updated", limit=3)
    assert len(renames["items"]) == 3
    rest = audit(owner, org["id"], action="project.updated", limit=3, cursor=renames["next"])
    assert len(rest["items"]) == 1
    assert rest["next"] is None
    # A page exactly full at the end has no next cursor pointing at nothing.
    exact = audit(owner, org["id"], limit=10)
    assert len(exact["items"]) == 10
    assert exact["next"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "abc"},
        {"cursor": "-1"},
        {"cursor": "1.5"},
        {"cursor": "²"},
        {"cursor": "٣"},
        {"cursor": "99999999999999999999"},
        {"cursor": "9" * 50},
        {"limit": 0},
        {"limit": 201},
        {"limit": "many"},
    ],
)
def test_bad_cursor_or_limit_is_rejected(harness: Harness, params: dict[str, Any]) -> None:
    owner = harness.user()
    org = harness.org(owner)
    response = owner.get(f"/console/api/orgs/{org['id']}/audit", params=params)
    expected = (422,) if "cursor" in params else (400, 422)
    assert response.status_code in expected, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM)


def test_audit_needs_admin_and_stays_in_its_org(harness: Harness) -> None:
    owner = harness.user()
    org = harness.org(owner)
    developer = harness.member(owner, org["id"], "developer")
    viewer = harness.member(owner, org["id"], "viewer")
    assert developer.get(f"/console/api/orgs/{org['id']}/audit").status_code == 403
    assert viewer.get(f"/console/api/orgs/{org['id']}/audit").status_code == 403
    owner.ok("PATCH", f"/console/api/orgs/{org['id']}/members/{developer.account_id}", json={"role": "admin"})
    assert audit(developer, org["id"])["items"][0]["action"] == "member.role_changed"

    other_owner = harness.user()
    other = harness.org(other_owner, "Other")
    assert other_owner.get(f"/console/api/orgs/{org['id']}/audit").status_code == 404
    foreign = audit(other_owner, other["id"])["items"]
    assert {i["action"] for i in foreign} == {"org.created", "member.added"}
    assert all(i["actor"] == other_owner.account_id for i in foreign)
    harness.client.cookies.clear()
    assert harness.client.get(f"/console/api/orgs/{org['id']}/audit").status_code == 401


# --- the listing's indexes -----------------------------------------------------------------------


def _plan(harness: Harness, org_id: str, filters: AuditFilter) -> str:
    """The database's plan for the query `list_events` really sends (captured, then EXPLAINed)."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    async def work() -> str:
        async with harness.runtime.sessionmaker() as db:
            connection = await db.connection()  # this session's only: the app's sealer runs queries too
            event.listen(connection.sync_connection, "before_cursor_execute", capture)
            try:
                await list_events(db, org_id, filters, before=10**6, limit=50)
            finally:
                event.remove(connection.sync_connection, "before_cursor_execute", capture)
            # The org's plan is read first (its retention bounds the page, L7); then the page itself.
            [(statement, parameters)] = [sql for sql in sent if "FROM audit_events" in sql[0]]
            raw = await connection.get_raw_connection()
            if connection.dialect.name == "postgresql":
                await connection.execute(text("ANALYZE audit_events"))
                # A test org's few rows are cheapest to fetch and sort; a big org's page is read from
                # an index in order. Pricing the sort out shows which index that is.
                for setting in ("enable_bitmapscan", "enable_sort"):
                    await connection.execute(text(f"SET LOCAL {setting} = off"))
                driver = raw.driver_connection
                assert driver is not None
                # asyncpg's driver connection takes $n placeholders, as SQLAlchemy rendered them.
                lines = await driver.fetch(f"EXPLAIN {statement}", *parameters)
                return "\n".join(str(line[0]) for line in lines)
            cursor = raw.driver_connection
            assert cursor is not None
            plan = await cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(str(row[-1]) for row in await plan.fetchall())

    return harness.run(work)


def test_listing_pages_use_the_org_indexes(harness: Harness) -> None:
    """A page of one org (and of one actor in it) is an index range in insertion order, not a scan of
    the org's whole log or a sort."""
    owner, org, _project = busy_org(harness)
    # A log worth planning for: other orgs' events, and other actors' in this org.
    crowd = [
        {
            "id": f"evt_crowd{i}",
            "at": clock.now(),
            "org_id": org["id"] if i % 40 == 0 else f"org_other{i % 40}",
            "actor": f"acc_other{i % 25}",
            "action": "project.updated",
            "metadata": {},
        }
        for i in range(4000)
    ]

    async def fill() -> None:
        async with harness.runtime.engine.begin() as connection:
            await connection.execute(insert(AuditEvent.__table__), crowd)

    harness.run(fill)

    by_actor = _plan(harness, org["id"], AuditFilter(actor=owner.account_id))
    assert "ix_audit_events_org_actor_row" in by_actor, by_actor
    whole = _plan(harness, org["id"], AuditFilter())
    if BACKEND != "postgres":
        # Postgres walks the primary key backwards for a table this small (its rows lie in row_id
        # order on disk); on a big one it takes this index too.
        assert "ix_audit_events_org_row" in whole, whole
    for plan in (by_actor, whole):
        assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize(
    "params", [{"since": "0.5"}, {"until": "1700000000"}, {"since": "2026-13-01T00:00:00Z"}]
)
def test_times_are_rfc3339_never_a_bare_number(harness: Harness, params: dict[str, Any]) -> None:
    """A number was taken for a Unix timestamp (`until=0.5`: 1970), though the document says date-time."""
    owner = harness.user()
    org = harness.org(owner)
    response = owner.get(f"/console/api/orgs/{org['id']}/audit", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
