"""The audit hash chain (G27). Events are appended in the writer's transaction with no shared lock and
sealed into the chain after commit, by any number of sealers taking turns. `silver-auth audit verify`
names the first broken link (an edited, deleted, reordered or added-outside event) and counts the
events not sealed yet.

Tests that need the sealing to happen only when they say so use `bare`: the test's database with no
app around it, so no background sealer runs."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.audit.chain import HEAD_ID, ChainReport, event_hash, seal_pending
from silver_auth.audit.models import AuditChainHead, AuditEvent, AuditEventImmutableError
from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.db.engine import create_engine, create_sessionmaker
from silver_auth.db.session import transaction
from silver_auth.settings import Settings
from tests.audit.support import (
    assert_cli_names,
    busy_org,
    cli,
    cli_verify,
    events,
    seal,
    sealed_events,
    tamper,
    verify,
    verify_with,
)
from tests.conftest import BACKEND
from tests.factories import Harness

Sessionmaker = async_sessionmaker[AsyncSession]
EVENTS = AuditEvent.__table__
ACTOR = Actor("acc_writer", "198.51.100.7")
postgres_only = pytest.mark.skipif(
    BACKEND != "postgres", reason="SQLite has one writer at a time by design: nothing here can overlap"
)


@pytest.fixture
async def bare(settings: Settings) -> AsyncIterator[Sessionmaker]:
    engine = create_engine(settings)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def second(settings: Settings) -> AsyncIterator[Sessionmaker]:
    """Another process's view of the same database: its own engine and connection pool."""
    engine = create_engine(settings)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def append(sessionmaker: Sessionmaker, i: int, *, hold: float = 0.0) -> AuditEvent:
    """One audited write, committed; the row is written first and the transaction held `hold` s."""
    async with transaction(sessionmaker) as db:
        event = await record(
            db, AuditAction.PROJECT_UPDATED, actor=ACTOR, org_id="org_a", target=f"prj_{i}", metadata={"i": i}
        )
        await db.flush()
        await asyncio.sleep(hold)
    return event


async def rows(sessionmaker: Sessionmaker) -> list[AuditEvent]:
    async with sessionmaker() as db:
        return list((await db.scalars(select(AuditEvent).order_by(AuditEvent.row_id))).all())


async def head(sessionmaker: Sessionmaker) -> tuple[int, str]:
    async with sessionmaker() as db:
        row = await db.get(AuditChainHead, HEAD_ID)
        assert row is not None
        return row.seq, row.hash


def assert_whole(events: list[AuditEvent]) -> None:
    """Every event sealed exactly once: positions 1..n, each linked to the one before."""
    chain = sorted(events, key=lambda e: e.seq or 0)
    assert [e.seq for e in chain] == list(range(1, len(events) + 1))
    for previous, current in itertools.pairwise(chain):
        assert current.prev_hash == previous.hash


# --- appending and sealing -----------------------------------------------------------------------


async def test_g27_concurrent_appends_make_one_whole_chain_once_sealed(bare: Sessionmaker) -> None:
    """40 transactions write their event and hold on a moment, all at once: none takes a chain
    position, so none waits for another; sealing then links all 40 into one chain."""
    appended = await asyncio.gather(*(append(bare, i, hold=0.01) for i in range(40)))
    assert {e.seq for e in appended} == {None}
    pending = await verify_with(bare)
    assert (pending.checked, pending.broken, pending.unsealed) == (0, None, 40)

    assert await seal_pending(bare) == 40
    stored = await rows(bare)
    assert sorted(str(e.target) for e in stored) == sorted(f"prj_{i}" for i in range(40))
    assert_whole(stored)
    assert await verify_with(bare) == ChainReport(40, None)
    newest = max(stored, key=lambda e: e.seq or 0)
    assert await head(bare) == (40, newest.hash)


