"""The audit log (issue 2, item 9; G27, G28): one hash-chained event per mutation, secret-free
metadata, the console listing with filters and pages, and `silver-auth audit verify` naming the
first broken link after rows are edited or deleted in the database."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from silver_auth.audit.models import AuditChainHead, AuditEvent
from silver_auth.audit.service import (
    GENESIS_HASH,
    Actor,
    AuditAction,
    ChainReport,
    event_hash,
    record,
    verify_chain,
)
from silver_auth.core import clock
from silver_auth.db.session import transaction
from tests.factories import PASSWORD, ConsoleUser, Harness

PROBLEM = "application/problem+json"
ITEM_FIELDS = {"id", "seq", "action", "actor", "actor_ip", "target", "project_id", "at", "metadata"}


def _events(harness: Harness) -> list[AuditEvent]:
    async def work() -> list[AuditEvent]:
        async with harness.runtime.sessionmaker() as db:
            return list((await db.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all())

    return harness.run(work)


def _verify(harness: Harness) -> ChainReport:
    async def work() -> ChainReport:
        async with harness.runtime.sessionmaker() as db:
            return await verify_chain(db)

    return harness.run(work)


def _execute(harness: Harness, statement: Any) -> None:
    async def work() -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            await db.execute(statement)

    harness.run(work)


def _cli_verify(harness: Harness, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`silver-auth audit verify` as an operator runs it: a separate process, settings from the env."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": harness.settings.sqlalchemy_url,
        "SILVER_DATA_DIR": str(tmp_path / "cli-data"),
        "COLUMNS": "80",
    }
    script = Path(sys.executable).with_name("silver-auth")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "silver_auth.cli"]
    return subprocess.run(  # noqa: PLW1510 - the exit code is asserted by the callers
        [*command, "audit", "verify"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def _audit(user: ConsoleUser, org_id: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = user.ok("GET", f"/console/api/orgs/{org_id}/audit", params=params)
    return body


def _busy_org(harness: Harness) -> tuple[ConsoleUser, dict[str, Any], dict[str, Any]]:
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    for _ in range(3):
        harness.key(owner, project["id"])
    return owner, org, project


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
    items = _audit(owner, org_id, limit=200)["items"]
    assert [(i["action"], i["actor"], i["target"], i["project_id"]) for i in reversed(items)] == expected
    seqs = [i["seq"] for i in items]
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
    rows = [e for e in _events(harness) if e.org_id == org_id]
    assert len(rows) == len(expected)
    everything = _events(harness)
    for previous, current in itertools.pairwise(everything):
        assert current.seq == previous.seq + 1
        assert current.prev_hash == previous.hash
    assert everything[0].prev_hash == GENESIS_HASH
    assert _verify(harness) == ChainReport(len(everything), None)


def test_refused_mutations_append_nothing(harness: Harness) -> None:
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    key = harness.key(owner, project["id"])
    viewer = harness.member(owner, org["id"], "viewer")
    stranger = harness.user()
    before = len(_events(harness))

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
    assert len(_events(harness)) == before


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
    rows = _events(harness)
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
    owner, org, project = _busy_org(harness)
    admin = harness.member(owner, org["id"], "admin")
    admin_key = harness.key(admin, project["id"])

    keys = _audit(owner, org["id"], action="key.created")["items"]
    assert len(keys) == 4
    assert {i["action"] for i in keys} == {"key.created"}
    assert keys[0]["target"] == admin_key["id"]

    by_admin = _audit(owner, org["id"], actor=admin.account_id)["items"]
    assert by_admin
    assert {i["actor"] for i in by_admin} == {admin.account_id}
    assert {i["action"] for i in by_admin} == {"invitation.accepted", "member.added", "key.created"}

    both = _audit(owner, org["id"], actor=admin.account_id, action="key.created")["items"]
    assert [i["target"] for i in both] == [admin_key["id"]]
    assert _audit(owner, org["id"], action="no.such.action") == {"items": [], "next": None}


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

    since = _audit(owner, org["id"], since=stamp(boundary))["items"]
    assert [i["action"] for i in since] == ["key.created", "key.created", "project.created"]
    until = _audit(owner, org["id"], until=stamp(boundary))["items"]
    assert [i["action"] for i in until] == ["member.added", "org.created"]
    window = _audit(owner, org["id"], since=stamp(boundary), until=stamp(later))["items"]
    assert [i["action"] for i in window] == ["key.created", "project.created"]
    offset = boundary.astimezone(timezone(timedelta(hours=2)))
    same = _audit(owner, org["id"], since=offset.isoformat())["items"]
    assert [i["id"] for i in same] == [i["id"] for i in since]

    naive = owner.get(f"/console/api/orgs/{org['id']}/audit", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code in (400, 422)
    assert naive.headers["content-type"].startswith(PROBLEM)
    garbage = owner.get(f"/console/api/orgs/{org['id']}/audit", params={"until": "yesterday"})
    assert garbage.status_code in (400, 422)


def test_pagination_with_next_cursor(harness: Harness) -> None:
    owner, org, project = _busy_org(harness)
    for _ in range(4):
        owner.ok(
            "PATCH", f"/console/api/projects/{project['id']}", json={"name": f"P{clock.now().timestamp()}"}
        )
    everything = _audit(owner, org["id"], limit=200)["items"]
    assert len(everything) == 10  # org, member, project, 3 keys, 4 renames
    assert _audit(owner, org["id"], limit=200)["next"] is None

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = _audit(owner, org["id"], **params)
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
    renames = _audit(owner, org["id"], action="project.updated", limit=3)
    assert len(renames["items"]) == 3
    rest = _audit(owner, org["id"], action="project.updated", limit=3, cursor=renames["next"])
    assert len(rest["items"]) == 1
    assert rest["next"] is None
    # A page exactly full at the end has no next cursor pointing at nothing.
    exact = _audit(owner, org["id"], limit=10)
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
    assert _audit(developer, org["id"])["items"][0]["action"] == "member.role_changed"

    other_owner = harness.user()
    other = harness.org(other_owner, "Other")
    assert other_owner.get(f"/console/api/orgs/{org['id']}/audit").status_code == 404
    foreign = _audit(other_owner, other["id"])["items"]
    assert {i["action"] for i in foreign} == {"org.created", "member.added"}
    assert all(i["actor"] == other_owner.account_id for i in foreign)
    harness.client.cookies.clear()
    assert harness.client.get(f"/console/api/orgs/{org['id']}/audit").status_code == 401


# --- the chain: verify, tamper, and concurrent appends -----------------------------------------


@pytest.mark.slow
def test_verify_reports_an_intact_chain(harness: Harness, tmp_path: Path) -> None:
    assert _verify(harness) == ChainReport(0, None)
    _busy_org(harness)
    report = _verify(harness)
    assert report.broken is None
    count = len(_events(harness))
    assert count == 7  # account, org, owner membership, project, 3 keys
    assert report.checked == count
    result = _cli_verify(harness, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "intact" in result.stdout
    assert f"{count} events" in result.stdout


def _assert_cli_names(harness: Harness, tmp_path: Path, *fragments: str) -> str:
    result = _cli_verify(harness, tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("column", "value"),
    [
        (AuditEvent.metadata_, {"kind": "publishable", "environment": "live"}),
        (AuditEvent.actor, "acc_someone_else"),
        (AuditEvent.actor_ip, "203.0.113.9"),
        (AuditEvent.target, "key_other"),
        (AuditEvent.action, "key.revoked"),
    ],
    ids=["metadata", "actor", "actor_ip", "target", "action"],
)
def test_edited_event_is_named(harness: Harness, tmp_path: Path, column: Any, value: Any) -> None:
    _busy_org(harness)
    victim = next(e for e in _events(harness) if e.action == "key.created")
    _execute(harness, update(AuditEvent).where(AuditEvent.seq == victim.seq).values({column: value}))
    report = _verify(harness)
    assert report.checked == victim.seq - 1
    assert report.broken is not None
    assert f"#{victim.seq}" in report.broken
    assert victim.id in report.broken
    assert "edited" in report.broken
    _assert_cli_names(harness, tmp_path, f"#{victim.seq}", victim.id, "edited")


@pytest.mark.slow
def test_edited_time_is_named(harness: Harness, tmp_path: Path) -> None:
    _busy_org(harness)
    victim = _events(harness)[2]
    _execute(
        harness,
        update(AuditEvent).where(AuditEvent.seq == victim.seq).values(at=victim.at - timedelta(days=1)),
    )
    assert f"#{victim.seq}" in (_verify(harness).broken or "")
    _assert_cli_names(harness, tmp_path, f"#{victim.seq}", "edited")


@pytest.mark.slow
def test_rewritten_event_with_recomputed_hash_breaks_the_next_link(harness: Harness, tmp_path: Path) -> None:
    """An editor who also recomputes the row's own hash is caught by the next event's link."""
    _busy_org(harness)
    victim = next(e for e in _events(harness) if e.action == "project.created")
    victim.actor = "acc_framed"
    _execute(
        harness,
        update(AuditEvent)
        .where(AuditEvent.seq == victim.seq)
        .values(actor=victim.actor, hash=event_hash(victim)),
    )
    report = _verify(harness)
    assert report.broken is not None
    assert f"#{victim.seq + 1}" in report.broken
    assert "link" in report.broken
    _assert_cli_names(harness, tmp_path, f"#{victim.seq + 1}")


@pytest.mark.slow
def test_rewritten_newest_event_is_named(harness: Harness, tmp_path: Path) -> None:
    """The newest event has no successor to catch a recomputed hash: the chain head does."""
    _busy_org(harness)
    newest = _events(harness)[-1]
    newest.metadata_ = {"kind": "publishable"}
    _execute(
        harness,
        update(AuditEvent)
        .where(AuditEvent.seq == newest.seq)
        .values({AuditEvent.metadata_: newest.metadata_, AuditEvent.hash: event_hash(newest)}),
    )
    report = _verify(harness)
    assert report.checked == newest.seq - 1
    assert report.broken is not None
    assert f"#{newest.seq}" in report.broken
    assert "rewritten" in report.broken
    _assert_cli_names(harness, tmp_path, f"#{newest.seq}", "rewritten")


@pytest.mark.slow
def test_forged_appended_event_is_named(harness: Harness, tmp_path: Path) -> None:
    """A well-linked event added straight into the table, without the head, is not taken as real."""
    _busy_org(harness)
    last = _events(harness)[-1]
    forged = AuditEvent(
        seq=last.seq + 1,
        id="evt_forged",
        at=last.at + timedelta(seconds=1),
        org_id=last.org_id,
        project_id=None,
        actor="acc_framed",
        actor_ip=None,
        action="key.revoked",
        target="key_x",
        metadata_={},
        prev_hash=last.hash,
    )
    forged.hash = event_hash(forged)

    async def insert() -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            db.add(forged)

    harness.run(insert)
    report = _verify(harness)
    assert report.checked == last.seq
    assert report.broken is not None
    assert f"#{last.seq + 1}" in report.broken
    assert "added outside the service" in report.broken
    _assert_cli_names(harness, tmp_path, f"#{last.seq + 1}", "added outside")


@pytest.mark.slow
def test_deleted_middle_event_is_named(harness: Harness, tmp_path: Path) -> None:
    _busy_org(harness)
    assert len(_events(harness)) > 5
    _execute(harness, delete(AuditEvent).where(AuditEvent.seq == 4))
    report = _verify(harness)
    assert report.checked == 3
    assert report.broken is not None
    assert "#4" in report.broken
    assert "missing" in report.broken
    _assert_cli_names(harness, tmp_path, "#4", "missing")


@pytest.mark.slow
def test_deleted_first_event_is_named(harness: Harness, tmp_path: Path) -> None:
    _busy_org(harness)
    _execute(harness, delete(AuditEvent).where(AuditEvent.seq == 1))
    assert "#1" in (_verify(harness).broken or "")
    _assert_cli_names(harness, tmp_path, "#1", "missing")


@pytest.mark.slow
def test_deleted_newest_events_are_named(harness: Harness, tmp_path: Path) -> None:
    _busy_org(harness)
    newest = _events(harness)[-1].seq
    _execute(harness, delete(AuditEvent).where(AuditEvent.seq == newest))
    report = _verify(harness)
    assert report.checked == newest - 1
    assert report.broken is not None
    assert "newest" in report.broken
    assert "deleted" in report.broken
    assert f"#{newest}" in report.broken
    _assert_cli_names(harness, tmp_path, "newest", "deleted")

    _execute(harness, delete(AuditEvent).where(AuditEvent.seq >= newest - 2))
    assert "newest" in (_verify(harness).broken or "")


@pytest.mark.slow
def test_emptied_log_is_named(harness: Harness, tmp_path: Path) -> None:
    _busy_org(harness)
    _execute(harness, delete(AuditEvent))
    report = _verify(harness)
    assert report.broken is not None
    assert "deleted" in report.broken
    _assert_cli_names(harness, tmp_path, "deleted")


def test_service_keeps_appending_after_verify(harness: Harness) -> None:
    owner, org, project = _busy_org(harness)
    assert _verify(harness).broken is None
    count = len(_events(harness))
    harness.key(owner, project["id"])
    assert _verify(harness) == ChainReport(count + 1, None)
    assert _audit(owner, org["id"], limit=1)["items"][0]["seq"] == count + 1


def test_concurrent_appends_keep_the_chain_gapless(harness: Harness) -> None:
    """20 transactions append at the same time (and hold their transaction a moment after):
    the head row serialises them, so the chain neither forks nor skips."""
    owner = harness.user()
    org = harness.org(owner)
    start = len(_events(harness))

    async def append(i: int) -> int:
        async with transaction(harness.runtime.sessionmaker) as db:
            event = await record(
                db,
                AuditAction.PROJECT_UPDATED,
                actor=Actor(owner.account_id, "198.51.100.7"),
                org_id=org["id"],
                target=f"prj_{i}",
                metadata={"i": i},
            )
            await asyncio.sleep(0.01)
            return event.seq

    async def burst() -> list[int]:
        return list(await asyncio.gather(*(append(i) for i in range(20))))

    seqs = harness.run(burst)
    assert sorted(seqs) == list(range(start + 1, start + 21))
    events = _events(harness)
    assert [e.seq for e in events] == list(range(1, start + 21))
    assert sorted(str(e.target) for e in events[start:]) == sorted(f"prj_{i}" for i in range(20))
    assert _verify(harness) == ChainReport(start + 20, None)

    async def head() -> tuple[int, str]:
        async with harness.runtime.sessionmaker() as db:
            row = await db.get(AuditChainHead, 1)
            assert row is not None
            count = await db.scalar(select(func.count()).select_from(AuditEvent))
            assert count == row.seq
            return row.seq, row.hash

    assert harness.run(head) == (start + 20, events[-1].hash)


def test_failed_transaction_leaves_no_gap(harness: Harness) -> None:
    """An append whose transaction rolls back takes its sequence number back with it."""
    owner = harness.user()
    harness.org(owner)
    start = len(_events(harness))

    async def doomed() -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            await record(db, AuditAction.ORG_UPDATED, actor=Actor("system"), target="org_x")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        harness.run(doomed)
    harness.org(owner)  # org.created and member.added
    assert [e.seq for e in _events(harness)] == list(range(1, start + 3))
    assert _verify(harness).broken is None
