"""The alert dispatcher: an asyncio task per process (the app's lifespan, `silver-auth worker`) that takes
the raises and clears `alerts.service` hands it, decides in the database whether the channels hear of
each (records.decide), sends through apprise off the caller's path, and records every channel's answer.

Callers never wait for it: raise_alert and clear_alert are synchronous and return at once, from a request
handler, a background task or another thread. A send never holds a transaction (L2, G28)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.alerts.channels import Channel, ChannelOutcome, Level, configured_channels, notify
from silver_auth.alerts.models import Alert
from silver_auth.alerts.records import (
    Decision,
    Notice,
    decide,
    record_deliveries,
    release_held,
    standing_keys,
)
from silver_auth.core import clock
from silver_auth.core.metrics import count_alert_delivery
from silver_auth.core.redaction import redact_text
from silver_auth.settings import Settings

SWEEP_SECONDS = 60.0
"""How often the dispatcher re-reads which alerts stand (any process's) and sends held alerts whose
window is over."""
QUEUE_LIMIT = 10_000
"""Notices waiting at most; past it the oldest go (each was logged when raised)."""
STOP_GRACE_SECONDS = 5.0
PRODUCT = "SEQN Auth"

Key = tuple[str, str]


def log() -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("silver_auth.alerts")
    return logger


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact_text(text.splitlines()[0])[:300] if text else ""


def _details(context: dict[str, Any]) -> str:
    return "\n".join(f"{name}: {value}" for name, value in context.items())


class AlertDispatcher:
    """One per process (per event loop). `submit` is safe from any thread; `idle` waits until every
    notice submitted so far is recorded and sent."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        channels: list[Channel] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.channels = configured_channels(settings) if channels is None else channels
        self.window = timedelta(minutes=settings.alert_dedupe_minutes)
        self.timeout = settings.alert_timeout_seconds
        self.standing_in_database: set[Key] = set()
        """(kind, subject) standing in the database, any process's: what a clear here may end."""
        self._queue: deque[Notice] = deque(maxlen=QUEUE_LIMIT)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._sends: dict[Key, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    # --- from the callers ---------------------------------------------------------------------------

    def submit(self, notice: Notice) -> bool:
        """Queue `notice`; False when this dispatcher no longer runs."""
        loop, task = self._loop, self._task
        if loop is None or loop.is_closed() or task is None or task.done():
            return False
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._enqueue(notice)
        else:
            try:
                loop.call_soon_threadsafe(self._enqueue, notice)
            except RuntimeError:  # the loop closed in between
                return False
        return True

    def _enqueue(self, notice: Notice) -> None:
        self._queue.append(notice)
        self._idle.clear()
        self._wake.set()

    async def idle(self) -> None:
        """Wait until everything submitted so far is recorded and its sends are done (tests, CLI)."""
        await self._idle.wait()

    # --- lifetime -----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.sweep()
        self._task = asyncio.create_task(self._run(), name="alert-dispatcher")
        _register(self)

    async def stop(self) -> None:
        """Record and send what is queued (within the channel timeout and a few seconds), then end."""
        _unregister(self)
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is None:
            return
        try:
            async with asyncio.timeout(self.timeout + STOP_GRACE_SECONDS):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
        self._task = None

    async def _run(self) -> None:
        last_sweep = clock.monotonic()
        while True:
            while self._queue:
                notice = self._queue.popleft()
                try:
                    await self._handle(notice)
                except Exception as exc:  # the dispatcher must not die: this one stays in the log
                    log().error(
                        "alert_dispatch_failed",
                        kind=notice.kind,
                        subject=notice.subject,
                        error_type=type(exc).__name__,
                        error=_first_line(exc),
                    )
            if self._stopping:
                break
            self._settle()
            if clock.monotonic() - last_sweep >= SWEEP_SECONDS:
                last_sweep = clock.monotonic()
                await self.sweep()
            with suppress(TimeoutError):
                async with asyncio.timeout(SWEEP_SECONDS):
                    await self._wake.wait()
            self._wake.clear()
        if self._sends:
            await asyncio.wait(list(self._sends.values()))
        self._idle.set()

    def _settle(self, *_: object) -> None:
        if not self._queue and not self._sends:
            self._idle.set()

    async def sweep(self) -> None:
        """Re-read which alerts stand in the database; send the held ones whose window is over."""
        try:
            self.standing_in_database = await standing_keys(self.sessionmaker)
            held = await release_held(self.sessionmaker, self.window)
        except Exception as exc:  # the database is away: the next sweep tries again
            log().warning("alert_sweep_failed", error_type=type(exc).__name__, error=_first_line(exc))
            return
        for alert in held:
            self._send_raise(alert, again=True)

    # --- deciding and sending -----------------------------------------------------------------------

    async def _handle(self, notice: Notice) -> None:
        key = (notice.kind, notice.subject)
        try:
            decision: Decision | None = await decide(self.sessionmaker, notice, self.window)
        except Exception as exc:
            # L2: an alert the database cannot take (the outage may be the very thing alerted on)
            # still goes out, unrecorded; without the database's word each replica may send it.
            log().error(
                "alert_record_failed",
                kind=notice.kind,
                subject=notice.subject,
                error_type=type(exc).__name__,
                error=_first_line(exc),
            )
            decision = Decision(None, send=True)
        else:
            if notice.action == "raise":
                self.standing_in_database.add(key)
            else:
                self.standing_in_database.discard(key)
        if decision is None or not decision.send:
            return
        if notice.action == "raise":
            title = f"{PRODUCT} alert: {notice.kind} ({notice.subject})"
            body = (notice.message, _details(notice.context))
            self._send(decision.alert_id, key, "raised", title, body, "failure")
        else:
            title = f"{PRODUCT} resolved: {notice.kind} ({notice.subject})"
            self._send(decision.alert_id, key, "resolved", title, (notice.message,), "success")

    def _send_raise(self, alert: Alert, *, again: bool) -> None:
        title = f"{PRODUCT} alert{' (still standing)' if again else ''}: {alert.kind} ({alert.subject})"
        note = "cleared, then raised again within the dedupe window, and still standing" if again else ""
        body = (alert.message, _details(dict(alert.context)), note)
        self._send(alert.id, (alert.kind, alert.subject), "raised", title, body, "failure")

    def _send(
        self,
        alert_id: str | None,
        key: Key,
        event: Literal["raised", "resolved"],
        title: str,
        lines: tuple[str, ...],
        level: Level,
    ) -> None:
        """Send in a task of its own (a slow channel delays no other alert), after this (kind,
        subject)'s previous send, so a resolution never overtakes its raise."""
        if not self.channels:  # development without channels: the log line was the alert
            return
        previous = self._sends.get(key)
        body = "\n".join(line for line in (*lines, alert_id or "") if line)

        async def send() -> None:
            if previous is not None:
                with suppress(Exception):
                    await previous
            try:
                outcomes = await notify(
                    self.channels, title=title, body=body, level=level, within=self.timeout
                )
                _log_outcomes(alert_id, event, outcomes)
                if alert_id is not None:
                    await record_deliveries(self.sessionmaker, alert_id, event, outcomes)
            except Exception as exc:
                log().error(
                    "alert_send_failed",
                    alert_id=alert_id,
                    error_type=type(exc).__name__,
                    error=_first_line(exc),
                )

        task = asyncio.create_task(send(), name=f"alert-send-{alert_id}")
        self._sends[key] = task
        self._idle.clear()

        def done(finished: asyncio.Task[None]) -> None:
            if self._sends.get(key) is finished:
                del self._sends[key]
            self._settle()

        task.add_done_callback(done)


def _log_outcomes(alert_id: str | None, event: str, outcomes: list[ChannelOutcome]) -> None:
    for outcome in outcomes:
        count_alert_delivery("sent" if outcome.sent else "failed")
        if outcome.sent:
            log().info("alert_delivered", alert_id=alert_id, notification=event, channel=outcome.channel)
        else:
            log().warning(
                "alert_delivery_failed",
                alert_id=alert_id,
                notification=event,
                channel=outcome.channel,
                channel_index=outcome.index,
                error=outcome.error,
            )


# --- the process's dispatchers ----------------------------------------------------------------------

_by_loop: dict[asyncio.AbstractEventLoop, AlertDispatcher] = {}
_running: list[AlertDispatcher] = []


def _register(dispatcher: AlertDispatcher) -> None:
    assert dispatcher._loop is not None
    _by_loop[dispatcher._loop] = dispatcher
    _running.append(dispatcher)


def _unregister(dispatcher: AlertDispatcher) -> None:
    if dispatcher._loop is not None and _by_loop.get(dispatcher._loop) is dispatcher:
        del _by_loop[dispatcher._loop]
    with suppress(ValueError):
        _running.remove(dispatcher)


def current() -> AlertDispatcher | None:
    """The dispatcher of the running event loop; called off any loop (a thread), the latest started.
    (One process runs one; tests serve several apps at once, each on its own loop.)"""
    with suppress(RuntimeError):
        found = _by_loop.get(asyncio.get_running_loop())
        if found is not None:
            return found
    return _running[-1] if _running else None


@asynccontextmanager
async def dispatching(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> AsyncIterator[AlertDispatcher]:
    """Run a dispatcher for the block: alerts raised meanwhile reach the channels and the database."""
    dispatcher = AlertDispatcher(sessionmaker, settings)
    await dispatcher.start()
    try:
        yield dispatcher
    finally:
        await dispatcher.stop()


async def drain() -> None:
    """On the dispatcher's loop: wait until every alert raised so far is recorded and sent."""
    dispatcher = current()
    if dispatcher is not None:
        await dispatcher.idle()