@postgres_only
async def test_g27_an_open_audited_transaction_holds_up_no_other(bare: Sessionmaker) -> None:
    """F5: a transaction that has recorded an event and then waits (an Authentik call) no longer stalls
    every other audited write, nor the sealing of theirs; it is sealed after it commits."""
    slow_started, slow_may_finish = asyncio.Event(), asyncio.Event()

    async def slow() -> AuditEvent:
        async with transaction(bare) as db:
            event = await record(db, AuditAction.PROJECT_CREATED, actor=ACTOR, org_id="org_a", target="slow")
            await db.flush()
            slow_started.set()
            await slow_may_finish.wait()
        return event

    slow_task = asyncio.create_task(slow())
    await slow_started.wait()
    # Under the old single chain head this waited for the slow transaction's commit: a deadlock here.
    fast = await asyncio.wait_for(append(bare, 1), timeout=10)
    assert await asyncio.wait_for(seal_pending(bare), timeout=10) == 1
    slow_may_finish.set()
    slow_event = await slow_task
    assert await seal_pending(bare) == 1

    by_target = {str(e.target): e for e in await rows(bare)}
    # Written first, committed (and sealed) second: the listing keeps insertion order, the chain
    # commit order, and the insertion position is hashed too.
    assert by_target["slow"].row_id < by_target["prj_1"].row_id
    assert (by_target["prj_1"].seq, by_target["slow"].seq) == (1, 2)
    assert (slow_event.id, fast.id) == (by_target["slow"].id, by_target["prj_1"].id)
    assert await verify_with(bare) == ChainReport(2, None)


async def test_g27_sealing_again_changes_nothing(bare: Sessionmaker) -> None:
    for i in range(5):
        await append(bare, i)
    assert await seal_pending(bare) == 5
    sealed = [(e.row_id, e.seq, e.prev_hash, e.hash) for e in await rows(bare)]
    before = await head(bare)
    assert await seal_pending(bare) == 0
    assert await seal_pending(bare, batch=1) == 0
    assert [(e.row_id, e.seq, e.prev_hash, e.hash) for e in await rows(bare)] == sealed
    assert await head(bare) == before
    await append(bare, 5)
    assert await seal_pending(bare) == 1
    assert await verify_with(bare) == ChainReport(6, None)


async def test_g27_two_sealers_at_once_do_not_fork_the_chain(
    bare: Sessionmaker, second: Sessionmaker
) -> None:
    """Two processes seal in small batches while writers keep appending: they take turns on the head,
    so every event gets exactly one position and the chain stays whole."""
    for i in range(30):
        await append(bare, i)
    writers = [append(bare if i % 2 else second, 100 + i, hold=0.002) for i in range(30)]
    sealed = await asyncio.gather(
        seal_pending(bare, batch=7), seal_pending(second, batch=7), seal_pending(second, batch=4), *writers
    )
    counts = sealed[:3]
    leftover = await seal_pending(bare)
    assert sum(counts) + leftover == 60
    stored = await rows(bare)
    assert len(stored) == 60
    assert_whole(stored)
    assert await verify_with(second) == ChainReport(60, None)


async def test_failed_transaction_leaves_nothing_to_seal(bare: Sessionmaker) -> None:
    await append(bare, 0)

    async def doomed() -> None:
        async with transaction(bare) as db:
            await record(db, AuditAction.ORG_UPDATED, actor=Actor("system"), target="org_x")
            await db.flush()
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await doomed()
    await append(bare, 1)
    assert await seal_pending(bare) == 2
    assert [e.target for e in await rows(bare)] == ["prj_0", "prj_1"]
    assert await verify_with(bare) == ChainReport(2, None)


# --- what verify says about events not sealed yet ------------------------------------------------


async def test_g27_unsealed_events_are_counted_and_sealed_from_the_cli(
    bare: Sessionmaker, settings: Settings, tmp_path: Path
) -> None:
    for i in range(2):
        await append(bare, i)
    assert await seal_pending(bare) == 2
    for i in range(2, 5):
        await append(bare, i)
    report = await verify_with(bare)
    assert (report.checked, report.broken, report.unsealed) == (2, None, 3)
    assert report.oldest_unsealed is not None

    url = settings.sqlalchemy_url
    fresh = await asyncio.to_thread(cli, url, tmp_path, "verify")
    assert fresh.returncode == 0, fresh.stderr
    assert "intact: 2 events verified; 3 newer event(s) not sealed yet" in fresh.stdout

    # An event left unsealed for an hour means no sealer is running: that is a failure to alert on.
    clock.advance(-3600)
    await append(bare, 5)
    stale = await asyncio.to_thread(cli, url, tmp_path, "verify")
    assert stale.returncode == 1
    assert "4 event(s) not sealed" in stale.stderr
    assert "is a sealer running" in stale.stderr
    lenient = await asyncio.to_thread(cli, url, tmp_path, "verify", "--max-unsealed-age", "0")
    assert lenient.returncode == 0, lenient.stderr

    sealed = await asyncio.to_thread(cli, url, tmp_path, "seal")
    assert sealed.returncode == 0, sealed.stderr
    assert "sealed 4 event(s); the chain ends at #6" in sealed.stdout
    whole = await asyncio.to_thread(cli, url, tmp_path, "verify")
    assert whole.returncode == 0, whole.stderr
    assert "intact: 6 events verified" in whole.stdout
    assert "not sealed" not in whole.stdout


