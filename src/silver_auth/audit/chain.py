"""The hash chain over the audit log (G27): sealing links committed events into it, in order, under a
lock only sealers take; verification walks it from genesis and names the first broken link. Runs of
events the retention purge removed are walked across by their recorded links (`AuditChainGap`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.audit.actions import AuditAction
from silver_auth.audit.models import AuditChainGap, AuditChainHead, AuditEvent
from silver_auth.db.session import read_snapshot

GENESIS_HASH = "0" * 64
HEAD_ID = 1
SEAL_BATCH = 500
"""Events per sealing transaction: the head's lock is held for one batch, never longer."""


class ChainHeadMissingError(RuntimeError):
    """The chain head row is gone: nothing can be sealed until an operator looks (run `audit verify`)."""


def _canonical(event: AuditEvent) -> bytes:
    fields = {
        "seq": event.seq,
        "id": event.id,
        "at": event.at.isoformat(timespec="microseconds"),
        "org_id": event.org_id,
        "project_id": event.project_id,
        "actor": event.actor,
        "actor_ip": event.actor_ip,
        "action": event.action,
        "target": event.target,
        "metadata": event.metadata_,
        "prev_hash": event.prev_hash,
    }
    # The insertion position is covered too, so moving an event in the listing is an edit. Where it
    # equals the chain position the hashed `seq` already pins it; that is also how events chained
    # before sealing existed (row_id = seq, hashed without it) keep their hashes.
    if event.row_id != event.seq:
        fields["row_id"] = event.row_id
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def event_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


async def seal_pending(sessionmaker: async_sessionmaker[AsyncSession], *, batch: int = SEAL_BATCH) -> int:
    """Link every committed, unsealed event into the chain, in insertion order, `batch` events per short
    transaction; returns how many were sealed. Any number of sealers may run at once: they take turns."""
    sealed = 0
    while True:
        count = await _seal_batch(sessionmaker, batch)
        sealed += count
        if count < batch:
            return sealed


async def _seal_batch(sessionmaker: async_sessionmaker[AsyncSession], batch: int) -> int:
    async with sessionmaker() as db, db.begin():
        # A look without the lock first: most wake-ups find that another sealer did the work.
        if await db.scalar(select(AuditEvent.row_id).where(AuditEvent.seq.is_(None)).limit(1)) is None:
            return 0
        # The head's row lock (Postgres) or the write lock taken at BEGIN (SQLite) makes sealers take
        # turns; record() never takes it, so audited writes do not wait for each other or for sealing.
        head = await db.scalar(select(AuditChainHead).where(AuditChainHead.id == HEAD_ID).with_for_update())
        if head is None:
            raise ChainHeadMissingError("the audit chain head row is missing")
        # Read after the lock is granted: this statement sees everything the previous holder sealed.
        pending = select(AuditEvent).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.row_id).limit(batch)
        events = (await db.scalars(pending)).all()
        seq, prev_hash = head.seq, head.hash
        for event in events:
            seq += 1
            event.seq, event.prev_hash = seq, prev_hash
            event.hash = prev_hash = event_hash(event)
        head.seq, head.hash = seq, prev_hash
        return len(events)


@dataclass(frozen=True, slots=True)
class ChainReport:
    checked: int
    broken: str | None
    """The first broken link, described; None when the sealed chain is whole."""
    unsealed: int = 0
    """Committed events not linked yet: they are not tamper-evident until the sealer reaches them."""
    oldest_unsealed: datetime | None = None
    purged: int = 0
    """Chain positions whose events the retention purge removed, walked across by their links."""


async def _gaps_in_order(db: AsyncSession, batch: int = 1000) -> AsyncIterator[AuditChainGap]:
    after = 0
    while True:
        query = select(AuditChainGap).where(AuditChainGap.first_seq > after).order_by(AuditChainGap.first_seq)
        rows = (await db.scalars(query.limit(batch))).all()
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].first_seq


async def _recorded_purges(db: AsyncSession) -> int:
    """How many events the purge records say were removed (sealed or not: a record commits with its
    purge, and is sealed moments later)."""
    records = await db.scalars(
        select(AuditEvent.metadata_).where(AuditEvent.action == str(AuditAction.AUDIT_EVENTS_PURGED))
    )
    return sum(int(metadata.get("events", 0)) for metadata in records)


async def _sealed_in_order(db: AsyncSession, batch: int = 1000) -> AsyncIterator[AuditEvent]:
    after = 0
    while True:
        rows = (
            await db.scalars(
                select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(batch)
            )
        ).all()
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1].seq
        assert last is not None  # the query selects sealed events only
        after = last


async def _broken_link(db: AsyncSession, event: AuditEvent) -> str:
    """Why `event` does not follow its predecessor: it was moved, or the predecessor was rewritten."""
    follows = None
    if event.prev_hash is not None:
        follows = await db.scalar(
            select(AuditEvent)
            .where(AuditEvent.hash == event.prev_hash, AuditEvent.row_id != event.row_id)
            .limit(1)
        )
    if follows is not None:
        where = f"now at #{follows.seq}" if follows.seq is not None else "no longer in the chain"
        return (
            f"event #{event.seq} ({event.id}) is out of order (reordered): it was sealed after "
            f"{follows.id}, {where}"
        )
    return (
        f"event #{event.seq} ({event.id}) does not follow #{(event.seq or 0) - 1}: "
        "its previous-hash link is broken"
    )


