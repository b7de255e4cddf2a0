"""The metrics listener: Prometheus's text format on a loopback port of its own (G5), started with the
app and with `silver-auth worker`; one listener for several server processes; refused on a public
address in production."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from silver_auth.app import create_app
from silver_auth.core.metrics import metrics_listener
from silver_auth.core.production_guard import production_violations
from silver_auth.settings import Settings
from tests.conftest import base_settings
from tests.processes import free_port

DEADLINE = 60.0
"""Seconds a test waits for a process to answer: bounded, never a timing assertion."""


def scrape(port: int, host: str = "127.0.0.1") -> dict[str, float]:
    """Every sample of the listener's exposition, parsed by prometheus-client's own parser."""
    answer = httpx.get(f"http://{host}:{port}/metrics", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            samples[f"{s.name}{{{labels}}}"] = s.value
    return samples


def test_the_listener_serves_the_exposition_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    settings = base_settings(tmp_path, SILVER_METRICS_PORT=port)
    with metrics_listener(settings, process="test") as server:
        assert server is not None
        assert server.server_address[0] == "127.0.0.1"
        samples = scrape(port)
    assert "silver_webhook_backlog{}" in samples
    assert any(name.startswith("process_cpu_seconds_total") for name in samples)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_the_app_serves_its_metrics_while_it_runs(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    settings = base_settings(tmp_path, DATABASE_URL=database_url, SILVER_METRICS_PORT=port)
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            client.get("/health")
        assert client.get("/metrics").status_code == 404  # not on the API's own port
        samples = scrape(port)
        assert samples["silver_http_requests_total{method=GET,route=/health,status=200}"] >= 3
    with pytest.raises(httpx.ConnectError):  # stopped with the app
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_port_in_use_is_logged_and_the_app_still_serves(
    tmp_path: Path, database_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = base_settings(
            tmp_path, DATABASE_URL=database_url, SILVER_METRICS_PORT=port, SILVER_LOG_FORMAT="json"
        )
        with TestClient(create_app(settings)) as client:
            assert client.get("/health").status_code == 200
    err = capfd.readouterr().err
    assert '"event":"metrics_listener_failed"' in err and f'"port":{port}' in err


def test_the_listener_is_off_with_port_zero(tmp_path: Path) -> None:
    settings = base_settings(tmp_path, SILVER_METRICS_PORT="")
    assert settings.metrics_port == 0 and not settings.metrics_enabled
    with metrics_listener(settings, process="test") as server:
        assert server is None


def _production(tmp_path: Path, **overrides: str | int) -> Settings:
    return base_settings(
        tmp_path,
        SILVER_ENV="production",
        SILVER_ACCOUNTS_URL="https://accounts.example.com",
        SILVER_AUTH_URL="https://auth.example.com",
        **overrides,
    )


EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - the address the guard must refuse


@pytest.mark.parametrize("host", [EVERY_INTERFACE, "::", "10.0.0.5", "192.168.1.2", "metrics.example.com"])
def test_g5_production_refuses_a_metrics_listener_off_loopback(tmp_path: Path, host: str) -> None:
    violations = production_violations(
        _production(tmp_path, SILVER_METRICS_HOST=host, SILVER_METRICS_PORT=9464)
    )
    assert any(v.startswith(f"G5: SILVER_METRICS_HOST={host} ") for v in violations), violations


@pytest.mark.parametrize(
    ("host", "port"), [("127.0.0.1", 9464), ("::1", 9464), ("localhost", 9464), (EVERY_INTERFACE, 0)]
)
def test_g5_a_loopback_or_disabled_listener_passes(tmp_path: Path, host: str, port: int) -> None:
    violations = production_violations(
        _production(tmp_path, SILVER_METRICS_HOST=host, SILVER_METRICS_PORT=port)
    )
    assert not any("SILVER_METRICS_HOST" in v for v in violations), violations


# --- real processes ---------------------------------------------------------------------------------


def _command() -> list[str]:
    script = Path(sys.executable).with_name("silver-auth")
    return [str(script)] if script.exists() else [sys.executable, "-m", "silver_auth.cli"]


def _env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    assert settings.sealing_keys is not None and settings.session_secret is not None
    assert settings.key_pepper is not None
    return {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": settings.sqlalchemy_url,
        "SILVER_DATA_DIR": str(tmp_path / "process-data"),
        "SILVER_SEALING_KEYS": settings.sealing_keys.get_secret_value(),
        "SESSION_SECRET": settings.session_secret.get_secret_value(),
        "SILVER_KEY_PEPPER": settings.key_pepper.get_secret_value(),
        "SILVER_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@contextmanager
def _process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        # A session of its own: the servers fork workers, and the whole group is stopped at the end.
        process = subprocess.Popen(
            argv, env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)


def _wait(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, (
            f"exited with {process.returncode} while {what}:\n{log.read_text()[-2000:]}"
        )
        assert time.monotonic() < deadline, f"gave up waiting until {what}:\n{log.read_text()[-2000:]}"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_several_workers_share_one_listener(settings: Settings, tmp_path: Path, server: str) -> None:
    """SILVER_WORKERS > 1: each worker writes its values into the multiprocess directory, and the
    serving process (no worker) sums them on the one listener."""
    api, metrics_port = free_port(), free_port()
    env = _env(
        settings,
        tmp_path,
        SILVER_BIND_PORT=str(api),
        SILVER_METRICS_PORT=str(metrics_port),
        SILVER_WORKERS="2",
        SILVER_WEBHOOK_WORKER="external",
    )
    log = tmp_path / f"serve-{server}.log"
    with _process([*_command(), "serve", "--server", server], env, log) as process:
        base = f"http://127.0.0.1:{api}"
        _wait(
            lambda: httpx.get(f"{base}/health", timeout=2).status_code == 200, "the API answers", process, log
        )
        for _ in range(40):  # new connections: both workers take some
            with httpx.Client() as client:
                assert client.get(f"{base}/no/such/page").status_code == 404
        unmatched = "silver_http_requests_total{method=GET,route=unmatched,status=404}"
        # The serving process answers no request itself: 40 here is the workers' values, summed.
        _wait(lambda: scrape(metrics_port).get(unmatched) == 40, "the sum reaches 40", process, log)
        assert list((tmp_path / "process-data" / "metrics").glob("counter_*.db"))


@pytest.mark.slow
def test_the_worker_serves_webhook_metrics(settings: Settings, tmp_path: Path) -> None:
    metrics_port = free_port()
    env = _env(settings, tmp_path, SILVER_METRICS_PORT=str(metrics_port), SILVER_WEBHOOK_WORKER="external")
    log = tmp_path / "worker.log"
    with _process([*_command(), "worker"], env, log) as process:
        _wait(
            lambda: "silver_webhook_backlog{}" in scrape(metrics_port),
            "the worker's listener answers",
            process,
            log,
        )
        assert scrape(metrics_port)["silver_webhook_backlog{}"] == 0