async def test_g27_an_unsealed_event_is_not_tamper_evident_yet(bare: Sessionmaker) -> None:
    """The documented trade-off (docs/audit.md): until it is sealed, an event can vanish unnoticed."""
    for i in range(3):
        await append(bare, i)
    await seal_pending(bare)
    doomed = await append(bare, 3)
    async with bare() as db, db.begin():
        await db.execute(delete(EVENTS).where(EVENTS.c.id == doomed.id))
    assert await verify_with(bare) == ChainReport(3, None)


# --- the ORM cannot edit an event --------------------------------------------------------------------


async def test_g27_the_orm_refuses_to_edit_or_delete_an_event(bare: Sessionmaker) -> None:
    await append(bare, 0)
    await append(bare, 1)
    await seal_pending(bare)
    await append(bare, 2)  # unsealed
    edits: list[Callable[[AuditEvent], None]] = [
        lambda e: setattr(e, "actor", "acc_framed"),
        lambda e: setattr(e, "metadata_", {"i": 99}),
        lambda e: setattr(e, "hash", "0" * 64),
        lambda e: setattr(e, "seq", 7),
    ]
    for target in ("prj_0", "prj_2"):  # a sealed event, an unsealed one
        for edit in edits:
            async with bare() as db:
                event = await db.scalar(select(AuditEvent).where(AuditEvent.target == target))
                assert event is not None
                edit(event)
                with pytest.raises(AuditEventImmutableError):
                    await db.flush()
        async with bare() as db:
            event = await db.scalar(select(AuditEvent).where(AuditEvent.target == target))
            await db.delete(event)
            with pytest.raises(AuditEventImmutableError, match="cannot be deleted"):
                await db.flush()
    bulk: list[Any] = [
        update(AuditEvent).where(AuditEvent.target == "prj_0").values(actor="acc_framed"),
        delete(AuditEvent).where(AuditEvent.target == "prj_2"),
    ]
    for statement in bulk:
        async with bare() as db:
            with pytest.raises(AuditEventImmutableError, match="bulk"):
                await db.execute(statement)
    # A sealed event's chain fields are no more editable than its content.
    async with bare() as db:
        sealed = await db.scalar(select(AuditEvent).where(AuditEvent.target == "prj_1"))
        assert sealed is not None
        sealed.seq, sealed.prev_hash, sealed.hash = 9, "0" * 64, "1" * 64
        with pytest.raises(AuditEventImmutableError, match="cannot be edited"):
            await db.flush()

    assert [e.target for e in await rows(bare)] == ["prj_0", "prj_1", "prj_2"]
    assert await seal_pending(bare) == 1
    assert await verify_with(bare) == ChainReport(3, None)


# --- the app's own sealer ----------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll until the background sealer has done something (a bound on waiting, not a measurement)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def test_g27_the_app_seals_committed_events_by_itself(harness: Harness) -> None:
    busy_org(harness)
    count = len(events(harness))
    wait_for(lambda: verify(harness).unsealed == 0, "the app's sealer")
    assert verify(harness) == ChainReport(count, None)
    assert {e.seq for e in events(harness)} == set(range(1, count + 1))


def test_g27_a_failing_sealer_never_fails_a_request(harness: Harness) -> None:
    owner, org, project = busy_org(harness)
    seal(harness)
    last = sealed_events(harness)[-1]
    tamper(harness, delete(AuditChainHead))
    with structlog.testing.capture_logs() as logs:
        key = harness.key(owner, project["id"])  # audited; its sealing fails: no head row to extend
        owner.ok("PATCH", f"/console/api/orgs/{org['id']}", json={"name": "Still fine"})
        wait_for(lambda: any(e["event"] == "audit_seal_failed" for e in logs), "the failure log line")
    failure = next(e for e in logs if e["event"] == "audit_seal_failed")
    assert failure["error_type"] == "ChainHeadMissingError"
    assert failure["log_level"] == "error"
    assert "chain head" in (verify(harness).broken or "")

    tamper(harness, insert(AuditChainHead).values(id=HEAD_ID, seq=last.seq, hash=last.hash))
    wait_for(lambda: verify(harness).unsealed == 0, "the sealer's retry")
    assert verify(harness) == ChainReport(len(events(harness)), None)
    assert key["id"] in {e.target for e in events(harness)}


