"""Password hashing runs off the event loop: sign-ins waiting on argon2id stall no other request, and
hold no database connection another request needs (shown by order of events, not by timing)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from anyio import to_thread
from argon2 import PasswordHasher

from silver_auth.accounts import passwords
from tests.conftest import AppPool, base_settings
from tests.factories import PASSWORD, Harness

THREADS = 2
SIGN_INS = 24
"""More than the hashing threads, and than the connection pool (SQLite 5 + 10, Postgres 10 + 10)."""
WAIT = 10.0
"""Only a bound for a broken build: the code before ran verifications on the loop, and would hang."""


class HeldHasher(PasswordHasher):
    """Each verification waits for the test's go-ahead, and says when every hashing thread is in one."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.go, self.threads_busy = threading.Event(), threading.Event()
        self.go.set()
        self.entered, self.events, self._lock = 0, list[str](), threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        with self._lock:
            self.entered += 1
            if self.entered == THREADS:
                self.threads_busy.set()
        if not self.go.wait(WAIT):
            self.go.set()  # the loop was blocked: let the rest through so the failure shows quickly
        self.events.append("verified")
        return super().verify(hash, password)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> HeldHasher:
    hasher = HeldHasher()
    monkeypatch.setattr(passwords, "_hasher", hasher)
    return hasher


@pytest.fixture
def two_threads(apps: AppPool, tmp_path: Path, database_url: str) -> Iterator[Harness]:
    settings = base_settings(tmp_path, DATABASE_URL=database_url, SILVER_PASSWORD_HASH_THREADS=THREADS)
    with apps.serve(settings) as client:
        yield Harness(client, settings)


async def all_parked(waiting: int) -> None:
    """Until `waiting` sign-ins queue for a hashing thread (each past its reservation and its read)."""
    limiter = passwords._limiter()
    for _ in range(int(WAIT / 0.01)):
        if limiter.statistics().tasks_waiting >= waiting:
            return
        await asyncio.sleep(0.01)


def test_cheap_requests_are_answered_while_sign_ins_wait_for_argon2(
    two_threads: Harness, held: HeldHasher
) -> None:
    harness = two_threads
    owner = harness.user()  # its sign-in verifies once, not held: the go-ahead stands until below
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    secret = harness.key(owner, project["id"])["key"]
    assert harness.backend("/v1/backend/project", secret).status_code == 200  # the key cache is warm
    held.go.clear()
    held.entered, held.events[:] = 0, []

    async def work() -> tuple[list[httpx.Response], dict[str, httpx.Response], int]:
        async def sign_in(index: int) -> httpx.Response:
            transport = httpx.ASGITransport(app=harness.client.app, client=(f"10.2.0.{index + 1}", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                body = {"email": owner.email, "password": PASSWORD}
                return await client.post("/console/api/sign-in", json=body)

        sign_ins = [asyncio.create_task(sign_in(i)) for i in range(SIGN_INS)]
        await to_thread.run_sync(held.threads_busy.wait, WAIT)  # in a thread: the loop stays free
        await all_parked(SIGN_INS - THREADS)
        transport = httpx.ASGITransport(app=harness.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            cheap = {
                "health": await client.get("/health"),  # a database check: it needs a connection
                "backend": await client.get(
                    "/v1/backend/project", headers={"authorization": f"Bearer {secret}"}
                ),
            }
        held.events.append("cheap requests answered")
        waiting = sum(not task.done() for task in sign_ins)
        held.go.set()
        return list(await asyncio.gather(*sign_ins)), cheap, waiting

    answers, cheap, waiting = harness.run(work)
    assert held.events[0] == "cheap requests answered", held.events[:3]
    assert waiting == SIGN_INS
    assert cheap["health"].status_code == 200, cheap["health"].text
    assert cheap["backend"].status_code == 200, cheap["backend"].text
    assert [answer.status_code for answer in answers] == [200] * SIGN_INS
    assert held.entered == SIGN_INS  # one verification per sign-in, no more
