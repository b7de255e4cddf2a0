"""Postgres: a pooled connection is checked before use only after sitting idle
(SILVER_DB_PING_IDLE_SECONDS), so a busy one costs no extra round trips; a dead idle one is replaced
before the request sees it, and a dead busy one fails its request once, as a 503."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from silver_auth.db.engine import create_engine
from silver_auth.settings import Settings
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="Postgres's pooled connections")


@pytest.fixture
async def engines(settings: Settings) -> AsyncIterator[list[AsyncEngine]]:
    made: list[AsyncEngine] = []
    try:
        yield made
    finally:
        for engine in made:
            await engine.dispose()


def engine_with(settings: Settings, made: list[AsyncEngine], idle_seconds: float) -> AsyncEngine:
    engine = create_engine(settings.model_copy(update={"db_ping_idle_seconds": idle_seconds}))
    made.append(engine)
    return engine


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text("SELECT pg_backend_pid()")))


async def terminate(settings: Settings, made: list[AsyncEngine], pid: int) -> None:
    async with engine_with(settings, made, 0).connect() as connection:
        assert await connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def test_a_dead_idle_connection_is_replaced_before_use(
    settings: Settings, engines: list[AsyncEngine]
) -> None:
    engine = engine_with(settings, engines, idle_seconds=0)  # every pooled connection counts as idle
    first = await backend_pid(engine)
    await terminate(settings, engines, first)
    # The ping at checkout finds it dead; the pool connects afresh and the caller never sees an error.
    assert await backend_pid(engine) != first


async def test_a_connection_in_use_a_moment_ago_is_not_pinged_and_fails_once(
    settings: Settings, engines: list[AsyncEngine]
) -> None:
    engine = engine_with(settings, engines, idle_seconds=3600)
    first = await backend_pid(engine)
    await terminate(settings, engines, first)
    # No ping stood before the statement (the round trips saved): the statement meets the dead socket.
    with pytest.raises(DBAPIError) as failed:
        await backend_pid(engine)
    assert failed.value.connection_invalidated  # web.http answers it with a 503 and Retry-After
    assert await backend_pid(engine) != first  # the pool reconnected
