"""Throughput of the hot public endpoints against a bare Starlette JSON endpoint, under wrk.

The acceptance bar (issue 2): with the service run as in production (Postgres, SILVER_ENV=production,
the production ASGI server, one worker), /v1/client-config and /v1/backend/project with a warm key cache
serve at least half the requests per second of a bare Starlette JSON endpoint (bench/baseline_app.py)
on the same server in the same run. Exits 1 when a ratio is below the bar, 2 when the bench cannot run.

    make bench                          # full run: uvicorn and granian, 3 rounds of 10 s per endpoint
    .venv/bin/python bench/throughput.py --quick
    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench .venv/bin/python bench/throughput.py

Loopback only; every run is bounded (wrk -d) and every server started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.util
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench"
HOST = "127.0.0.1"
MIN_RATIO = 0.5
GATED = ("client-config", "backend-project")
SERVERS = ("uvicorn", "granian")
PACKAGES = ("silver-auth", "litestar", "msgspec", "starlette", "uvicorn", "granian", "uvloop", "httptools")
# Production settings the bench must not inherit from the caller's shell.
SCRUBBED_PREFIXES = ("SILVER_", "SESSION_", "DATABASE_URL", "AUTHENTIK_")


class BenchError(Exception):
    """The bench could not run (not a slow result)."""


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    expect: str = ""
    """A fragment the 200 answer must contain, so a fast error page is never measured."""
    strict: bool = True
    """Any non-2xx answer under load stops the bench (for the gated endpoints and the baseline)."""


@dataclass
class WrkResult:
    requests_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


class MedianOfRounds:
    """req/s and p99 of a row: the median over its interleaved rounds."""

    rounds: list[WrkResult]

    @property
    def rps(self) -> float:
        return statistics.median(r.requests_per_second for r in self.rounds)

    @property
    def p99(self) -> float:
        return statistics.median(r.latency_p99_ms for r in self.rounds)


@dataclass
class Row(MedianOfRounds):
    server: str
    endpoint: str
    rounds: list[WrkResult] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    """Per round: req/s over the mean of the baseline runs just before and just after it."""

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else 1.0

    @property
    def non_2xx(self) -> int:
        return sum(r.non_2xx for r in self.rounds)


# --- settings -------------------------------------------------------------------------------------


def with_password(url: str, password: str) -> str:
    """Give a passwordless URL a password: the production guard wants one (G21); trust auth ignores it."""
    parts = urlsplit(url)
    if parts.password or not parts.hostname:
        return url
    user = parts.username or "postgres"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}{port}"))


def production_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """SILVER_ENV=production with settings that pass the production guard: fresh random secrets each run."""
    if not database_url.startswith(("postgresql", "postgres://")):
        raise BenchError("BENCH_DATABASE_URL must be a Postgres URL: production runs on Postgres")
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env.update(
        {
            "SILVER_ENV": "production",
            "DATABASE_URL": with_password(database_url, secrets.token_urlsafe(24)),
            "AUTHENTIK_PG_PASS": secrets.token_urlsafe(24),
            "SESSION_SECRET": secrets.token_urlsafe(48),
            "SILVER_KEY_PEPPER": secrets.token_urlsafe(48),
            "SILVER_SEALING_KEYS": "bench1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "SILVER_ACCOUNTS_URL": "https://accounts.bench.invalid",
            "SILVER_AUTH_URL": "https://auth.bench.invalid",
            "SILVER_BIND_HOST": HOST,
            # L2: production needs an alert channel; nothing listens there, so an alert the run raises
            # is recorded as a failed delivery and costs no network.
            "SILVER_ALERT_URLS": "json://127.0.0.1:9/bench-alerts",
            "SILVER_DATA_DIR": str(data_dir),
            "SILVER_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def silver_cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from silver_auth.cli import main; main()", *args]


def migrate(env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        silver_cli("migrate"), env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"silver-auth migrate failed: {(done.stderr or done.stdout).strip()[-500:]}")


@dataclass(frozen=True)
class Seeded:
    email: str
    password: str
    publishable: str
    secret: str


async def _seed() -> Seeded:
    from silver_auth.accounts.service import create_account  # noqa: PLC0415
    from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415
    from silver_auth.db.session import transaction  # noqa: PLC0415
    from silver_auth.orgs.service import create_org  # noqa: PLC0415
    from silver_auth.runtime import build_runtime, key_service, project_service  # noqa: PLC0415
    from silver_auth.settings import load_settings  # noqa: PLC0415 - after the env is in place

    runtime = build_runtime(load_settings())
    try:
        async with transaction(runtime.sessionmaker) as db:
            email, password = f"bench-{secrets.token_hex(6)}@bench.invalid", secrets.token_urlsafe(24)
            account = await create_account(db, email, password, actor=CLI_ACTOR)
            org = await create_org(db, "Bench", owner_id=account.id, actor=CLI_ACTOR)
            project = await project_service(runtime, db).create(org.id, "Bench", actor=CLI_ACTOR)
            keys = key_service(runtime, db)
            publishable = await keys.create(project, "publishable", "live", actor=CLI_ACTOR)
            secret = await keys.create(project, "secret", "live", actor=CLI_ACTOR)
            return Seeded(email, password, publishable.raw, secret.raw)
    finally:
        await runtime.engine.dispose()
        await runtime.throttle.engine.dispose()


def seed(env: dict[str, str]) -> Seeded:
    """An account (its password returned), an org, a project, a live publishable and a live secret key,
    through the services."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return asyncio.run(_seed())
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    label: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path

    def tail(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace").strip()[-1500:]


@contextlib.contextmanager
def running(label: str, argv: list[str], env: dict[str, str], cwd: Path, ready_url: str) -> Iterator[Server]:
    log_path = cwd / f"{label}.log"
    with log_path.open("wb") as log:
        # A session of its own: granian forks workers, and the whole group is stopped at the end.
        process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        server = Server(label, process, log, log_path)
        try:
            wait_ready(server, ready_url)
            yield server
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def wait_ready(server: Server, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.label} exited with {server.process.returncode}:\n{server.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise BenchError(f"{server.label} not ready after {timeout:.0f}s:\n{server.tail()}")


def check(target: Target) -> None:
    """One request that must succeed with the expected body; it also fills the key cache."""
    answer = httpx.get(target.url, headers=target.headers, timeout=5.0)
    if answer.status_code != 200 or target.expect not in answer.text:
        raise BenchError(f"{target.name}: {answer.status_code} {answer.text[:300]}")


# --- wrk ------------------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not rps or not total:
        raise BenchError(f"cannot read wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        latency_p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        latency_p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sock.groups()) if sock else 0,
    )


def wrk(target: Target, threads: int, connections: int, seconds: float) -> WrkResult:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "5s"]
    for name, value in target.headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(target.url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise BenchError(f"wrk failed on {target.name}: {done.stderr.strip()}")
    result = parse_wrk(done.stdout)
    if result.non_2xx and target.strict:  # a fast 401/404 would flatter the figures: refuse to count it
        raise BenchError(f"{target.name}: {result.non_2xx} of {result.requests} answers were not 2xx")
    return result


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Options:
    servers: tuple[str, ...]
    threads: int
    connections: int
    seconds: float
    warmup: float
    rounds: int


def bench_server(kind: str, env: dict[str, str], workdir: Path, keys: Seeded, opts: Options) -> list[Row]:
    publishable, secret = keys.publishable, keys.secret
    base_port, silver_port = free_port(), free_port()
    silver_env = {**env, "SILVER_BIND_PORT": str(silver_port)}
    baseline_argv = [
        sys.executable,
        str(BENCH / "baseline_app.py"),
        "--server",
        kind,
        "--host",
        HOST,
        "--port",
        str(base_port),
    ]
    silver = f"http://{HOST}:{silver_port}"
    targets = [
        Target("baseline", f"http://{HOST}:{base_port}/baseline", expect='"baseline"'),
        Target(
            "client-config",
            f"{silver}/v1/client-config",
            {"X-Publishable-Key": publishable},
            expect='"sign_in_methods"',
        ),
        Target(
            "backend-project",
            f"{silver}/v1/backend/project",
            {"Authorization": f"Bearer {secret}"},
            expect='"environment":"live"',
        ),
        # For information: /health runs a real database check per request, so it is bound by the pool.
        Target("health", f"{silver}/health", expect='"status":"ok"', strict=False),
    ]
    with (
        running(f"baseline-{kind}", baseline_argv, env, workdir, targets[0].url),
        running(
            f"silver-{kind}",
            silver_cli("serve", "--workers", "1", "--server", kind),
            silver_env,
            workdir,
            f"{silver}/health",
        ),
    ):
        for target in targets:
            check(target)
            if opts.warmup > 0:
                wrk(target, opts.threads, opts.connections, opts.warmup)
        rows = {t.name: Row(kind, t.name) for t in targets}
        baseline, measured = targets[0], targets[1:]

        def measure(target: Target, label: str) -> WrkResult:
            result = wrk(target, opts.threads, opts.connections, opts.seconds)
            rows[target.name].rounds.append(result)
            print(
                f"  {kind:8} {target.name:16} {label:10} {result.requests_per_second:9.0f} req/s  "
                f"p99 {result.latency_p99_ms:7.2f} ms",
                flush=True,
            )
            return result

        # Baseline, the service's endpoints, baseline, …: each round is compared with the baseline runs
        # on either side of it, so drift on the machine (other load, thermal) hits both sides alike.
        before = measure(baseline, "round 0")
        for round_no in range(1, opts.rounds + 1):
            results = {t.name: measure(t, f"round {round_no}") for t in measured}
            after = measure(baseline, f"round {round_no}")
            reference = (before.requests_per_second + after.requests_per_second) / 2
            for name, result in results.items():
                rows[name].ratios.append(result.requests_per_second / reference)
            before = after
    return list(rows.values())


PATHS = {
    "baseline": "bare Starlette",
    "client-config": "/v1/client-config",
    "backend-project": "/v1/backend/project",
    "health": "/health",
}


def print_table(rows: list[Row]) -> None:
    print()
    print(
        "| server  | endpoint            | req/s (median) | p99 ms | vs baseline (median, range) | non-2xx |"
    )
    print(
        "|---------|---------------------|---------------:|-------:|-----------------------------|--------:|"
    )
    for row in rows:
        spread = f"{min(row.ratios):.2f}-{max(row.ratios):.2f}" if row.ratios else "-"
        mark = " FAIL" if row.endpoint in GATED and row.ratio < MIN_RATIO else ""
        ratio = f"{row.ratio:.2f}x ({spread}){mark}"
        print(
            f"| {row.server:7} | {PATHS[row.endpoint]:19} | {row.rps:14.0f} | {row.p99:6.1f} "
            f"| {ratio:27} | {row.non_2xx:7} |"
        )


def machine() -> dict[str, str]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for dist in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "wrk": (wrk_version.stdout or wrk_version.stderr).splitlines()[0] if wrk_version else "",
        **versions,
    }


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 round, 1 s warm-up")
    parser.add_argument("--server", choices=SERVERS, action="append", help="repeatable; default both")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10, quick 3)")
    parser.add_argument("--rounds", type=int, help="wrk runs per endpoint, median kept (default 3, quick 1)")
    args = parser.parse_args(argv)
    seconds = args.duration or (3.0 if args.quick else 10.0)
    return Options(
        servers=tuple(args.server or SERVERS),
        threads=args.threads,
        connections=args.connections,
        seconds=min(max(seconds, 1.0), 60.0),
        warmup=1.0 if args.quick else 2.0,
        rounds=max(1, min(args.rounds or (1 if args.quick else 3), 10)),
    )


