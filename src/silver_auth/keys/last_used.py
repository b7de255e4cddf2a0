"""When each API key was last used, written behind: a key-cache fill only notes the time, and one
transaction every SILVER_KEY_LAST_USED_FLUSH_SECONDS writes what was noted meanwhile, so a cache miss
on the hot path costs a read and no write (no write lock on SQLite, no row lock on Postgres).

Bounded: at most MAX_PENDING keys wait; reaching that flushes at once, and past it a key's time is
dropped until the next flush (a last-used time is advice, never a check). What is noted is flushed on
shutdown; a flush that fails keeps its entries for the next one. With an interval of 0 every fill
writes in its own transaction, as it reads (write-through).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import cast

import structlog
from sqlalchemy import Table, bindparam, or_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.db.session import transaction
from silver_auth.keys.models import ApiKey

MAX_PENDING = 10_000
log = structlog.get_logger("silver_auth.keys")
_keys = cast("Table", ApiKey.__table__)
# Only ever forward: a flush that lost a race with a later one never moves a time back.
_FORWARD = (
    update(_keys)
    .where(_keys.c.id == bindparam("key_id"))
    .where(or_(_keys.c.last_used_at.is_(None), _keys.c.last_used_at < bindparam("used_at")))
    .values(last_used_at=bindparam("used_at"))
)


class LastUsedRecorder:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], flush_seconds: float) -> None:
        self._sessionmaker = sessionmaker
        self._interval = flush_seconds
        self._pending: dict[str, datetime] = {}
        self._full = asyncio.Event()

    @property
    def write_through(self) -> bool:
        return self._interval == 0

    async def record(self, db: AsyncSession, key_id: str, used_at: datetime) -> None:
        """Note that `key_id` was used at `used_at`; write-through: now, in `db`'s transaction."""
        if self.write_through:
            await db.execute(_FORWARD, [{"key_id": key_id, "used_at": used_at}])
            return
        if key_id not in self._pending and len(self._pending) >= MAX_PENDING:
            self._full.set()
            return
        previous = self._pending.get(key_id)
        self._pending[key_id] = used_at if previous is None else max(previous, used_at)
        if len(self._pending) >= MAX_PENDING:
            self._full.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Write what is noted, in one transaction; the number of keys written."""
        batch, self._pending = self._pending, {}
        self._full.clear()
        if not batch:
            return 0
        try:
            async with transaction(self._sessionmaker) as db:
                await db.execute(_FORWARD, [{"key_id": k, "used_at": t} for k, t in batch.items()])
        except Exception as error:  # the database is away: keep the times for the next flush
            for key_id, used_at in batch.items():
                if key_id in self._pending or len(self._pending) < MAX_PENDING:
                    self._pending[key_id] = max(used_at, self._pending.get(key_id, used_at))
            log.warning("key_last_used_flush_failed", keys=len(batch), error_type=type(error).__name__)
            return 0
        return len(batch)

    async def _every_interval(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self._interval)
            await self.flush()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Flush every interval while the app serves, and once more when it stops."""
        if self.write_through:
            yield
            return
        task = asyncio.create_task(self._every_interval())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.flush()
