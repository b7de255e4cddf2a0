"""A real HTTP receiver on loopback, and helpers that drive the delivery worker by hand."""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from silver_auth.db.session import transaction
from silver_auth.settings import Settings
from silver_auth.webhooks.delivery import DeliveryWorker
from tests.conftest import base_settings
from tests.factories import ConsoleUser, Harness


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each POST with the next status in `answers` (then the last one forever)."""

    url: str
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=lambda: [204])
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int:
        with self.lock:
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@contextmanager
def receiver(
    answers: list[int] | None = None, *, host: str = "127.0.0.1", delay: float = 0.0
) -> Iterator[Receiver]:
    """`host`: the loopback address to listen on (127.0.0.2 shows which address a delivery went to)."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            target = state["receiver"]
            status = target.answer()
            time.sleep(delay)  # a slow receiver: the worker's deadline ends the attempt first
            with target.lock:
                target.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            # A 204 has no body: one sent anyway would be read as the start of the next answer on
            # this kept-alive connection (the worker then sees an illegal status line).
            reply = b"" if status in (204, 304) else (b"ok" if status < 300 else b"nope")
            self.send_response(status)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer((host, 0), Handler)
    state["receiver"] = Receiver(f"http://{host}:{server.server_address[1]}/hooks", answers=answers or [204])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        server.shutdown()
        server.server_close()


def worker_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings for tests that deliver by hand: the app runs no worker of its own."""
    return base_settings(tmp_path, DATABASE_URL=database_url, SILVER_WEBHOOK_WORKER="external", **overrides)


@pytest.fixture
def hooks(apps: Any, tmp_path: Path, database_url: str) -> Iterator[Harness]:
    with apps.serve(worker_settings(tmp_path, database_url)) as client:
        yield Harness(client, client.app.state.runtime.settings)


def deliver(harness: Harness, **kwargs: Any) -> int:
    """One pass of a worker on the app's database: sequence, then send everything due now."""
    runtime = harness.runtime
    worker = DeliveryWorker(runtime.sessionmaker, runtime.sealer, runtime.settings, **kwargs)
    return harness.run(worker.run_until_idle)


def project_with_endpoint(
    harness: Harness, url: str, *, environment: str = "test", **body: Any
) -> tuple[ConsoleUser, dict[str, Any], dict[str, Any]]:
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    endpoint = owner.ok(
        "POST",
        f"/console/api/projects/{project['id']}/webhooks",
        201,
        json={"url": url, "environment": environment, **body},
    )
    return owner, project, endpoint


def count_rows(harness: Harness, model: Any, **where: Any) -> int:
    from sqlalchemy import func, select  # noqa: PLC0415

    async def work() -> int:
        async with transaction(harness.runtime.sessionmaker) as db:
            query = select(func.count()).select_from(model)
            for name, value in where.items():
                query = query.where(getattr(model, name) == value)
            return int(await db.scalar(query) or 0)

    return harness.run(work)


def v1a_verifies(public_key: str, got: Received) -> bool:
    """Whether one of the delivery's `v1a,` signatures is `public_key`'s: Ed25519 over
    `{webhook-id}.{webhook-timestamp}.{body}`, the key being `whpk_` + base64 of its 32 raw bytes."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    signed = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode() + got.body
    for versioned in got.headers["webhook-signature"].split(" "):
        version, _, encoded = versioned.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(encoded, validate=True), signed)
        except (InvalidSignature, binascii.Error):
            continue
        return True
    return False
