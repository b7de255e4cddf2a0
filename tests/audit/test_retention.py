"""Audit retention (L7, G27): housekeeping removes events older than their org's plan keeps them (Free 30
days, Pro 180, Scale 365), out of the middle of the one global chain, and `audit verify` still checks
every event left, walking across each removed run by the links recorded for it (`audit_chain_gaps`).
Events of no org stay; events of a deleted org stay as long as the longest plan keeps any. The org's
listing stops at its retention even before a purge runs.

Most tests use `bare`: the test's database with no app around it, so sealing happens when they say."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from silver_auth.audit.chain import ChainReport, seal_pending, verify_chain
from silver_auth.audit.models import AuditChainGap, AuditEvent, AuditEventImmutableError
from silver_auth.audit.retention import purge_past_retention
from silver_auth.audit.service import Actor, AuditAction, AuditFilter, list_events, record
from silver_auth.core import clock
from silver_auth.core.ids import new_id
from silver_auth.db.engine import create_engine, create_sessionmaker
from silver_auth.db.session import transaction
from silver_auth.ops.housekeeping import purge_expired
from silver_auth.orgs.models import Org
from silver_auth.settings import Settings
from tests.audit.support import audit, cli_verify, verify
from tests.factories import Harness

Sessionmaker = async_sessionmaker[AsyncSession]
DAY = 24 * 3600
ACTOR = Actor("acc_writer", "198.51.100.7")
NO_ORG = None


@pytest.fixture
async def bare(settings: Settings) -> AsyncIterator[Sessionmaker]:
    engine = create_engine(settings)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def new_org(sessionmaker: Sessionmaker, plan: str) -> str:
    async with transaction(sessionmaker) as db:
        org = Org(id=new_id("org"), name=plan, plan=plan, created_at=clock.now())
        db.add(org)
    return org.id


async def append(sessionmaker: Sessionmaker, *org_ids: str | None) -> None:
    """One event per org id, in this order (one transaction each: chain order is commit order)."""
    for org_id in org_ids:
        async with transaction(sessionmaker) as db:
            await record(db, AuditAction.ORG_UPDATED, actor=ACTOR, org_id=org_id, target=org_id)


async def purge(sessionmaker: Sessionmaker) -> int:
    async with transaction(sessionmaker) as db:
        return await purge_past_retention(db)


async def check(sessionmaker: Sessionmaker) -> ChainReport:
    """Seal what is pending (the purge records), then verify."""
    await seal_pending(sessionmaker)
    async with sessionmaker() as db:
        return await verify_chain(db)


async def gaps(sessionmaker: Sessionmaker) -> list[tuple[int, int]]:
    async with sessionmaker() as db:
        rows = await db.scalars(select(AuditChainGap).order_by(AuditChainGap.first_seq))
        return [(gap.first_seq, gap.last_seq) for gap in rows]


async def kept(sessionmaker: Sessionmaker) -> list[tuple[int, str | None]]:
    """(seq, org) of every event left, purge records aside."""
    async with sessionmaker() as db:
        rows = await db.execute(
            select(AuditEvent.seq, AuditEvent.org_id)
            .where(AuditEvent.action != str(AuditAction.AUDIT_EVENTS_PURGED))
            .order_by(AuditEvent.seq)
        )
        return [(int(seq), org_id) for seq, org_id in rows]


async def test_l7_purges_follow_each_plan_and_the_chain_still_verifies(bare: Sessionmaker) -> None:
    free, pro, scale, gone = [await new_org(bare, plan) for plan in ("free", "pro", "scale", "free")]
    # Chain positions 1..8, the orgs interleaved as a busy service interleaves them.
    await append(bare, scale, scale, free, pro, free, NO_ORG, scale, gone)
    await seal_pending(bare)
    async with transaction(bare) as db:
        await db.execute(delete(Org).where(Org.id == gone))  # its events stay behind, org_id and all

    clock.advance(31 * DAY)
    assert await purge(bare) == 2  # the Free org's (#3, #5); the deleted org's wait for the longest plan
    assert await gaps(bare) == [(3, 3), (5, 5)]
    report = await check(bare)
    assert (report.broken, report.purged, report.checked) == (None, 2, 7)  # 6 left and the purge record

    clock.advance(150 * DAY)
    assert await purge(bare) == 1  # the Pro org's #4 joins the runs on both sides of it
    assert await gaps(bare) == [(3, 5)]
    assert (await check(bare)).purged == 3

    clock.advance(185 * DAY)
    assert await purge(bare) == 4  # Scale's #1, #2 and #7; the deleted org's #8 after 365 days
    assert await gaps(bare) == [(1, 5), (7, 8)]
    report = await check(bare)
    assert (report.broken, report.purged, report.unsealed) == (None, 7, 0)
    assert await kept(bare) == [(6, NO_ORG)]  # events of no org have no plan: they stay
    async with bare() as db:
        records = list(
            await db.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == str(AuditAction.AUDIT_EVENTS_PURGED))
                .order_by(AuditEvent.seq)
            )
        )
    assert [r.metadata_["events"] for r in records] == [2, 1, 4]
    assert records[-1].metadata_["by_plan"] == {"scale": 3, "deleted_orgs": 1}
    assert {r.org_id for r in records} == {None} and {r.actor for r in records} == {"system"}
    assert await purge(bare) == 0  # nothing more, and no record of nothing
    assert len(await kept(bare)) == 1


async def test_new_events_chain_on_after_a_purge(bare: Sessionmaker) -> None:
    free = await new_org(bare, "free")
    await append(bare, free, free, free)
    await seal_pending(bare)
    clock.advance(31 * DAY)
    await append(bare, free)
    assert await purge(bare) == 3
    await append(bare, free, NO_ORG)
    report = await check(bare)
    assert (report.broken, report.purged, report.checked) == (None, 3, 4)
    assert await gaps(bare) == [(1, 3)]  # the chain's new start


async def test_unsealed_events_are_never_purged(bare: Sessionmaker) -> None:
    """An unsealed event has no chain position to leave a gap at: it waits for the sealer."""
    free = await new_org(bare, "free")
    await append(bare, free)
    clock.advance(31 * DAY)
    assert await purge(bare) == 0
    await seal_pending(bare)
    assert await purge(bare) == 1
    assert (await check(bare)).broken is None


async def test_events_are_deleted_by_the_purge_only(bare: Sessionmaker) -> None:
    """The ORM still refuses to delete audit events; only the retention purge's option lets it."""
    free = await new_org(bare, "free")
    await append(bare, free)
    with pytest.raises(AuditEventImmutableError):
        async with transaction(bare) as db:
            await db.execute(delete(AuditEvent).where(AuditEvent.org_id == free))


