"""Real processes for the limiter tests: a Redis server of the test's own (so it can be stopped mid-run
without touching the machine's shared one) and API processes serving the test's database."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from silver_auth.settings import Settings

STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """`redis-server` on a free loopback port, keeping nothing on disk."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary, self.workdir = binary, workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail("redis-server did not answer")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@contextmanager
def redis_server(workdir: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of an API process serving exactly what `settings` describe (secrets included)."""
    secret = {
        "SESSION_SECRET": settings.session_secret,
        "SILVER_KEY_PEPPER": settings.key_pepper,
        "SILVER_SEALING_KEYS": settings.sealing_keys,
        "DATABASE_URL": settings.database_url,
    }
    env = {name: value.get_secret_value() for name, value in secret.items() if value is not None}
    env |= {
        "PATH": "/usr/bin:/bin",
        "SILVER_DATA_DIR": str(settings.data_dir),
        "SILVER_WEBHOOK_WORKER": "external",
        "SILVER_LOG_LEVEL": "WARNING",
    }
    return env | extra


@contextmanager
def api_processes(count: int, env: dict[str, str], logs: Path) -> Iterator[list[str]]:
    """`count` API processes (uvicorn, one worker each) on free ports; yields their base URLs."""
    processes, urls = [], []
    try:
        for index in range(count):
            port = free_port()
            log = (logs / f"api-{index}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "--factory",
                        "silver_auth.app:asgi",
                        "--port",
                        str(port),
                    ],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for process, url in zip(processes, urls, strict=True):
            _wait_for(process, url, logs)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for(process: subprocess.Popen[bytes], url: str, logs: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = "\n".join(path.read_text(errors="replace") for path in logs.glob("api-*.log"))
            pytest.fail(f"an API process exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code in (200, 429):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer /health within {STARTUP_SECONDS}s")
