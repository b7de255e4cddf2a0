"""The one alert path (L2). Every alert of the service (webhook backlog and failures, sustained 429s,
Redis down, monitor failures…) is `raise_alert(kind, subject, message, **context)` and, once the
condition is over, `clear_alert(kind, subject, message)`. Both are synchronous and return at once, from
a request handler, a background task or a thread; neither ever raises nor waits on a channel.

Each call is redacted first (G28: a secret in the message or the context reaches no log, row or
channel), then written to the log (`alert` at warning, `alert_cleared` at info: with no channel
configured, in development, that line is the alert), then handed to the process's dispatcher
(alerts.dispatcher, started by the app's lifespan and by `silver-auth worker`), which records it,
deduplicates it across processes in the database and sends it through apprise to every channel of
SILVER_ALERT_URLS, recording each channel's answer. A process running no dispatcher (a one-off command
that did not open `dispatching(…)`) logs the alert and records nothing: the call must not block on a
database it has no engine for.

A (kind, subject) is raised once in a process until it clears here; a clear ends it for the whole
service, so call it when the condition is over service-wide (it is read from shared state: the
database, Redis), not merely in this process."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.alerts import records
from silver_auth.alerts.channels import ChannelOutcome, configured_channels, notify
from silver_auth.alerts.dispatcher import PRODUCT, current
from silver_auth.alerts.records import TEST_KIND, Notice
from silver_auth.alerts.schemas import AlertPage
from silver_auth.core.redaction import redact, redact_text
from silver_auth.settings import Settings

KIND_LENGTH = 60
SUBJECT_LENGTH = 200

_raised: dict[tuple[str, str], dict[str, Any]] = {}
"""Alerts standing in this process, by (kind, subject): their message and context, redacted."""


def _log() -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("silver_auth.alerts")
    return logger


def _recorded_key(kind: str, subject: str) -> tuple[str, str]:
    """(kind, subject) as the database holds them: redacted, cut to the columns."""
    return redact_text(kind)[:KIND_LENGTH], redact_text(subject)[:SUBJECT_LENGTH]


def _plain(fields: Any) -> dict[str, Any]:
    """Context as JSON can hold it (a datetime or a Decimal becomes its text)."""
    plain: dict[str, Any] = json.loads(json.dumps(fields, default=str))
    return plain


def _submit(notice: Notice) -> None:
    dispatcher = current()
    if dispatcher is not None:
        dispatcher.submit(notice)


def raise_alert(kind: str, subject: str, message: str, **context: Any) -> bool:
    """Raise `kind` for `subject` (an endpoint id, a key prefix) unless it stands; True if raised now."""
    if (kind, subject) in _raised:
        return False
    fields = _plain(redact(context))
    text = redact_text(message)
    _raised[(kind, subject)] = {"message": text, **fields}
    _log().warning("alert", kind=kind, subject=subject, message=text, **fields)
    recorded_kind, recorded_subject = _recorded_key(kind, subject)
    _submit(Notice("raise", recorded_kind, recorded_subject, text, fields))
    return True


def clear_alert(kind: str, subject: str, message: str) -> bool:
    """The condition is over; True if an alert stood (raised here, or standing in the database)."""
    stood_here = _raised.pop((kind, subject), None) is not None
    dispatcher = current()
    elsewhere = dispatcher.standing_in_database if dispatcher is not None else set()
    if not stood_here and not elsewhere:  # the common case, each round of a watch: nothing to look up
        return False
    recorded = _recorded_key(kind, subject)
    if not stood_here and recorded not in elsewhere:
        return False
    text = redact_text(message)
    _log().info("alert_cleared", kind=kind, subject=subject, message=text)
    _submit(Notice("clear", *recorded, text))
    return True


def standing() -> list[dict[str, Any]]:
    """The alerts raised and not cleared in this process: kind, subject, message and context fields."""
    return [{"kind": kind, "subject": subject, **fields} for (kind, subject), fields in _raised.items()]


async def list_alerts(
    db: AsyncSession, *, limit: int, offset: int, state: str | None = None, kind: str | None = None
) -> AlertPage:
    """Recorded alerts, newest first, with every channel's outcome; `state` is `standing`, `raised`,
    `held` or `cleared`."""
    return await records.list_alerts(db, limit=limit, offset=offset, state=state, kind=kind)


@dataclass(frozen=True, slots=True)
class TestAlertReport:
    alert_id: str
    outcomes: list[ChannelOutcome]


async def send_test_alert(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> TestAlertReport:
    """Send a test alert to every configured channel now (never deduplicated) and record it with each
    channel's outcome (`silver-auth alerts test`)."""
    host = platform.node() or "unknown host"
    notice = Notice(
        "raise",
        TEST_KIND,
        redact_text(host)[:SUBJECT_LENGTH],
        f"A test alert from `silver-auth alerts test` on {host}: this channel receives SEQN Auth's alerts "
        "(L2). Nothing to do.",
    )
    alert_id = await records.record_test(sessionmaker, notice)
    channels = configured_channels(settings)
    outcomes = await notify(
        channels,
        title=f"{PRODUCT} test alert ({notice.subject})",
        body=f"{notice.message}\n{alert_id}",
        level="info",
        within=settings.alert_timeout_seconds,
    )
    await records.record_deliveries(sessionmaker, alert_id, "test", outcomes)
    return TestAlertReport(alert_id, outcomes)
