"""Transactions: one per request or command, with hooks that run only after a commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

AFTER_COMMIT = "after_commit"


def on_commit(db: AsyncSession, hook: Callable[[], None]) -> None:
    """Run `hook` once the transaction has committed (cache invalidation must not race the commit)."""
    db.info.setdefault(AFTER_COMMIT, []).append(hook)


@asynccontextmanager
async def transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as db:
        try:
            yield db
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
        for hook in db.info.pop(AFTER_COMMIT, []):
            hook()
