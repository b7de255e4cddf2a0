"""Issue 9's acceptance for the delivery worker: `silver-auth worker` SIGKILLed in the middle of a burst
of 1,000 events and started again loses none of them; two workers at once on Postgres never send one
delivery twice.

Real processes throughout: the worker is the console script in a subprocess on the test's database and
sealing keys, the receiver a threaded HTTP server on loopback, every request verified with the
`standardwebhooks` library.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from silver_auth.db.session import transaction
from silver_auth.settings import Settings
from silver_auth.webhooks.events import EventType
from silver_auth.webhooks.models import WebhookAttempt, WebhookDelivery
from silver_auth.webhooks.outbox import emit
from tests.conftest import BACKEND
from tests.factories import Harness
from tests.webhooks.support import hooks, project_with_endpoint

__all__ = ["hooks"]

pytestmark = pytest.mark.slow  # each test runs `silver-auth worker` in subprocesses

BURST = 1_000
PER_TRANSACTION = 100
DEADLINE = 120.0
"""Seconds a test waits for the burst to arrive: bounded, never a timing assertion."""


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes


@dataclass
class HoldingReceiver:
    """Answers 204 to every POST, keeping each request, until `hold` is set: then it keeps the request
    and answers nothing until `release` is set, so the worker is caught with a send in flight."""

    url: str
    received: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    hold: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def count(self) -> int:
        with self.lock:
            return len(self.received)


@contextmanager
def holding_receiver() -> Iterator[HoldingReceiver]:
    state: dict[str, HoldingReceiver] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            if len(body) < length:  # the sender died mid-request: nothing arrived to act on
                return
            target = state["receiver"]
            with target.lock:
                target.received.append(Request({k.lower(): v for k, v in self.headers.items()}, body))
            if target.hold.is_set():
                target.release.wait(timeout=DEADLINE)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = HoldingReceiver(f"http://127.0.0.1:{server.server_address[1]}/hooks")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        state["receiver"].release.set()
        server.shutdown()
        server.server_close()


def worker_env(
    settings: Settings, tmp_path: Path, *, lease_seconds: float, timeout_seconds: float = 1
) -> dict[str, str]:
    """The test's own database and sealing keys; by default short timeouts, so a dead worker's claims
    free up fast."""
    assert settings.sealing_keys is not None and settings.session_secret is not None
    assert settings.key_pepper is not None
    return {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": settings.sqlalchemy_url,
        "SILVER_DATA_DIR": str(tmp_path / "worker-data"),
        "SILVER_SEALING_KEYS": settings.sealing_keys.get_secret_value(),
        "SESSION_SECRET": settings.session_secret.get_secret_value(),
        "SILVER_KEY_PEPPER": settings.key_pepper.get_secret_value(),
        "SILVER_WEBHOOK_WORKER": "external",
        "SILVER_WEBHOOK_TIMEOUT_SECONDS": str(timeout_seconds),
        "SILVER_WEBHOOK_LEASE_SECONDS": str(lease_seconds),
        "SILVER_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def worker_process(env: dict[str, str], tmp_path: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """`silver-auth worker` as an operator runs it; stopped with SIGTERM (SIGKILL if it lingers) unless
    the test already killed it."""
    script = Path(sys.executable).with_name("silver-auth")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "silver_auth.cli"]
    with (tmp_path / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            [*command, "worker"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


def wait_for(condition: Callable[[], bool], what: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        for process in processes:
            assert process.poll() is None, f"a worker exited with {process.returncode} while {what}"
        assert time.monotonic() < deadline, f"gave up after {DEADLINE:.0f}s waiting until {what}"
        time.sleep(0.05)


def burst(harness: Harness, project_id: str, endpoint_ids: list[str]) -> list[str]:
    """BURST webhook.test events through the outbox, PER_TRANSACTION to a transaction, spread over the
    endpoints in turn; answers their message ids in the order written."""
    ids: list[str] = []

    async def work() -> None:
        for start in range(0, BURST, PER_TRANSACTION):
            async with transaction(harness.runtime.sessionmaker) as db:
                for n in range(start, start + PER_TRANSACTION):
                    endpoint_id = endpoint_ids[n % len(endpoint_ids)]
                    event = emit(
                        db,
                        EventType.WEBHOOK_TEST,
                        {"endpoint_id": endpoint_id, "message": f"burst {n}"},
                        project_id=project_id,
                        environment="test",
                        endpoint_id=endpoint_id,
                    )
                    ids.append(event.id)

    harness.run(work)
    return ids


def delivery_states(harness: Harness) -> dict[str, int]:
    async def work() -> dict[str, int]:
        async with transaction(harness.runtime.sessionmaker) as db:
            rows = await db.execute(
                select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
            )
            return {status: int(n) for status, n in rows.all()}

    return harness.run(work)


def attempts_per_delivery(harness: Harness) -> dict[str, int]:
    async def work() -> dict[str, int]:
        async with transaction(harness.runtime.sessionmaker) as db:
            rows = await db.execute(
                select(WebhookAttempt.delivery_id, func.count()).group_by(WebhookAttempt.delivery_id)
            )
            return {delivery_id: int(n) for delivery_id, n in rows.all()}

    return harness.run(work)


def by_message(received: list[Request], secret: str) -> dict[str, list[Request]]:
    """Every request verifies against the endpoint's secret; grouped by `webhook-id`."""
    verifier = Webhook(secret)
    grouped: defaultdict[str, list[Request]] = defaultdict(list)
    for request in received:
        verifier.verify(request.body, request.headers)  # raises unless a signature matches
        grouped[request.headers["webhook-id"]].append(request)
    return grouped