# --- tampering with a purged chain ----------------------------------------------------------------


async def _purged_chain(sessionmaker: Sessionmaker) -> tuple[str, str]:
    """Positions 1..6: Free, Scale, Free, Scale, Scale, Scale; the Free ones purged (#1, #3)."""
    free, scale = await new_org(sessionmaker, "free"), await new_org(sessionmaker, "scale")
    await append(sessionmaker, free, scale, free, scale, scale, scale)
    await seal_pending(sessionmaker)
    clock.advance(31 * DAY)
    assert await purge(sessionmaker) == 2
    assert (await check(sessionmaker)).broken is None
    return free, scale


async def _run(sessionmaker: Sessionmaker, *statements: Executable) -> None:
    """Plain SQL on a bare connection: what an intruder in the database does."""
    async with sessionmaker() as db:
        connection = await db.connection()
        for statement in statements:
            await connection.execute(statement)
        await db.commit()


EVENTS = AuditEvent.__table__
GAPS = AuditChainGap.__table__


async def test_g27_an_event_deleted_and_passed_off_as_purged_is_found(bare: Sessionmaker) -> None:
    await _purged_chain(bare)
    async with bare() as db:
        victim = await db.scalar(select(AuditEvent).where(AuditEvent.seq == 5))
        assert victim is not None
    await _run(
        bare,
        EVENTS.delete().where(EVENTS.c.seq == 5),
        insert(GAPS).values(first_seq=5, last_seq=5, prev_hash=victim.prev_hash, last_hash=victim.hash),
    )
    broken = (await check(bare)).broken or ""
    assert "purge records account for 2" in broken and "3 chain position(s) are purged" in broken


async def test_g27_a_purged_run_whose_links_were_edited_is_found(bare: Sessionmaker) -> None:
    await _purged_chain(bare)
    await _run(bare, update(GAPS).where(GAPS.c.first_seq == 3).values(prev_hash="f" * 64))
    assert (
        await check(bare)
    ).broken == "the purged run #3 to #3 does not follow #2: its previous-hash link is broken"


async def test_g27_a_purged_run_removed_reads_as_a_deleted_event(bare: Sessionmaker) -> None:
    await _purged_chain(bare)
    await _run(bare, GAPS.delete().where(GAPS.c.first_seq == 3))
    assert (await check(bare)).broken == "event #3 is missing (deleted); the chain resumes at #4"


async def test_g27_an_event_left_after_a_purge_is_still_tamper_evident(bare: Sessionmaker) -> None:
    await _purged_chain(bare)
    await _run(bare, EVENTS.update().where(EVENTS.c.seq == 4).values(actor="acc_framed"))
    report = await check(bare)
    assert (report.checked, "#4" in (report.broken or ""), "edited" in (report.broken or "")) == (
        1,
        True,
        True,
    )


async def test_g27_a_purge_record_removed_is_found(bare: Sessionmaker) -> None:
    await _purged_chain(bare)
    await _run(bare, EVENTS.delete().where(EVENTS.c.action == str(AuditAction.AUDIT_EVENTS_PURGED)))
    assert "the newest events were deleted" in ((await check(bare)).broken or "")


# --- through the app: housekeeping, the listing and the CLI ----------------------------------------


def test_l7_the_listing_stops_at_the_retention_and_housekeeping_purges(
    harness: Harness, tmp_path: Path
) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    old = {e["id"] for e in audit(owner, org_id)["items"]}  # org.created, member.added
    clock.advance(31 * DAY)
    owner = harness.sign_in(owner.email)  # a month later: a new console session
    owner.ok("PATCH", f"/console/api/orgs/{org_id}", json={"name": "Renamed"})
    listed = audit(owner, org_id)["items"]
    assert [e["action"] for e in listed] == ["org.updated"]  # older than 30 days: not listed, even unpurged
    assert not old & {e["id"] for e in listed}

    async def housekeeping() -> int:
        await seal_pending(harness.runtime.sessionmaker)
        async with transaction(harness.runtime.sessionmaker) as db:
            return (await purge_expired(db))["audit_events"]

    assert harness.run(housekeeping) == len(old)
    assert [e["id"] for e in audit(owner, org_id)["items"]] == [e["id"] for e in listed]
    assert verify(harness).broken is None
    result = cli_verify(harness, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f", {len(old)} older purged by retention" in result.stdout

    async def everything() -> list[str]:
        async with harness.runtime.sessionmaker() as db:
            page, _ = await list_events(db, org_id, AuditFilter(), before=None, limit=50)
            return [e.id for e in page]

    assert harness.run(everything) == [e["id"] for e in listed]
