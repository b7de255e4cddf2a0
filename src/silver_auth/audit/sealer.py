"""Keeping the chain sealed in the background: the app runs `app_sealer()` in its lifespan, and a
separate worker can run `seal_forever()` on its own sessionmaker. Both call `chain.seal_pending`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from silver_auth.audit.chain import seal_pending
from silver_auth.core.redaction import redact_text
from silver_auth.db.engine import create_engine, create_sessionmaker
from silver_auth.db.wakeup import CommitWakers, first_of
from silver_auth.settings import Settings

INTERVAL = 5.0
"""Seconds between unprompted rounds: events committed where no sealer is woken (the CLI, another
process) wait at most this long."""
SETTLE = 0.02
"""Seconds to wait after a wake-up, so a burst of commits is sealed in one transaction."""
MAX_BACKOFF = 60.0
STOP_TIMEOUT = 5.0
"""Seconds the app's shutdown spends sealing what is left before it lets go."""


def log() -> structlog.typing.FilteringBoundLogger:
    # Looked up per use: a logger cached at import would keep the stderr of the first configuration.
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("silver_auth.audit")
    return logger


_wakers = CommitWakers()
wake_after_commit = _wakers.wake_after_commit


def _failure(exc: BaseException) -> str:
    # The first line only, redacted: database errors carry the bound parameters on later lines.
    lines = str(exc).strip().splitlines()
    return redact_text(lines[0]) if lines else ""


async def seal_forever(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    wake: asyncio.Event | None = None,
    interval: float = INTERVAL,
    settle: float = SETTLE,
    stop: asyncio.Event | None = None,
) -> None:
    """Seal now, then after every wake-up and every `interval` seconds, until `stop` is set (between two
    rounds) or it is cancelled. A failure is logged and retried with backoff; it never reaches the
    transaction that recorded the event."""
    wake = wake if wake is not None else asyncio.Event()
    stop = stop if stop is not None else asyncio.Event()
    failures = 0
    while not stop.is_set():
        wake.clear()  # before sealing: a commit landing meanwhile sets it again for the next round
        try:
            await seal_pending(sessionmaker)
        except Exception as exc:  # any failure is retried: the loop must not die
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # A cancellation that reached a driver call comes back wrapped in a database error.
                raise asyncio.CancelledError from exc
            failures += 1
            log().error(
                "audit_seal_failed", attempt=failures, error_type=type(exc).__name__, error=_failure(exc)
            )
        else:
            if failures:
                log().info("audit_seal_recovered", after_attempts=failures)
            failures = 0
        if failures:
            # Wake-ups cannot hurry a failing database: back off whatever commits meanwhile.
            await asyncio.sleep(min(MAX_BACKOFF, 2.0 ** (failures - 1)))
            continue
        with suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await first_of(wake, stop)
                await asyncio.sleep(settle)


@asynccontextmanager
async def sealing(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    wake_on: AsyncEngine | None = None,
    interval: float = INTERVAL,
) -> AsyncIterator[None]:
    """Run `seal_forever` on `sessionmaker` while the block runs, woken by commits on `wake_on` (the
    sessionmaker's own engine by default); on the way out, seal what is left (bounded by STOP_TIMEOUT)."""
    if wake_on is None:
        async with sessionmaker() as db:
            engine = db.get_bind().engine
    else:
        engine = wake_on.sync_engine
    wake, stop = asyncio.Event(), asyncio.Event()
    with _wakers.listening(engine, wake):
        task = asyncio.create_task(
            seal_forever(sessionmaker, wake=wake, interval=interval, stop=stop), name="audit-sealer"
        )
        try:
            yield
        finally:
            # Stopped between two rounds, not cancelled inside one: a SQLite transaction cancelled
            # mid-way keeps the process's write gate until its connection is collected.
            stop.set()
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await task
            except TimeoutError:
                task.cancel()
                with suppress(asyncio.CancelledError, TimeoutError):
                    async with asyncio.timeout(STOP_TIMEOUT):
                        await task
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await seal_pending(sessionmaker)
            except Exception as exc:  # shutting down: the next sealer to run picks them up
                log().warning(
                    "audit_seal_at_shutdown_failed", error_type=type(exc).__name__, error=_failure(exc)
                )


@asynccontextmanager
async def app_sealer(settings: Settings, app_engine: AsyncEngine) -> AsyncIterator[None]:
    """The app's sealer, woken by the app's commits, on an engine of its own: a request pool that is
    all checked out never starves it, and its statements stay out of the app's engine."""
    engine = create_engine(settings)
    try:
        async with sealing(create_sessionmaker(engine), wake_on=app_engine):
            yield
    finally:
        await engine.dispose()