# --- verify names the first broken link ---------------------------------------------------------------


def test_verify_reports_an_intact_chain(harness: Harness, tmp_path: Path) -> None:
    assert verify(harness) == ChainReport(0, None)
    busy_org(harness)
    count = len(sealed_events(harness))
    assert count == 8  # account, its sign-in, org, owner membership, project, 3 keys
    assert verify(harness) == ChainReport(count, None)
    result = cli_verify(harness, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "intact" in result.stdout
    assert f"{count} events" in result.stdout


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("metadata", {"kind": "publishable", "environment": "live"}),
        ("actor", "acc_someone_else"),
        ("actor_ip", "203.0.113.9"),
        ("target", "key_other"),
        ("action", "key.revoked"),
    ],
)
def test_g27_edited_event_is_named(harness: Harness, tmp_path: Path, column: str, value: Any) -> None:
    busy_org(harness)
    victim = next(e for e in sealed_events(harness) if e.action == "key.created")
    tamper(harness, update(EVENTS).where(EVENTS.c.seq == victim.seq).values({column: value}))
    report = verify(harness)
    assert report.checked == (victim.seq or 0) - 1
    assert report.broken is not None
    assert f"#{victim.seq}" in report.broken
    assert victim.id in report.broken
    assert "edited" in report.broken
    assert_cli_names(harness, tmp_path, f"#{victim.seq}", victim.id, "edited")


def test_g27_edited_time_is_named(harness: Harness, tmp_path: Path) -> None:
    busy_org(harness)
    victim = sealed_events(harness)[2]
    tamper(harness, update(EVENTS).where(EVENTS.c.seq == victim.seq).values(at=victim.at - timedelta(days=1)))
    assert f"#{victim.seq}" in (verify(harness).broken or "")
    assert_cli_names(harness, tmp_path, f"#{victim.seq}", "edited")


def test_g27_rewritten_event_with_recomputed_hash_breaks_the_next_link(
    harness: Harness, tmp_path: Path
) -> None:
    """An editor who also recomputes the row's own hash is caught by the next event's link."""
    busy_org(harness)
    victim = next(e for e in sealed_events(harness) if e.action == "project.created")
    victim.actor = "acc_framed"
    tamper(
        harness,
        update(EVENTS).where(EVENTS.c.seq == victim.seq).values(actor=victim.actor, hash=event_hash(victim)),
    )
    report = verify(harness)
    assert report.broken is not None
    assert f"#{(victim.seq or 0) + 1}" in report.broken
    assert "link" in report.broken
    assert_cli_names(harness, tmp_path, f"#{(victim.seq or 0) + 1}")


def test_g27_rewritten_newest_event_is_named(harness: Harness, tmp_path: Path) -> None:
    """The newest sealed event has no successor to catch a recomputed hash: the chain head does."""
    busy_org(harness)
    newest = sealed_events(harness)[-1]
    newest.metadata_ = {"kind": "publishable"}
    tamper(
        harness,
        update(EVENTS)
        .where(EVENTS.c.seq == newest.seq)
        .values(metadata=newest.metadata_, hash=event_hash(newest)),
    )
    report = verify(harness)
    assert report.checked == (newest.seq or 0) - 1
    assert report.broken is not None
    assert f"#{newest.seq}" in report.broken
    assert "rewritten" in report.broken
    assert_cli_names(harness, tmp_path, f"#{newest.seq}", "rewritten")


