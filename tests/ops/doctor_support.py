"""A production-like deployment for the doctor tests, built from real parts: a real Caddy (`tls internal`)
in front of a real API process, a real Postgres (reached directly or through a public forwarder), real
listening sockets, and records written through the services' own interfaces."""

from __future__ import annotations

import asyncio
import base64
import secrets
import selectors
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy.engine import make_url

from silver_auth.accounts.service import PLATFORM_ADMIN_GROUP, create_account, deactivate_account
from silver_auth.alerts.service import send_test_alert
from silver_auth.audit.service import CLI_ACTOR
from silver_auth.core import clock
from silver_auth.core.crypto import Sealer, keyed_hasher
from silver_auth.core.ids import new_id
from silver_auth.db.engine import create_engine, create_sessionmaker
from silver_auth.db.session import transaction
from silver_auth.mfa.factors import SecondFactors, factor_of
from silver_auth.ops.probing import tls_context
from silver_auth.ops.runs import begin_run, finish_run
from silver_auth.orgs.service import create_org
from silver_auth.projects.models import Project
from silver_auth.settings import Settings, load_settings
from silver_auth.webhooks.models import WebhookEndpoint
from silver_auth.webhooks.service import secret_context

CADDY = "/usr/bin/caddy"
CADDY_START_SECONDS = 30
EVERYWHERE = "0.0.0.0"  # noqa: S104 - the public address a broken deployment listens on


def strong() -> str:
    return secrets.token_urlsafe(32)


def production_settings(
    tmp_path: Path, database_url: str, api_port: int, *, password: str, **overrides: Any
) -> Settings:
    """Settings that break no guide line: production, https public URLs, strong unique secrets. The
    test server trusts loopback: the database password is accepted and unused."""
    url = make_url(database_url).set(password=password)
    data = tmp_path / "deployment"
    values: dict[str, Any] = {
        "_env_file": None,
        "SILVER_ENV": "production",
        "SILVER_DATA_DIR": str(data),
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "AUTHENTIK_PG_PASS": strong(),
        "SESSION_SECRET": secrets.token_urlsafe(40),
        "SILVER_KEY_PEPPER": secrets.token_urlsafe(40),
        "SILVER_SEALING_KEYS": "d1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "SILVER_ACCOUNTS_URL": "https://accounts.seqn.in",
        "SILVER_AUTH_URL": "https://auth.seqn.in",
        "SILVER_BIND_HOST": "127.0.0.1",
        "SILVER_BIND_PORT": api_port,
        "SILVER_METRICS_PORT": 0,
        "SILVER_ALERT_URLS": "json://127.0.0.1:9/unset",
        **overrides,
    }
    for name in [name for name, value in values.items() if value is None]:
        del values[name]
    return load_settings(**values)


def owner_only_files(settings: Settings) -> None:
    """The data directory 0700 and env.backup 0600 (G23)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    env_backup = settings.backup_env_path
    env_backup.write_text(f"RESTIC_REPOSITORY=/srv/offsite\nRESTIC_PASSWORD={strong()}\n")
    env_backup.chmod(0o600)


@dataclass
class Records:
    """What the deployment's database holds; each field set to break one line."""

    admin_mfa: bool = True
    admin_active: bool = True
    backup_age_hours: float | None = 1.0
    backup_offsite: bool = True
    drill_age_days: float | None = 2.0
    monitor_age_minutes: float | None = 2.0
    endpoint_url: str = "https://hooks.customer.example/seqn"
    alert_sent: bool = True


def _at(seconds_ago: float) -> None:
    clock.reset()
    clock.advance(-seconds_ago)


