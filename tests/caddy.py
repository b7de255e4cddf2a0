"""Real Caddy for end-to-end tests: Debian's /usr/bin/caddy running the real deploy/Caddyfile, configured only
through its environment placeholders, with Caddy's internal CA on free loopback ports, in front of a real
API process. Its CA root lets httpx verify certificates for the real host names.

The host names (accounts.seqn.test, auth.seqn.test) resolve nowhere: `LoopbackTransport` connects each
request to 127.0.0.1 while the URL, the Host header, TLS SNI and the certificate check keep the name, as
a client that resolved it to this machine would. Tests skip only when caddy is not installed.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from silver_auth.settings import Settings
from tests.conftest import BACKEND, PostgresCleaner, base_settings
from tests.processes import STARTUP_SECONDS, ApiProcess, free_port, settings_env, stop_process

CADDY = Path("/usr/bin/caddy")
ROOT = Path(__file__).resolve().parent.parent
CADDYFILE = ROOT / "deploy" / "Caddyfile"
SHIPPED_BLOCKLIST = ROOT / "deploy" / "caddy" / "blocklist.caddy"
SILVER_AUTH = Path(sys.executable).parent / "silver-auth"
ACCOUNTS_HOST = "accounts.seqn.test"
AUTH_HOST = "auth.seqn.test"


def require_caddy() -> None:
    if not CADDY.exists():
        pytest.skip("Debian's caddy is not installed (apt-get install caddy; .ci/run does)")


class LoopbackTransport(httpx.HTTPTransport):
    """Every request goes to 127.0.0.1, as if DNS named it: the request keeps its host in the URL (so in
    the Host header), as TLS server name and for the certificate check."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        request.extensions = {**request.extensions, "sni_hostname": host}
        request.url = request.url.copy_with(host="127.0.0.1")
        return super().handle_request(request)


