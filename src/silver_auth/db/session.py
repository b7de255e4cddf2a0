"""Transactions: one per request or command, with hooks that run only after a commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.db.locks import WRITING

AFTER_COMMIT = "after_commit"
AFTER_ROLLBACK = "after_rollback"
AFTER_SETTLE = "after_settle"


def on_commit(db: AsyncSession, hook: Callable[[], None]) -> None:
    """Run `hook` once the transaction has committed (cache invalidation must not race the commit)."""
    db.info.setdefault(AFTER_COMMIT, []).append(hook)


def on_rollback(db: AsyncSession, hook: Callable[[], Awaitable[None]]) -> None:
    """Undo work done outside the database (an Authentik object) if this transaction does not commit."""
    db.info.setdefault(AFTER_ROLLBACK, []).append(hook)


def after_settle(db: AsyncSession, hook: Callable[[], Awaitable[None]]) -> None:
    """Run `hook` once the transaction is over, committed or rolled back: bookkeeping that must not
    hold the transaction's locks (its own short write) and must happen either way. Its errors are
    swallowed: the request's outcome stands."""
    db.info.setdefault(AFTER_SETTLE, []).append(hook)


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
            await _settled(db)
            raise
        db.info.pop(AFTER_ROLLBACK, None)
        for hook in db.info.pop(AFTER_COMMIT, []):
            hook()
        await _settled(db)


async def _settled(db: AsyncSession) -> None:
    for hook in db.info.pop(AFTER_SETTLE, []):
        with suppress(Exception):
            await hook()


async def release_idle(db: AsyncSession) -> None:
    """Before a slow step that needs no database (an argon2 hash), give the connection back to the pool
    if the transaction holds nothing. A transaction that has only read, at the default isolation
    level, loses nothing by ending here: on SQLite it has not even begun in the database (see
    sqlite._take_write_lock), on Postgres each of its statements saw its own snapshot anyway. The next
    statement takes a connection again. One with pending changes, a write or a lock keeps it."""
    if not db.in_transaction() or db.in_nested_transaction() or db.new or db.dirty or db.deleted:
        return
    connection = (await db.connection()).sync_connection
    if connection is None or connection.info.get(WRITING):
        return
    if connection.get_execution_options().get("isolation_level"):  # a snapshot the caller asked for
        return
    await db.commit()


async def write_lock(db: AsyncSession) -> None:
    """SQLite: take the database's one write lock now, so that what this transaction reads stays true
    until it commits (count, then insert). Postgres: nothing; callers lock rows or advisory keys there."""
    if db.get_bind().dialect.name == "sqlite":
        await db.execute(select(literal(1)).with_for_update())  # the engine turns it into BEGIN IMMEDIATE


async def read_snapshot(db: AsyncSession) -> None:
    """From here to the end of the transaction, every read sees one snapshot of the database, whatever
    commits meanwhile: for a walk that compares rows read at different moments (the audit chain and its
    head). Call it before the transaction's first statement; the transaction must only read after it.
    Postgres: REPEATABLE READ. SQLite: a deferred BEGIN, whose snapshot starts at its first read; the
    engine otherwise runs reads outside any transaction (see sqlite._take_write_lock), each on what was
    committed at that moment."""
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql" and not db.in_transaction():
        await db.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    elif dialect == "sqlite":
        connection = await db.connection()
        if not connection.info.get(WRITING):
            await connection.exec_driver_sql("BEGIN DEFERRED")
            await connection.exec_driver_sql("SELECT 1 FROM sqlite_master LIMIT 1")