async def _seed(settings: Settings, records: Records) -> None:
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    sealer = Sealer(settings.sealing_key_ring())
    try:
        async with transaction(sessionmaker) as db:
            admin = await create_account(
                db, "admin@seqn.in", strong(), groups=(PLATFORM_ADMIN_GROUP,), actor=CLI_ACTOR
            )
            if records.admin_mfa:
                factors = SecondFactors(sealer, keyed_hasher(settings.secret("key_pepper")))
                enrolment = await factors.start_enrolment(
                    db, admin.id, label=admin.email, issuer="SEQN", already_on="already on"
                )
                await db.flush()
                factor = await factor_of(db, admin.id)
                code = pyotp.TOTP(enrolment.secret).now()
                assert await factors.use_code(db, factor, totp_code=code, recovery_code=None)
                assert factor is not None
                await factors.confirm(db, factor)
            if not records.admin_active:
                await deactivate_account(db, admin.id, actor=CLI_ACTOR)
            org = await create_org(db, "Customer", owner_id=admin.id, actor=CLI_ACTOR)
            now = clock.now()
            project = Project(
                id=new_id("prj"),
                org_id=org.id,
                name="Shop",
                allowed_origins=[],
                redirect_urls=[],
                sign_in_methods=["password"],
                created_at=now,
                updated_at=now,
            )
            db.add(project)
            await db.flush()
            endpoint_id = new_id("whep")
            db.add(
                WebhookEndpoint(
                    id=endpoint_id,
                    project_id=project.id,
                    environment="live",
                    url=records.endpoint_url,
                    description=None,
                    event_types=[],
                    enabled=True,
                    disabled_reason=None,
                    signing="hmac",
                    secret_sealed=sealer.seal("whsec_" + strong(), secret_context(endpoint_id)),
                    public_key=None,
                    previous_secret_sealed=None,
                    previous_public_key=None,
                    previous_until=None,
                    failing_since=None,
                    created_by=admin.id,
                    created_at=now,
                    updated_at=now,
                )
            )
        await _runs(sessionmaker, records)
        if records.alert_sent:
            report = await send_test_alert(sessionmaker, settings)
            assert all(outcome.sent for outcome in report.outcomes), report
    finally:
        clock.reset()
        await engine.dispose()


async def _runs(sessionmaker: Any, records: Records) -> None:
    """Backup, restore drill and monitor runs, each finished as long ago as `records` says."""
    planned = [
        ("backup", records.backup_age_hours, 3600, {"offsite": records.backup_offsite}),
        ("restore_drill", records.drill_age_days, 86400, {"checks": "all"}),
        ("monitor", records.monitor_age_minutes, 60, {}),
    ]
    for kind, age, unit, detail in planned:
        if age is None:
            continue
        _at(age * unit)
        async with transaction(sessionmaker) as db:
            trigger = "schedule" if kind == "backup" else "command"
            run = await begin_run(db, kind, trigger=trigger)  # type: ignore[arg-type]
            await finish_run(db, run.id, succeeded=True, backup_id=f"bkp-{run.id[-6:]}", detail=detail)
        clock.reset()


def seed(settings: Settings, records: Records) -> None:
    asyncio.run(_seed(settings, records))


# --- listeners --------------------------------------------------------------------------------------


@contextmanager
def public_listener(port: int) -> Iterator[None]:
    """A real TCP listener on every interface, as a process bound to 0.0.0.0 would hold."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((EVERYWHERE, port))
        listener.listen()
        yield


class _Forward(socketserver.BaseRequestHandler):
    upstream: tuple[str, int]

    def handle(self) -> None:
        with socket.create_connection(self.upstream, timeout=10) as upstream:
            selector = selectors.DefaultSelector()
            selector.register(self.request, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, self.request)
            while True:
                for key, _ in selector.select(timeout=30):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)


@contextmanager
def public_forwarder(port: int, upstream: tuple[str, int]) -> Iterator[None]:
    """Postgres published on every interface (as `ports: ["5432:5432"]` would): a real forwarder
    on 0.0.0.0:`port` to the real server."""
    handler = type("Forward", (_Forward,), {"upstream": upstream})

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    server = Server((EVERYWHERE, port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


# --- Caddy ------------------------------------------------------------------------------------------

HEADERS = """
	header Strict-Transport-Security "max-age=31536000; includeSubDomains"
	header X-Content-Type-Options nosniff
	header Referrer-Policy strict-origin-when-cross-origin