def test_g27_forged_sealed_event_is_named(harness: Harness, tmp_path: Path) -> None:
    """A well-linked event added straight into the table, past the head, is not taken as real."""
    busy_org(harness)
    last = sealed_events(harness)[-1]
    forged = AuditEvent(
        row_id=last.row_id + 1,
        seq=(last.seq or 0) + 1,
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
    values = {column.name: getattr(forged, attr.key) for attr, column in _columns()}
    tamper(harness, insert(EVENTS).values(values))
    report = verify(harness)
    assert report.checked == last.seq
    assert report.broken is not None
    assert f"#{forged.seq}" in report.broken
    assert "added outside the service" in report.broken
    assert_cli_names(harness, tmp_path, f"#{forged.seq}", "added outside")


def _columns() -> list[tuple[Any, Any]]:
    mapper = AuditEvent.__mapper__
    return [(attr, attr.columns[0]) for attr in mapper.column_attrs]


def test_g27_reordered_events_are_named(harness: Harness, tmp_path: Path) -> None:
    """Swapping two events' chain positions: the first of them no longer follows its predecessor."""
    busy_org(harness)
    chain = sealed_events(harness)
    first, then = chain[3], chain[4]
    tamper(
        harness,
        update(EVENTS).where(EVENTS.c.seq == first.seq).values(seq=-1),
        update(EVENTS).where(EVENTS.c.seq == then.seq).values(seq=first.seq),
        update(EVENTS).where(EVENTS.c.seq == -1).values(seq=then.seq),
    )
    report = verify(harness)
    assert report.checked == 3
    assert report.broken is not None
    assert f"#{first.seq}" in report.broken
    assert then.id in report.broken
    assert "reordered" in report.broken
    assert_cli_names(harness, tmp_path, f"#{first.seq}", then.id, "reordered")


def test_g27_events_moved_in_the_listing_are_named(harness: Harness, tmp_path: Path) -> None:
    """Swapping two events' insertion ids reorders the console listing: the hash covers that too."""
    owner, org, _project = busy_org(harness)
    chain = sealed_events(harness)
    first, then = chain[3], chain[4]
    tamper(
        harness,
        update(EVENTS).where(EVENTS.c.row_id == first.row_id).values(row_id=-1),
        update(EVENTS).where(EVENTS.c.row_id == then.row_id).values(row_id=first.row_id),
        update(EVENTS).where(EVENTS.c.row_id == -1).values(row_id=then.row_id),
    )
    listed = [i["id"] for i in owner.ok("GET", f"/console/api/orgs/{org['id']}/audit")["items"]]
    assert listed.index(first.id) < listed.index(then.id)  # newest first: `first` now looks newer
    report = verify(harness)
    assert report.checked == 3
    assert f"#{first.seq}" in (report.broken or "")
    assert_cli_names(harness, tmp_path, f"#{first.seq}", first.id, "edited")


def test_g27_deleted_middle_event_is_named(harness: Harness, tmp_path: Path) -> None:
    busy_org(harness)
    assert len(sealed_events(harness)) > 5
    tamper(harness, delete(EVENTS).where(EVENTS.c.seq == 4))
    report = verify(harness)
    assert report.checked == 3
    assert report.broken is not None
    assert "#4" in report.broken
    assert "missing" in report.broken
    assert_cli_names(harness, tmp_path, "#4", "missing")


def test_g27_deleted_first_event_is_named(harness: Harness, tmp_path: Path) -> None:
    busy_org(harness)
    seal(harness)
    tamper(harness, delete(EVENTS).where(EVENTS.c.seq == 1))
    assert "#1" in (verify(harness).broken or "")
    assert_cli_names(harness, tmp_path, "#1", "missing")


def test_g27_deleted_newest_events_are_named(harness: Harness, tmp_path: Path) -> None:
    busy_org(harness)
    newest = sealed_events(harness)[-1].seq or 0
    tamper(harness, delete(EVENTS).where(EVENTS.c.seq == newest))
    report = verify(harness)
    assert report.checked == newest - 1
    assert report.broken is not None
    assert "newest" in report.broken
    assert "deleted" in report.broken
    assert f"#{newest}" in report.broken
    assert_cli_names(harness, tmp_path, "newest", "deleted")

    tamper(harness, delete(EVENTS).where(EVENTS.c.seq >= newest - 2))
    assert "newest" in (verify(harness).broken or "")


def test_g27_emptied_log_is_named(harness: Harness, tmp_path: Path) -> None:
    busy_org(harness)
    seal(harness)
    tamper(harness, delete(EVENTS))
    report = verify(harness)
    assert report.broken is not None
    assert "deleted" in report.broken
    assert_cli_names(harness, tmp_path, "deleted")


def test_service_keeps_appending_after_verify(harness: Harness) -> None:
    owner, org, project = busy_org(harness)
    count = len(sealed_events(harness))
    assert verify(harness) == ChainReport(count, None)
    harness.key(owner, project["id"])
    seal(harness)
    assert verify(harness) == ChainReport(count + 1, None)
    newest = owner.ok("GET", f"/console/api/orgs/{org['id']}/audit", params={"limit": 1})["items"][0]
    assert (newest["action"], newest["seq"]) == ("key.created", count + 1)

    async def total() -> int:
        async with harness.runtime.sessionmaker() as db:
            return int(await db.scalar(select(func.count()).select_from(AuditEvent)) or 0)

    assert harness.run(total) == count + 1