def test_sigkilled_worker_mid_burst_loses_no_event(hooks: Harness, tmp_path: Path) -> None:
    with holding_receiver() as target:
        _, project, endpoint = project_with_endpoint(hooks, target.url)
        sent = burst(hooks, project["id"], [endpoint["id"]])
        env = worker_env(hooks.settings, tmp_path, lease_seconds=2)
        with worker_process(env, tmp_path, "first") as first:
            wait_for(lambda: target.count() >= BURST // 10, "the first deliveries arrived", [first])
            # Catch the worker with a send in flight: the receiver has the request, the worker never
            # learns the answer. That one must come again after the restart, under the same id.
            target.hold.set()
            wait_for(lambda: target.count() > BURST // 10, "a send was in flight", [first])
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        arrived_before_kill = target.count()
        assert arrived_before_kill < BURST, "the burst was over before the kill: nothing was tested"
        target.hold.clear()
        target.release.set()
        with worker_process(env, tmp_path, "second") as second:
            wait_for(
                lambda: delivery_states(hooks).get("succeeded", 0) == BURST,
                "every delivery succeeded",
                [second],
            )
        received = list(target.received)
    assert delivery_states(hooks) == {"succeeded": BURST}
    grouped = by_message(received, endpoint["secret"])
    assert set(grouped) == set(sent)  # every event at least once, and nothing that was not sent
    for copies in grouped.values():
        assert len({c.body for c in copies}) == 1  # a duplicate is the same message, byte for byte
    duplicates = {message_id for message_id, copies in grouped.items() if len(copies) > 1}
    assert duplicates, "the send caught in flight at the kill came again"
    assert len(received) == BURST + sum(len(grouped[d]) - 1 for d in duplicates)


@pytest.mark.skipif(BACKEND != "postgres", reason="several workers need Postgres (SQLite runs one)")
def test_two_workers_at_once_never_send_a_delivery_twice(hooks: Harness, tmp_path: Path) -> None:
    with holding_receiver() as target:
        owner, project, endpoint = project_with_endpoint(hooks, target.url)
        # Two endpoints on one receiver (the Free plan's quota), so each worker has sends in flight to
        # both (one per endpoint and worker) while the other claims beside it.
        second = owner.ok(
            "POST",
            f"/console/api/projects/{project['id']}/webhooks",
            201,
            json={"url": f"{target.url}/second", "environment": "test"},
        )
        endpoints = [endpoint, second]
        sent = burst(hooks, project["id"], [e["id"] for e in endpoints])
        # A lease (and a timeout) far longer than the burst: a delivery can only come twice if two
        # workers claimed it.
        env = worker_env(hooks.settings, tmp_path, lease_seconds=600, timeout_seconds=60)
        target.hold.set()
        with (
            worker_process(env, tmp_path, "one") as one,
            worker_process(env, tmp_path, "two") as two,
        ):
            # One worker has at most one send in flight per endpoint, two here: a third request held
            # at the receiver means both workers are sending at the same time.
            wait_for(lambda: target.count() >= 3, "both workers had sends in flight", [one, two])
            target.hold.clear()
            target.release.set()
            wait_for(
                lambda: delivery_states(hooks).get("succeeded", 0) == BURST,
                "every delivery succeeded",
                [one, two],
            )
        received = list(target.received)
    assert delivery_states(hooks) == {"succeeded": BURST}
    grouped: defaultdict[str, list[Request]] = defaultdict(list)
    for request in received:
        grouped[request.headers["webhook-id"]].append(request)
    # Each request verifies against its own endpoint's secret (the burst went to the endpoints in turn).
    index = {message_id: n for n, message_id in enumerate(sent)}
    for message_id, copies in grouped.items():
        secret = endpoints[index[message_id] % len(endpoints)]["secret"]
        for copy in copies:
            Webhook(secret).verify(copy.body, copy.headers)
    assert set(grouped) == set(sent)
    assert all(len(copies) == 1 for copies in grouped.values()), "a delivery was sent twice"
    assert len(received) == BURST
    assert set(attempts_per_delivery(hooks).values()) == {1}
