"""The alert records: the dedupe decision, taken in the database so that every process agrees (two
replicas raising one alert send it once), and what each channel answered. Each function here is its own
unit of work on the dispatcher's sessionmaker: no caller's transaction is involved, and none is held
across a send."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.alerts.channels import ChannelOutcome
from silver_auth.alerts.models import Alert, AlertDelivery
from silver_auth.alerts.schemas import AlertDeliveryPublic, AlertPage, AlertPublic
from silver_auth.core import clock
from silver_auth.core.ids import new_id
from silver_auth.db.session import transaction, write_lock

RETRIES = 3
"""Conflicts with another process deciding on the same (kind, subject) at once, before giving up."""
TEST_KIND = "alert_test"


@dataclass(frozen=True, slots=True)
class Notice:
    """One raise or clear, redacted, on its way from the caller to the dispatcher."""

    action: Literal["raise", "clear"]
    kind: str
    subject: str
    message: str
    context: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=clock.now)


@dataclass(frozen=True, slots=True)
class Decision:
    """What a raise or clear came to: `send` the channels this notification, or nothing."""

    alert_id: str | None
    """None when the database could not take it (sent unrecorded)."""
    send: bool


class Conflict(Exception):
    """Another process changed this (kind, subject) between our read and our write: decide again."""


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


async def _standing(db: AsyncSession, kind: str, subject: str) -> Alert | None:
    query = select(Alert).where(Alert.kind == kind, Alert.subject == subject, Alert.state != "cleared")
    return (await db.scalars(query)).first()


async def _last_cleared(db: AsyncSession, kind: str, subject: str) -> Alert | None:
    query = (
        select(Alert)
        .where(Alert.kind == kind, Alert.subject == subject, Alert.state == "cleared")
        .order_by(Alert.notified_at.desc(), Alert.id.desc())
        .limit(1)
    )
    return (await db.scalars(query)).first()


async def _decide_raise(db: AsyncSession, notice: Notice, window: timedelta) -> Decision:
    await write_lock(db)  # SQLite: read and write as one; Postgres: the standing index decides
    seen = {"occurrences": Alert.occurrences + 1, "last_seen_at": notice.at}
    standing = await _standing(db, notice.kind, notice.subject)
    if standing is not None:  # a repeat, from this process or another
        folded = await db.execute(
            update(Alert).where(Alert.id == standing.id, Alert.state != "cleared").values(**seen)
        )
        if _rowcount(folded) != 1:
            raise Conflict
        return Decision(standing.id, send=False)
    now = clock.now()
    latest = await _last_cleared(db, notice.kind, notice.subject)
    if latest is not None and latest.notified_at is not None and latest.notified_at > now - window:
        # Back within the window of its last notification: held, not sent (a flapping condition pages
        # once per window); the dispatcher sends it if it still stands when the window is over.
        reopened = await db.execute(
            update(Alert)
            .where(Alert.id == latest.id, Alert.state == "cleared")
            .values(state="held", cleared_at=None, clear_message=None, **seen)
        )
        if _rowcount(reopened) != 1:
            raise Conflict
        return Decision(latest.id, send=False)
    alert = _new_alert(notice, state="raised", notified_at=now)
    db.add(alert)
    await db.flush()
    return Decision(alert.id, send=True)


def _new_alert(notice: Notice, *, state: str, notified_at: datetime, **ending: Any) -> Alert:
    """A first alert row of the notice's (kind, subject), seen once, at the notice's time."""
    return Alert(
        id=new_id("alr"),
        kind=notice.kind,
        subject=notice.subject,
        message=notice.message,
        context=notice.context,
        state=state,
        raised_at=notice.at,
        last_seen_at=notice.at,
        occurrences=1,
        notified_at=notified_at,
        **ending,
    )


async def _decide_clear(db: AsyncSession, notice: Notice) -> Decision | None:
    await write_lock(db)
    alert = await _standing(db, notice.kind, notice.subject)
    if alert is None:
        return None
    was = alert.state  # read now: the UPDATE below refreshes the loaded row
    cleared = await db.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.state == was)
        .values(state="cleared", cleared_at=notice.at, clear_message=notice.message)
    )
    if _rowcount(cleared) != 1:
        raise Conflict
    # A held alert was never sent again after its last resolution: the channels already think it over.
    return Decision(alert.id, send=was == "raised")


async def decide(
    sessionmaker: async_sessionmaker[AsyncSession], notice: Notice, window: timedelta
) -> Decision | None:
    """Record `notice` and say whether the channels hear of it: a raise is sent unless its (kind,
    subject) stands or was sent within `window`; a clear is sent once, if its raise was."""
    for attempt in range(RETRIES):
        try:
            async with transaction(sessionmaker) as db:
                if notice.action == "raise":
                    return await _decide_raise(db, notice, window)
                return await _decide_clear(db, notice)
        except (Conflict, IntegrityError):  # another process took the decision first: read it
            if attempt == RETRIES - 1:
                raise
    return None


async def release_held(sessionmaker: async_sessionmaker[AsyncSession], window: timedelta) -> list[Alert]:
    """Held alerts still standing once their window is over: claimed here (one process sends each) and
    returned, to be sent."""
    now = clock.now()
    async with transaction(sessionmaker) as db:
        held = list(
            await db.scalars(select(Alert).where(Alert.state == "held", Alert.notified_at <= now - window))
        )
        claimed = []
        for alert in held:
            done = await db.execute(
                update(Alert)
                .where(Alert.id == alert.id, Alert.state == "held")
                .values(state="raised", notified_at=now)
            )
            if _rowcount(done) == 1:
                claimed.append(alert)
        return claimed


async def standing_keys(sessionmaker: async_sessionmaker[AsyncSession]) -> set[tuple[str, str]]:
    """Every (kind, subject) standing in the database, whichever process raised it."""
    async with sessionmaker() as db:
        rows = await db.execute(select(Alert.kind, Alert.subject).where(Alert.state != "cleared"))
        return {(kind, subject) for kind, subject in rows.all()}


async def record_deliveries(
    sessionmaker: async_sessionmaker[AsyncSession],
    alert_id: str,
    event: Literal["raised", "resolved", "test"],
    outcomes: list[ChannelOutcome],
) -> None:
    if not outcomes:
        return
    now = clock.now()
    async with transaction(sessionmaker) as db:
        db.add_all(
            AlertDelivery(
                id=new_id("alrd"),
                alert_id=alert_id,
                event=event,
                channel_index=outcome.index,
                channel=outcome.channel,
                service=outcome.service,
                status="sent" if outcome.sent else "failed",
                error=outcome.error,
                at=now,
            )
            for outcome in outcomes
        )


async def record_test(sessionmaker: async_sessionmaker[AsyncSession], notice: Notice) -> str:
    """A test alert: recorded as raised and cleared at once, never deduplicated (it is asked for)."""
    async with transaction(sessionmaker) as db:
        alert = _new_alert(
            notice,
            state="cleared",
            notified_at=notice.at,
            cleared_at=notice.at,
            clear_message="a test: nothing to resolve",
        )
        db.add(alert)
    return alert.id


async def list_alerts(
    db: AsyncSession, *, limit: int, offset: int, state: str | None = None, kind: str | None = None
) -> AlertPage:
    """Alerts newest first, each with every channel's outcome."""
    query = select(Alert)
    if state == "standing":
        query = query.where(Alert.state != "cleared")
    elif state is not None:
        query = query.where(Alert.state == state)
    if kind is not None:
        query = query.where(Alert.kind == kind)
    query = query.order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit + 1).offset(offset)
    alerts = list(await db.scalars(query))
    page = alerts[:limit]
    deliveries: dict[str, list[AlertDeliveryPublic]] = {alert.id: [] for alert in page}
    if page:
        rows = await db.scalars(
            select(AlertDelivery)
            .where(AlertDelivery.alert_id.in_(list(deliveries)))
            .order_by(AlertDelivery.at, AlertDelivery.channel_index)
        )
        for row in rows:
            deliveries[row.alert_id].append(
                AlertDeliveryPublic(
                    event=row.event,
                    channel_index=row.channel_index,
                    channel=row.channel,
                    service=row.service,
                    status=row.status,
                    error=row.error,
                    at=row.at,
                )
            )
    return AlertPage(
        items=[
            AlertPublic(
                id=alert.id,
                kind=alert.kind,
                subject=alert.subject,
                message=alert.message,
                context=dict(alert.context),
                state=alert.state,
                raised_at=alert.raised_at,
                last_seen_at=alert.last_seen_at,
                occurrences=alert.occurrences,
                notified_at=alert.notified_at,
                cleared_at=alert.cleared_at,
                clear_message=alert.clear_message,
                deliveries=deliveries[alert.id],
            )
            for alert in page
        ],
        next_offset=offset + limit if len(alerts) > limit else None,
    )


async def purge_cleared_before(db: AsyncSession, cutoff: datetime) -> int:
    """Delete alerts cleared before `cutoff`, with their channels' outcomes; standing ones stay."""
    old = select(Alert.id).where(Alert.state == "cleared", Alert.cleared_at < cutoff)
    await db.execute(delete(AlertDelivery).where(AlertDelivery.alert_id.in_(old)))
    result = await db.execute(delete(Alert).where(Alert.state == "cleared", Alert.cleared_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]
