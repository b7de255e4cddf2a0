"""Bursts of writers through the real app: every answer is right, or a 429/503 that says when to retry;
never a 500 (the embedded default is SQLite, whose one write lock they all queue for)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import event, func, select

from silver_auth.accounts import passwords
from silver_auth.accounts.sessions import ConsoleSession
from silver_auth.audit.models import AuditEvent
from silver_auth.keys.models import ApiKey
from silver_auth.plans.service import plan_for
from silver_auth.throttle.models import AuthFailure
from tests.concurrent import send_from_many
from tests.conftest import AppPool, base_settings
from tests.factories import PASSWORD, Harness

BURST = 200
VERIFY_SECONDS = 0.1
"""What each password verification costs here, as argon2id does at production parameters (~0.1-0.2 s);
the suite's own parameters (tests/conftest.py) cost almost nothing, which hid the burst's 500s."""


class CostlyHasher(PasswordHasher):
    """The suite's cheap argon2id, plus the time a real verification takes, spent without the GIL (as
    argon2-cffi does): on the event loop it stalls every request; in a worker thread, none."""

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        time.sleep(VERIFY_SECONDS)
        return super().verify(hash, password)


@pytest.fixture
def loaded(
    apps: AppPool, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    monkeypatch.setattr(passwords, "_hasher", CostlyHasher(time_cost=1, memory_cost=1024, parallelism=1))
    # The cost is a sleep, not CPU: more threads than cores shorten the test without hiding anything.
    settings = base_settings(tmp_path, DATABASE_URL=database_url, SILVER_PASSWORD_HASH_THREADS=8)
    with apps.serve(settings) as client:
        yield Harness(client, settings)


def count(harness: Harness, query: Any) -> int:
    async def work() -> int:
        async with harness.runtime.sessionmaker() as db:
            return int(await db.scalar(query) or 0)

    return harness.run(work)


def assert_no_500(answers: list[httpx.Response], allowed: set[int]) -> Counter[int]:
    """Every answer is one of `allowed`, or a 503 problem with Retry-After (the service is busy)."""
    statuses = Counter(answer.status_code for answer in answers)
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers.get("retry-after"), answer.headers
            assert answer.headers["content-type"].startswith("application/problem+json")
        else:
            assert answer.status_code in allowed, (answer.status_code, answer.text, statuses)
    return statuses


@pytest.mark.slow
def test_a_burst_of_console_sign_ins_gets_no_500(loaded: Harness) -> None:
    harness = loaded
    emails = [f"burst-{i}@example.com" for i in range(20)]
    for email in emails:
        harness.create_account(email)
    body = [{"json": {"email": emails[i % len(emails)], "password": PASSWORD}} for i in range(BURST)]
    answers = send_from_many(harness, [("POST", "/console/api/sign-in", kwargs) for kwargs in body])

    statuses = assert_no_500(answers, {200, 429})
    assert statuses[200] > 0, statuses
    # Each signed-in answer is one session; every reservation was settled (kept by no success).
    assert count(harness, select(func.count()).select_from(ConsoleSession)) == statuses[200]
    assert count(harness, select(func.count()).select_from(AuthFailure)) == 0


def no_busy_handler(harness: Harness) -> None:
    """SQLite's busy handler off on every connection of the app: a write that finds the lock taken
    fails at once with "database is locked" instead of waiting for it."""

    def off(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    async def reconnect() -> None:
        for engine in (harness.runtime.engine, harness.runtime.throttle.engine):
            event.listen(engine.sync_engine, "connect", off)
            await engine.dispose()  # connections opened from now on have it off

    harness.run(reconnect)


def test_a_burst_of_secret_key_creations_queues_in_the_process_and_creates_exactly_the_quota(
    harness: Harness,
) -> None:
    """Key creation locks (count, then insert under the plan's quota). The writers of one process queue
    for SQLite's lock among themselves: with SQLite's own waiting off, not one meets it taken."""
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    if harness.runtime.engine.dialect.name == "sqlite":
        no_busy_handler(harness)
    headers = {"cookie": f"{owner.cookie_name}={owner.cookie}", "x-csrf-token": owner.csrf_token}
    create = {"json": {"kind": "secret", "environment": "live"}, "headers": headers}
    answers = send_from_many(
        harness, [("POST", f"/console/api/projects/{project['id']}/keys", create)] * BURST
    )

    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {201, 403}, statuses  # not even a 503: no writer waited out its turn
    for answer in answers:
        if answer.status_code == 403:
            assert answer.json()["type"].endswith("/quota-exceeded"), answer.text
    quota = plan_for("free").api_keys_per_project
    keys = select(func.count()).select_from(ApiKey).where(ApiKey.project_id == project["id"])
    assert count(harness, keys) == statuses[201] == quota
    created = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "key.created")
    assert count(harness, created) == statuses[201]