class _Walk:
    """Where the walk is: the next position expected, the hash it must link to, and the purged runs
    still ahead of it."""

    def __init__(self, gaps: AsyncIterator[AuditChainGap]) -> None:
        self.expected_seq, self.prev_hash, self.checked, self.purged = 1, GENESIS_HASH, 0, 0
        self.gaps = gaps
        self.gap: AuditChainGap | None = None

    async def start(self) -> None:
        self.gap = await anext(self.gaps, None)

    async def across_gaps(self) -> str | None:
        """Step over every purged run that starts where the walk is; why not, if a link is broken."""
        while self.gap is not None and self.gap.first_seq <= self.expected_seq:
            gap = self.gap
            if gap.first_seq < self.expected_seq or gap.last_seq < gap.first_seq:
                return f"the purged run #{gap.first_seq} to #{gap.last_seq} overlaps the chain: it was forged"
            if gap.prev_hash != self.prev_hash:
                return (
                    f"the purged run #{gap.first_seq} to #{gap.last_seq} does not follow "
                    f"#{gap.first_seq - 1}: its previous-hash link is broken"
                )
            self.prev_hash, self.expected_seq = gap.last_hash, gap.last_seq + 1
            self.purged += gap.last_seq - gap.first_seq + 1
            self.gap = await anext(self.gaps, None)
        return None


async def _walk(db: AsyncSession) -> tuple[int, int, str | None]:
    """(events checked, positions purged, the first broken link or None)."""
    walk = _Walk(_gaps_in_order(db))
    await walk.start()
    async for event in _sealed_in_order(db):
        broken = await walk.across_gaps()
        if broken:
            return walk.checked, walk.purged, broken
        if event.seq != walk.expected_seq:
            if (event.seq or 0) < walk.expected_seq:
                return (
                    walk.checked,
                    walk.purged,
                    f"event #{event.seq} lies inside a purged run: the run was forged",
                )
            return (
                walk.checked,
                walk.purged,
                f"event #{walk.expected_seq} is missing (deleted); the chain resumes at #{event.seq}",
            )
        if event.prev_hash != walk.prev_hash:
            return walk.checked, walk.purged, await _broken_link(db, event)
        if event.hash is None or event_hash(event) != event.hash:
            return (
                walk.checked,
                walk.purged,
                f"event #{event.seq} ({event.id}, {event.action}) was edited: "
                "its content (or its place in the log) no longer matches its hash",
            )
        walk.prev_hash, walk.expected_seq, walk.checked = event.hash, walk.expected_seq + 1, walk.checked + 1
    broken = await walk.across_gaps()  # the newest events may have been purged too
    if broken is None and walk.gap is not None:
        broken = f"the purged run #{walk.gap.first_seq} to #{walk.gap.last_seq} lies past the chain's end"
    if broken is None:
        broken = await _head_mismatch(db, walk)
    if broken is None and (recorded := await _recorded_purges(db)) != walk.purged:
        broken = (
            f"{walk.purged} chain position(s) are purged but the purge records account for {recorded}: "
            "events were deleted and passed off as purged (or a purge record was removed)"
        )
    return walk.checked, walk.purged, broken


async def _head_mismatch(db: AsyncSession, walk: _Walk) -> str | None:
    last, checked = walk.expected_seq - 1, walk.checked
    head = await db.get(AuditChainHead, HEAD_ID)
    if head is None:
        return "the chain head row is missing"
    if head.seq > last:
        return f"the chain ends at #{last} but the head records #{head.seq}: the newest events were deleted"
    if head.seq < last:
        walk.checked = max(0, checked - (last - head.seq))
        return (
            f"events #{head.seq + 1} to #{last} were added outside the service: the head records #{head.seq}"
        )
    if head.hash != walk.prev_hash:
        if last == 0:
            return "the chain head was edited: the log is empty but the head is not at genesis"
        walk.checked = max(0, checked - 1)
        return (
            f"the newest event #{last} does not match the hash the head records: "
            "it was rewritten (or the head was edited)"
        )
    return None


async def verify_chain(db: AsyncSession) -> ChainReport:
    """Walk the sealed chain from genesis, across the runs the retention purge removed; name the first
    event that was edited, deleted, reordered or added outside the service, and count the events still
    waiting to be sealed."""
    # One snapshot for the walk and the head: a sealer committing mid-walk must not read as tampering.
    await read_snapshot(db)
    checked, purged, broken = await _walk(db)
    unsealed, oldest = (
        await db.execute(select(func.count(), func.min(AuditEvent.at)).where(AuditEvent.seq.is_(None)))
    ).one()
    return ChainReport(checked, broken, int(unsealed), oldest, purged)
