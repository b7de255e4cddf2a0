"""Transactions: one per request or command, with hooks that run only after a commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

AFTER_COMMIT = "after_commit"
AFTER_ROLLBACK = "after_rollback"


def on_commit(db: AsyncSession, hook: Callable[[], None]) -> None:
    """Run `hook` once the transaction has committed (cache invalidation must not race the commit)."""
    db.info.setdefault(AFTER_COMMIT, []).append(hook)


def on_rollback(db: AsyncSession, hook: Callable[[], Awaitable[None]]) -> None:
    """Undo work done outside the database (an Authentik object) if this transaction does not commit."""
    db.info.setdefault(AFTER_ROLLBACK, []).append(hook)


@asynccontextmanager
async def transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A new session whose transaction commits when the block ends (rolls back if it raises)."""
    async with settle(sessionmaker()) as db:
        yield db


@asynccontextmanager
async def settle(db: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit `db` when the block ends, or roll back (and run the undo hooks) if it raises; then run the
    after-commit hooks and close it."""
    async with db:
        try:
            yield db
            await db.commit()
        except BaseException:
            await db.rollback()
            for undo in reversed(db.info.pop(AFTER_ROLLBACK, [])):
                with suppress(Exception):  # the original failure is the one to report
                    await undo()
            raise
        db.info.pop(AFTER_ROLLBACK, None)
        for hook in db.info.pop(AFTER_COMMIT, []):
            hook()