@dataclass
class CaddyProcess:
    """`caddy run` with deploy/Caddyfile; HOME and XDG dirs (its CA, certificates, autosave) under `base`."""

    base: Path
    upstream: str
    blocklist: Path

    def __post_init__(self) -> None:
        self.https_port, self.http_port, self.admin_port = free_port(), free_port(), free_port()
        self.home = self.base / "home"
        self.log = self.base / "caddy.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """Caddy's environment, which `caddy reload` needs too: it adapts the Caddyfile itself."""
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "SEQN_ACCOUNTS_HOST": ACCOUNTS_HOST,
            "SEQN_AUTH_HOST": AUTH_HOST,
            "SEQN_UPSTREAM": self.upstream,
            "SEQN_HTTP_PORT": str(self.http_port),
            "SEQN_HTTPS_PORT": str(self.https_port),
            "SEQN_TLS": "internal",
            "SEQN_CADDY_BIND": "loopback",
            "SEQN_CADDY_ADMIN": f"127.0.0.1:{self.admin_port}",
            "SEQN_EDGE_BLOCKLIST": str(self.blocklist),
        }

    @property
    def root_certificate(self) -> Path:
        return self.home / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    @property
    def reload_command(self) -> str:
        return f"{CADDY} reload --config {CADDYFILE} --adapter caddyfile"

    def start(self) -> None:
        assert self.process is None, "already running"
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(CADDY), "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                env=self.env,
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def reload(self) -> None:
        done = subprocess.run(
            self.reload_command.split(), env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, f"caddy reload failed:\n{done.stderr}"

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Edge:
    """Caddy in front of an API process, as production has them."""

    caddy: CaddyProcess
    api: ApiProcess
    settings: Settings | None = None
    """The settings of a test's edge (`edge_on_test_database`): its database and secrets."""

    @property
    def accounts(self) -> str:
        return f"https://{ACCOUNTS_HOST}:{self.caddy.https_port}"

    @property
    def auth(self) -> str:
        return f"https://{AUTH_HOST}:{self.caddy.https_port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.caddy.root_certificate))

    def client(self, **options: Any) -> httpx.Client:
        """A client for one host at a time (each host its own connections, so each its own TLS name)."""
        return httpx.Client(transport=LoopbackTransport(verify=self.ssl_context()), timeout=10, **options)

    def cli_env(self, **extra: str) -> dict[str, str]:
        """The environment of a `silver-auth edge …` command that reloads this Caddy."""
        return {
            **os.environ,
            **self.caddy.env,
            "PATH": f"{SILVER_AUTH.parent}:/usr/bin:/bin",
            "NO_COLOR": "1",
            "SILVER_EDGE_BLOCKLIST": str(self.caddy.blocklist),
            "SILVER_EDGE_RELOAD": self.caddy.reload_command,
            **extra,
        }

    def wait_ready(self) -> None:
        """Until both hosts answer /health over HTTPS through Caddy (the CA and certificates are made at
        start), within the same bound as an API process."""
        deadline = time.monotonic() + STARTUP_SECONDS
        last = "no answer"
        while time.monotonic() < deadline:
            process = self.caddy.process
            if process is not None and process.poll() is not None:
                pytest.fail(f"caddy exited with {process.returncode}:\n{self.caddy.output()}")
            if self.caddy.root_certificate.exists():
                try:
                    with self.client() as client:
                        if all(
                            client.get(f"{base}/health").status_code == 200
                            for base in (self.accounts, self.auth)
                        ):
                            return
                except (httpx.TransportError, ssl.SSLError) as exc:
                    last = repr(exc)
            time.sleep(0.2)
        pytest.fail(
            f"Caddy did not answer /health within {STARTUP_SECONDS}s ({last}):\n{self.caddy.output()}"
        )


@contextmanager
def running_edge(base: Path, api_env: dict[str, str]) -> Iterator[Edge]:
    """An API process (from `api_env`, public URLs set to Caddy's) and Caddy in front of it, both stopped
    when the block ends. The blocklist starts as the shipped, empty one."""
    require_caddy()
    base.mkdir(parents=True, exist_ok=True)
    blocklist = base / "edge" / "blocklist.caddy"
    blocklist.parent.mkdir()
    blocklist.write_text(SHIPPED_BLOCKLIST.read_text())
    api_port = free_port()
    caddy = CaddyProcess(base / "caddy", upstream=f"127.0.0.1:{api_port}", blocklist=blocklist)
    env = api_env | {
        "SILVER_ACCOUNTS_URL": f"https://{ACCOUNTS_HOST}:{caddy.https_port}",
        "SILVER_AUTH_URL": f"https://{AUTH_HOST}:{caddy.https_port}",
    }
    api = ServedApi(env, base / "api.log", port=api_port)
    edge = Edge(caddy, api)
    try:
        api.start(wait=False)
        caddy.start()
        api.wait_ready()
        edge.wait_ready()
        yield edge
    finally:
        caddy.stop()
        api.stop()


@contextmanager
def edge_on_test_database(request: pytest.FixtureRequest, base: Path, **api_env: str) -> Iterator[Edge]:
    """`running_edge` whose API serves the test backend's database: on Postgres the worker's own test
    database, emptied first; on SQLite a copy of the migrated template. `database_url` on the edge names it,
    for commands run beside the API (`silver-auth account create`, `monitor`, `doctor`)."""
    if BACKEND == "postgres":
        cleaner: PostgresCleaner = request.getfixturevalue("postgres_migrated")
        cleaner.empty()
        url = cleaner.url
    else:
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copy(template, base / "silver.db")
        url = f"sqlite+aiosqlite:///{base / 'silver.db'}"
    settings = base_settings(base, DATABASE_URL=url)
    env = settings_env(settings, SILVER_LOG_LEVEL="INFO", SILVER_LOG_FORMAT="json", **api_env)
    with running_edge(base / "run", env) as running:
        running.settings = settings
        yield running


class ServedApi(ApiProcess):
    """The API as production starts it, `silver-auth serve`: it binds SILVER_BIND_HOST:SILVER_BIND_PORT."""

    def start(self, *, wait: bool = True) -> None:
        assert self.process is None, "already running"
        env = {"SILVER_BIND_HOST": "127.0.0.1", **self.env, "SILVER_BIND_PORT": str(self.port)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(SILVER_AUTH), "serve"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_ready()
