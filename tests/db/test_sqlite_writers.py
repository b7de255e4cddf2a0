"""SQLite's one write lock: the writers of a process queue for it in arrival order, across engines, and
hand it on when their transaction ends, however it ends; a lock another process keeps past the busy
timeout is a 503 the caller may retry, never a 500."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from silver_auth.db import sqlite
from silver_auth.db.engine import create_engine
from silver_auth.settings import Settings
from tests.conftest import BACKEND
from tests.factories import PASSWORD, Harness

pytestmark = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's write lock")
WRITE = text("UPDATE audit_chain_head SET seq = seq WHERE id = 1")
STILL_WAITING = 0.3
"""How long a writer is given to fail before it counts as waiting (without the queue it fails in ms)."""


def busy_handler_off(engine: AsyncEngine) -> None:
    """A writer of this engine that meets the lock taken fails at once instead of waiting in SQLite."""

    def off(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    event.listen(engine.sync_engine, "connect", off)


@pytest.fixture
async def engines(settings: Settings) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on one file, as the app has (its own and the throttle's)."""
    first, second = create_engine(settings), create_engine(settings)
    for engine in (first, second):
        busy_handler_off(engine)
    try:
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()


async def write_and_commit(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(WRITE)


async def commit(connection: AsyncConnection) -> None:
    await connection.commit()


async def roll_back(connection: AsyncConnection) -> None:
    await connection.rollback()


async def close(connection: AsyncConnection) -> None:
    await connection.close()


async def invalidate(connection: AsyncConnection) -> None:
    await connection.invalidate()  # the connection is discarded with its transaction (a dropped client)


@pytest.mark.parametrize("end", [commit, roll_back, close, invalidate])
async def test_a_writer_waits_its_turn_and_gets_it_when_the_writer_before_it_is_done(
    engines: tuple[AsyncEngine, AsyncEngine], end: Callable[[AsyncConnection], Awaitable[None]]
) -> None:
    first, second = engines
    holder = await first.connect()
    await holder.execute(WRITE)  # holds SQLite's write lock
    waiter = asyncio.create_task(write_and_commit(second))
    done, _ = await asyncio.wait({waiter}, timeout=STILL_WAITING)
    assert not done  # queued for its turn, not failed on the lock (SQLite's busy handler is off)
    await end(holder)
    await waiter  # got the lock once the first transaction ended
    await holder.close()
    await write_and_commit(first)  # and nobody keeps it after


async def test_a_writer_that_waits_out_its_turn_gets_database_is_locked(
    engines: tuple[AsyncEngine, AsyncEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "QUEUE_TIMEOUT_SECONDS", 0.05)
    first, second = engines
    async with first.connect() as holder:
        await holder.execute(WRITE)
        with pytest.raises(OperationalError) as raised:
            await write_and_commit(second)
        await holder.commit()
    # The error SQLite gives when its own busy timeout runs out: callers (and the 503) handle one kind.
    assert raised.value.orig.sqlite_errorcode == sqlite3.SQLITE_BUSY  # type: ignore[union-attr]
    assert "database is locked" in str(raised.value)
    await write_and_commit(second)


@pytest.fixture
def impatient(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Harness:
    """The app, waiting 50 ms (not 10 s) in SQLite's busy handler for another process's writer."""
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_SECONDS", 0.05)
    harness: Harness = request.getfixturevalue("harness")
    return harness


def test_a_write_lock_another_process_keeps_is_a_503_with_retry_after(impatient: Harness) -> None:
    harness = impatient
    email = "patient@example.com"
    harness.create_account(email)
    other = sqlite3.connect(harness.runtime.engine.url.database or "", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process (the CLI, say) holds the write lock
        answer = harness.client.post("/console/api/sign-in", json={"email": email, "password": PASSWORD})
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["retry-after"] == "1"
    body = answer.json()
    assert body["status"] == 503 and body["type"].endswith("/unavailable")
    assert "sqlite" not in answer.text.lower() and "locked" not in answer.text
    harness.client.cookies.clear()
    retried = harness.client.post("/console/api/sign-in", json={"email": email, "password": PASSWORD})
    assert retried.status_code == 200, retried.text
