"""Waking a background loop (the audit sealer, the webhook worker) when a transaction on its engine
commits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.db.session import AFTER_COMMIT, on_commit


class _Waker:
    """Sets an event from the commit hook of any transaction on one engine, on any loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self.loop, self.event = loop, event

    def __call__(self) -> None:
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is self.loop:
            self.event.set()
            return
        with suppress(RuntimeError):  # that loop has closed: its app is gone, nothing to wake
            self.loop.call_soon_threadsafe(self.event.set)


class CommitWakers:
    """One kind of background loop per process and engine, woken by the commits that gave it work."""

    def __init__(self) -> None:
        self._by_engine: WeakKeyDictionary[Engine, _Waker] = WeakKeyDictionary()

    def wake_after_commit(self, db: AsyncSession) -> None:
        """Have this process's loop for `db`'s engine (if one runs) wake soon after `db` commits."""
        waker = self._by_engine.get(db.get_bind().engine)
        if waker is not None and waker not in db.info.get(AFTER_COMMIT, ()):
            on_commit(db, waker)

    @contextmanager
    def listening(self, engine: Engine, wake: asyncio.Event) -> Iterator[None]:
        """While the block runs, commits on `engine` set `wake` (on the running loop)."""
        self._by_engine[engine] = _Waker(asyncio.get_running_loop(), wake)
        try:
            yield
        finally:
            self._by_engine.pop(engine, None)


async def first_of(*events: asyncio.Event) -> None:
    """Wait until any of `events` is set."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
