"""Real processes for end-to-end tests: free loopback ports, and API processes (uvicorn, one worker
each) serving a test's settings, which a test can stop and start again."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from silver_auth.settings import Settings

STARTUP_SECONDS = 60  # bounded; generous because a loaded CI box imports slowly
STOP_SECONDS = 20


def free_port() -> int:
    """A loopback port nothing listens on now (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
        "SILVER_METRICS_PORT": "0",
        "SILVER_KEY_LAST_USED_FLUSH_SECONDS": str(settings.key_last_used_flush_seconds),
    }
    return env | extra


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if it has not exited within STOP_SECONDS."""
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ApiProcess:
    """One API process on a fixed loopback port, so it answers at the same URL after a restart."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.env, self.log = env, log
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> None:
        assert self.process is None, "already running"
        server = [sys.executable, "-m", "uvicorn", "--factory", "silver_auth.app:asgi"]
        command = [*server, "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the API process exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code in (200, 429):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{self.url} did not answer /health within {STARTUP_SECONDS}s:\n{self.output()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def api_processes(count: int, env: dict[str, str], logs: Path) -> Iterator[list[ApiProcess]]:
    """`count` API processes on free ports, all started before the first is waited for."""
    with ExitStack() as stack:
        processes = [ApiProcess(env, logs / f"api-{index}.log") for index in range(count)]
        for process in processes:
            stack.callback(process.stop)
            process.start(wait=False)
        for process in processes:
            process.wait_ready()
        yield processes