def run(opts: Options) -> int:
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed (Debian: apt-get install wrk)")
    missing = [kind for kind in opts.servers if importlib.util.find_spec(kind) is None]
    if missing == list(opts.servers):
        raise BenchError(f"no ASGI server to bench: {', '.join(missing)} not installed")
    for kind in missing:
        print(f"skipping {kind}: not installed in this environment (pip install {kind})")
    opts.servers = tuple(kind for kind in opts.servers if kind not in missing)
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    info = machine()
    print(f"machine: {info['cpu']} · {info['cores']} cores · Python {info['python']} · {info['wrk']}")
    print(
        f"wrk -t{opts.threads} -c{opts.connections} -d{opts.seconds:g}s, {opts.rounds} round(s), "
        f"median kept; one worker per server; SILVER_ENV=production on {urlsplit(database_url).path[1:]!r}"
    )
    with tempfile.TemporaryDirectory(prefix="silver-bench-") as tmp:
        workdir = Path(tmp)
        env = production_env(database_url, workdir / "data")
        migrate(env, workdir)
        keys = seed(env)
        rows: list[Row] = []
        for kind in opts.servers:
            rows += bench_server(kind, env, workdir, keys, opts)
    print_table(rows)
    failed = [(r.server, r.endpoint, r.ratio) for r in rows if r.endpoint in GATED and r.ratio < MIN_RATIO]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(
        json.dumps(
            {
                "machine": info,
                "options": asdict(opts),
                "rows": [{**asdict(r), "rps": r.rps, "ratio": r.ratio} for r in rows],
            },
            indent=2,
        )
    )
    print(f"\nbar: each of {', '.join(GATED)} >= {MIN_RATIO:.2f}x the baseline on the same server")
    if failed:
        for server, endpoint, r in failed:
            print(f"FAIL {server} {endpoint}: {r:.2f}x < {MIN_RATIO:.2f}x")
        return 1
    print("PASS")
    return 0


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    try:
        return run(opts)
    except (BenchError, subprocess.TimeoutExpired) as exc:
        print(f"bench error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
