"""SQLite's one writer at a time, taken at the first write (BEGIN IMMEDIATE) and queued in the process.

SQLite lets one connection write at a time. Left to SQLite, every connection that wants the lock polls
it from its own thread with growing sleeps (up to 100 ms between tries) and in no order, and gives up
with "database is locked" after the busy timeout: in a burst of 200 sign-ins some waited out 10 s while
later ones got in. So the writers of one process queue for a gate on the event loop, in arrival order,
from their BEGIN IMMEDIATE until their COMMIT or ROLLBACK: every engine of the process on that file
(the app's, the throttle's) shares it, and SQLite's busy handler is left to wait only for another
process (the CLI, a second worker).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from anyio.lowlevel import RunVar
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.util import await_only

from silver_auth.db.locks import WRITING, writes

HOLDING = "silver_auth.sqlite_gate"
"""Connection info: the gate this connection holds, until its transaction ends."""
QUEUE_TIMEOUT_SECONDS = 10.0
"""How long a write waits for its turn among the writers of this process."""
BUSY_TIMEOUT_SECONDS = 10.0
"""How long it then waits in SQLite's busy handler, for a writer of another process (the CLI)."""


@dataclass(slots=True)
class Gate:
    """One database file's writer queue on one event loop."""

    lock: asyncio.Lock
    loop: asyncio.AbstractEventLoop

    def release(self) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self.lock.release()
        else:  # a connection closed from another thread (garbage collection); a closed loop has no queue
            with suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.lock.release)


_GATES: RunVar[dict[str, Gate]] = RunVar("silver_auth.sqlite_write_gates")


def _gate(database: str) -> Gate:
    gates = _GATES.get(None)
    if gates is None:
        gates = {}
        _GATES.set(gates)
    gate = gates.get(database)
    if gate is None:
        gate = gates[database] = Gate(asyncio.Lock(), asyncio.get_running_loop())
    return gate


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver: SQLAlchemy's begin sends nothing, and _take_write_lock decides when the
    # transaction starts.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _take_write_lock(
    connection: Any, cursor: Any, statement: str, _parameters: Any, context: Any, _executemany: bool
) -> None:
    """Start the transaction (BEGIN IMMEDIATE: SQLite's one write lock) at its first write or locking
    read. Reads before it run on committed data without the lock, so a request that only read so far
    (a console guard, say) lets another connection write: the throttle books attempts on its own.
    Taking the lock at BEGIN, not at the first write, matters: a deferred transaction that reads, then
    writes, fails with SQLITE_BUSY when another writer committed in between."""
    if connection.info.get(WRITING) or not writes(statement, context):
        return
    gate = _gate(connection.engine.url.database)
    # SQLAlchemy runs this hook inside an awaited call's greenlet: it may wait on the event loop.
    await_only(_queue(gate.lock))
    try:
        cursor.execute("BEGIN IMMEDIATE")
    except BaseException:
        gate.release()
        raise
    connection.info[HOLDING] = gate
    connection.info[WRITING] = True


async def _queue(lock: asyncio.Lock) -> None:
    try:
        async with asyncio.timeout(QUEUE_TIMEOUT_SECONDS):
            await lock.acquire()
    except TimeoutError:
        # What SQLite raises when its busy timeout runs out: one error for callers (and the 503) to handle.
        error = sqlite3.OperationalError("database is locked")
        error.sqlite_errorcode, error.sqlite_errorname = sqlite3.SQLITE_BUSY, "SQLITE_BUSY"
        raise error from None


def _leave(info: dict[Any, Any]) -> None:
    """The transaction is over (or the connection is gone): the next writer of the queue may begin."""
    info[WRITING] = False
    gate: Gate | None = info.pop(HOLDING, None)
    if gate is not None:
        gate.release()


def _after_ending(end: Callable[[Any], None]) -> Callable[[Any], None]:
    """The dialect's COMMIT or ROLLBACK (of a pooled connection), then the gate: SQLite's lock is free."""

    def ended(pooled: Any) -> None:
        try:
            end(pooled)
        finally:
            with suppress(NotImplementedError):  # the dialect's first connect: a bare connection, no info
                _leave(pooled.info)

    return ended


_closing: dict[int, Gate] = {}
"""Gates of connections being discarded in a transaction, released once the connection is closed."""


def _after_closing(close: Callable[[Any], None]) -> Callable[[Any], None]:
    """The dialect's close or terminate (of a bare DBAPI connection), then the gate parked for it."""

    def closed(dbapi_connection: Any) -> None:
        try:
            close(dbapi_connection)
        finally:
            gate = _closing.pop(id(dbapi_connection), None)
            if gate is not None:
                gate.release()

    return closed


def _begun(connection: Any) -> None:
    # The previous transaction ended through _after_ending, so this finds nothing to release; were a
    # gate still held, this connection would queue behind itself at its next write.
    _leave(connection.info)


def _discarding(dbapi_connection: Any, record: Any, *_rest: Any) -> None:
    """The pool closes (or invalidates) a connection, perhaps in a transaction (a cancelled request)."""
    record.info[WRITING] = False
    gate: Gate | None = record.info.pop(HOLDING, None)
    if gate is not None:
        _closing[id(dbapi_connection)] = gate


def _reset(_dbapi_connection: Any, record: Any, state: Any) -> None:
    if record is not None and not state.asyncio_safe:
        # Garbage collected outside the loop: it will be closed without a rollback, maybe never on the
        # loop. Its gate goes now; SQLite's busy handler covers the moment until the lock does too.
        _leave(record.info)


def install(engine: Engine) -> None:
    """Everything above, on one SQLite engine (the sync engine of an AsyncEngine)."""
    event.listen(engine, "connect", _pragmas)
    event.listen(engine, "before_cursor_execute", _take_write_lock)
    event.listen(engine, "begin", _begun)
    # The pool ends and closes connections through the same dialect (its rollback on return, its
    # close on invalidation), so these see every way a transaction ends.
    dialect: Any = engine.dialect
    dialect.do_commit = _after_ending(dialect.do_commit)
    dialect.do_rollback = _after_ending(dialect.do_rollback)
    dialect.do_close = _after_closing(dialect.do_close)
    dialect.do_terminate = _after_closing(dialect.do_terminate)
    for discarding in ("invalidate", "close"):
        event.listen(engine.pool, discarding, _discarding)
    event.listen(engine.pool, "reset", _reset)