"""


@dataclass(frozen=True)
class Edge:
    url: str
    http_port: int
    ca_file: Path


EDGE_VARIANTS: dict[str, dict[str, str]] = {
    "correct": {},
    # A proxy that drops what the API and the site block set: the answer goes out without it.
    "no-hsts": {
        "proxy": "header_down -Strict-Transport-Security",
        "headers": HEADERS.replace(
            '\theader Strict-Transport-Security "max-age=31536000; includeSubDomains"\n', ""
        ),
    },
    "hsts-without-subdomains": {
        "headers": HEADERS.replace("; includeSubDomains", ""),
    },
    "no-nosniff": {
        "proxy": "header_down -X-Content-Type-Options",
        "headers": HEADERS.replace("\theader X-Content-Type-Options nosniff\n", ""),
    },
    "http-serves": {"global": "auto_https disable_redirects", "http_site": "reverse_proxy 127.0.0.1:{api}"},
    # Another version's API behind the edge: its /v1/config publishes other plans, or no exclusions.
    "other-plans": {
        "config": '{"plans": [{"name": "Free"}, {"name": "Pro"}, {"name": "Enterprise"}], '
        '"excluded_from_mvp": ["email_delivery", "payment_collection"]}'
    },
    "no-exclusion": {"config": '{"plans": [{"name": "Free"}, {"name": "Pro"}, {"name": "Scale"}]}'},
}


def _caddyfile(variant: dict[str, str], *, https: int, http: int, api: int, storage: Path) -> str:
    config = variant.get("config")
    served_config = f"\t@config path /v1/config\n\trespond @config `{config}` 200\n" if config else ""
    http_site = variant.get("http_site")
    return (
        "{\n\tadmin off\n"
        f"\thttp_port {http}\n\thttps_port {https}\n"
        "\tdefault_bind 127.0.0.1\n\tskip_install_trust\n\tlocal_certs\n"
        f"\tstorage file_system {storage}\n"
        f"\t{variant.get('global', '')}\n"
        "}\n"
        f"https://localhost:{https} {{\n\ttls internal\n"
        f"{variant.get('headers', HEADERS)}"
        f"{served_config}"
        f"\treverse_proxy 127.0.0.1:{api} {{\n\t\t{variant.get('proxy', '')}\n\t}}\n"
        "}\n" + (f"http://localhost:{http} {{\n\t{http_site.format(api=api)}\n}}\n" if http_site else "")
    )


@contextmanager
def caddy(directory: Path, api_port: int, variant: str = "correct") -> Iterator[Edge]:
    """A real Caddy with its internal CA on loopback ports, in front of the API on `api_port`."""
    from tests.processes import free_port  # noqa: PLC0415

    if not Path(CADDY).exists():
        pytest.skip("Debian's caddy is not installed (.ci/run installs it)")
    directory.mkdir(parents=True, exist_ok=True)
    https, http = free_port(), free_port()
    storage = directory / "storage"
    caddyfile = directory / "Caddyfile"
    caddyfile.write_text(
        _caddyfile(EDGE_VARIANTS[variant], https=https, http=http, api=api_port, storage=storage)
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(directory), "XDG_DATA_HOME": str(directory / "data")}
    log = directory / "caddy.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [CADDY, "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    edge = Edge(f"https://localhost:{https}", http, storage / "pki" / "authorities" / "local" / "root.crt")
    try:
        _wait_for(edge, process, log)
        yield edge
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(edge: Edge, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + CADDY_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"caddy exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        if edge.ca_file.exists():
            try:
                httpx.get(edge.url + "/health", verify=tls_context(edge.ca_file), timeout=2)
                return
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    pytest.fail(f"caddy did not answer on {edge.url}:\n{log.read_text(errors='replace')}")
