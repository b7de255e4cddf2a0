"""The monitor's tests' world: a real API process on a seeded database (a project with a publishable
key and a canary secret key in a 0600 file), `silver-auth monitor` run as cron runs it (the console
script in a subprocess), a stand-in edge in front of the API, and reads of what was recorded."""

from __future__ import annotations

import ipaddress
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from silver_auth.alerts.models import Alert, AlertDelivery
from silver_auth.ops.models import OpsRun
from tests.factories import ConsoleUser, Harness
from tests.processes import ApiProcess, settings_env
from tests.test_cli import SILVER_AUTH, TIMEOUT, Result, cli_env, run_many

WAIT_SECONDS = 60  # bounded waits for a looping monitor; never an assertion on elapsed time


@dataclass
class Service:
    harness: Harness
    api: ApiProcess
    owner: ConsoleUser
    project_id: str
    publishable_key: str
    secret_key: str
    secret_key_file: Path
    workdir: Path

    @property
    def database_url(self) -> str:
        url = self.harness.settings.database_url
        assert url is not None
        return url.get_secret_value()

    def env(self, **extra: str) -> dict[str, str]:
        """The monitor's environment: this database, the canary keys, a short timeout."""
        return cli_env(
            self.workdir / "cli-data",
            DATABASE_URL=self.database_url,
            SILVER_MONITOR_PUBLISHABLE_KEY=self.publishable_key,
            SILVER_MONITOR_SECRET_KEY_FILE=str(self.secret_key_file),
            SILVER_MONITOR_TIMEOUT_SECONDS="5",
            SILVER_ALERT_TIMEOUT_SECONDS="5",
            **extra,
        )

    def monitor(self, *args: str, **env: str) -> Result:
        return self.monitors([args], **env)[0]

    def monitors(self, calls: list[tuple[str, ...]], **env: str) -> list[Result]:
        """Several runs at once (each pays the interpreter's start-up); cron-style one-shots."""
        return run_many([(("monitor", *args), self.env(**env), "") for args in calls], self.workdir)

    def looping(self, *args: str, **env: str) -> MonitorLoop:
        return MonitorLoop(self, args, env)


def seed_service(harness: Harness, workdir: Path, **api_env: str) -> Service:
    """A project "Canary" with a live publishable key and a live secret key (in a 0600 file), and a
    stopped API process serving this test's database at a fixed port."""
    owner = harness.user()
    project = harness.project(owner, harness.org(owner)["id"], name="Canary")
    publishable = harness.key(owner, project["id"], "publishable", "live")["key"]
    secret = harness.key(owner, project["id"], "secret", "live")["key"]
    key_file = workdir / "canary-secret-key"
    key_file.touch(mode=0o600)
    key_file.write_text(secret + "\n")
    api = ApiProcess(settings_env(harness.settings, **api_env), workdir / "api.log")
    return Service(harness, api, owner, project["id"], publishable, secret, key_file, workdir)


class MonitorLoop:
    """`silver-auth monitor --every …` in the background, its JSON lines read as they come."""

    def __init__(self, service: Service, args: tuple[str, ...], env: dict[str, str]) -> None:
        self.stdout = service.workdir / f"loop-{time.monotonic_ns()}.out"
        self.stderr = self.stdout.with_suffix(".err")
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [str(SILVER_AUTH), "monitor", *args],
                cwd=service.workdir,
                env=service.env(**env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    def reports(self) -> list[dict[str, Any]]:
        lines = self.stdout.read_text().splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def wait_for(self, what: str, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"the monitor exited with {self.process.returncode}: {self.stderr.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {WAIT_SECONDS}s; reports {self.reports()}")
            time.sleep(0.1)

    def runs_after(self, count: int, runs: int) -> None:
        """Wait until `runs` more reports than `count` have come."""
        self.wait_for(f"{runs} more runs", lambda: len(self.reports()) >= count + runs)

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=TIMEOUT)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class Flaws:
    """What the stand-in edge gets wrong."""

    cached: dict[str, bytes]
    """Paths answered 200 with these bytes to anyone (a cache that ignores the session)."""
    routes: dict[str, str]
    """Paths proxied to another upstream (`/metrics` to the metrics listener)."""
    injected: dict[str, dict[str, Any]]
    """JSON merged into the upstream's answer of these paths (a debug layer)."""


NO_FLAWS = Flaws({}, {}, {})


def private_ca(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A CA of this test's own (its certificate in `ca.pem`) and a server context holding a certificate
    it issued for 127.0.0.1, as Caddy's internal CA issues one."""
    now = datetime.now(UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "monitor test CA")])
    ca_cert = certificate("monitor test CA", ca_key, ca_name, ca_key, True)
    server_cert = certificate("127.0.0.1", server_key, ca_name, ca_key, False)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain, key_file = directory / "server.pem", directory / "server.key"
    chain.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key_file)
    return ca_file, context


@contextmanager
def stand_in_edge(upstream: str, flaws: Flaws, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A real reverse proxy on loopback in front of `upstream`, with a broken deployment's `flaws`
    (over TLS with `tls`)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in flaws.cached:
                self._reply(200, flaws.cached[path], "application/json")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            base = flaws.routes.get(path, upstream)
            try:
                answer = httpx.get(f"{base}{self.path}", headers=headers, timeout=10)
            except httpx.HTTPError:
                self._reply(502, b"bad gateway", "text/plain")
                return
            body = answer.content
            if path in flaws.injected and answer.status_code == 200:
                body = json.dumps({**answer.json(), **flaws.injected[path]}).encode()
            self._reply(answer.status_code, body, answer.headers.get("content-type", "text/plain"))

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def monitor_runs(harness: Harness) -> list[OpsRun]:
    async def work() -> list[OpsRun]:
        async with harness.runtime.sessionmaker() as db:
            query = select(OpsRun).where(OpsRun.kind == "monitor").order_by(OpsRun.started_at)
            return list(await db.scalars(query))

    return harness.run(work)


def monitor_alerts(harness: Harness) -> list[tuple[Alert, list[AlertDelivery]]]:
    async def work() -> list[tuple[Alert, list[AlertDelivery]]]:
        async with harness.runtime.sessionmaker() as db:
            alerts = list(await db.scalars(select(Alert).order_by(Alert.raised_at)))
            found = []
            for alert in alerts:
                query = select(AlertDelivery).where(AlertDelivery.alert_id == alert.id)
                found.append((alert, list(await db.scalars(query.order_by(AlertDelivery.at)))))
            return found

    return harness.run(work)


def recorded_text(harness: Harness) -> str:
    """Everything the monitor may have written to the database, as one text to search."""
    rows: list[Any] = []
    for run in monitor_runs(harness):
        rows.append([run.error, run.detail])
    for alert, deliveries in monitor_alerts(harness):
        rows.append([alert.kind, alert.subject, alert.message, alert.context, alert.clear_message])
        rows += [[delivery.channel, delivery.error] for delivery in deliveries]
    return json.dumps(rows, default=str)
