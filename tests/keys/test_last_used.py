"""Keys' last-used times, written behind: a key-cache miss reads and writes nothing; one flush writes
every time noted meanwhile, only ever forward; the pending set is bounded; shutdown flushes; a flush
the database refuses keeps its times."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import create_async_engine

from silver_auth.core import clock
from silver_auth.db.engine import create_sessionmaker
from silver_auth.keys import last_used
from silver_auth.keys.last_used import LastUsedRecorder
from silver_auth.keys.models import ApiKey
from tests.conftest import AppPool, base_settings
from tests.endusers.support import backend, customer_project
from tests.factories import Harness


@pytest.fixture
def written_behind(apps: AppPool, tmp_path: Path, database_url: str) -> Iterator[Harness]:
    """The default: times flushed every few seconds (here: only when the test flushes)."""
    settings = base_settings(tmp_path, DATABASE_URL=database_url, SILVER_KEY_LAST_USED_FLUSH_SECONDS=300)
    with apps.serve(settings) as client:
        yield Harness(client, settings)


def _last_used(harness: Harness, key_id: str) -> Any:
    async def read() -> Any:
        async with harness.runtime.sessionmaker() as db:
            return await db.scalar(select(ApiKey.last_used_at).where(ApiKey.id == key_id))

    return harness.run(read)


def _key_id(harness: Harness, project_id: str, owner: Any) -> str:
    keys = owner.ok("GET", f"/console/api/projects/{project_id}/keys")["items"]
    return next(k["id"] for k in keys if k["kind"] == "secret")


def test_a_cache_miss_writes_nothing_and_one_flush_writes_the_time(written_behind: Harness) -> None:
    harness = written_behind
    project = customer_project(harness, environment="live")
    key_id = _key_id(harness, project.project_id, project.owner)
    writes: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            writes.append(statement)

    engine = harness.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert backend(harness, project, "GET", "/project").status_code == 200  # a miss: the first check
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert [w for w in writes if "api_keys" in w] == [], writes
    assert _last_used(harness, key_id) is None
    recorder = harness.runtime.keys.last_used
    assert recorder.pending == 1
    assert harness.run(recorder.flush) == 1
    assert _last_used(harness, key_id) is not None and recorder.pending == 0


def test_times_only_move_forward_and_the_pending_set_is_bounded(
    written_behind: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = written_behind
    project = customer_project(harness)
    key_id = _key_id(harness, project.project_id, project.owner)
    recorder = LastUsedRecorder(harness.runtime.sessionmaker, 300)
    later, earlier = clock.now(), clock.now() - timedelta(hours=1)

    async def note(at: Any, *keys: str) -> int:
        async with harness.runtime.sessionmaker() as db:
            for key in keys:
                await recorder.record(db, key, at)
        return await recorder.flush()

    harness.run(lambda: note(later, key_id))
    harness.run(lambda: note(earlier, key_id))  # an older flush never moves the time back
    assert (
        abs((_last_used(harness, key_id).replace(tzinfo=None) - later.replace(tzinfo=None)).total_seconds())
        < 1
    )

    monkeypatch.setattr(last_used, "MAX_PENDING", 3)

    async def fill() -> None:
        async with harness.runtime.sessionmaker() as db:
            for number in range(5):
                await recorder.record(db, f"key_{number}", later)

    harness.run(fill)
    assert recorder.pending == 3  # the rest waits for the flush the full set asks for


def test_shutdown_flushes_and_a_refused_flush_keeps_its_times(written_behind: Harness) -> None:
    harness = written_behind
    project = customer_project(harness)
    key_id = _key_id(harness, project.project_id, project.owner)
    recorder = LastUsedRecorder(harness.runtime.sessionmaker, 300)

    async def serve_then_stop() -> None:
        async with recorder.running(), harness.runtime.sessionmaker() as db:
            await recorder.record(db, key_id, clock.now())

    harness.run(serve_then_stop)
    assert _last_used(harness, key_id) is not None and recorder.pending == 0

    away = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    unreachable = LastUsedRecorder(create_sessionmaker(away), 300)

    async def refused() -> int:
        try:
            async with harness.runtime.sessionmaker() as db:
                await unreachable.record(db, key_id, clock.now())
            return await unreachable.flush()
        finally:
            await away.dispose()

    assert harness.run(refused) == 0
    assert unreachable.pending == 1
