"""What the access log and the request metrics cost the hot path: `/v1/backend/project` with a warm key,
served three ways side by side, under wrk.

- `bare`: the request observer (silver_auth.web.access_log) not installed at all. This bench's own
  switch (BENCH_OBSERVABILITY=off, read by its factory `patched_asgi` in the server process), not a
  product setting.
- `metrics`: installed, SILVER_ACCESS_LOG=false: request id, X-Request-Id echo, route template,
  request counter and latency histogram.
- `logged`: installed with the access log on, as production runs: JSON lines, SILVER_LOG_LEVEL=INFO,
  one line per request written to the server's stderr (a file here).

Two parts:

1. `cpu`: the app called in-process (no server, no network; SQLite), the three ways in turns, and the
   process's CPU time per request, the best of several rounds. On a shared machine this is the steadier
   figure: other processes' load does not enter it.
2. `wrk`: each server run as bench/throughput.py runs the service (Postgres, SILVER_ENV=production, one
   worker, the Granian or uvicorn options of `silver-auth serve`), beside the bare Starlette baseline.
   Per round: baseline, metrics, logged, bare, …; each `metrics`/`logged` run is divided by the mean of
   the `bare` runs just before and after it, so load that comes and goes hits both sides.

    .venv/bin/python bench/observability.py                      # both parts; granian, 3 rounds of 10 s
    .venv/bin/python bench/observability.py --part cpu
    .venv/bin/python bench/observability.py --part wrk --quick --server uvicorn
    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench_obs \
        .venv/bin/python bench/observability.py

A benchmark, not a test: exit 0 after a run, 2 when it cannot run. Raw figures go to
bench/results/observability.json (git-ignored). Loopback only; every server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import throughput as tp  # bench/throughput.py: settings, seeding, servers, wrk

SWITCH = "BENCH_OBSERVABILITY"
"""`off` in a server process this bench starts: the request observer is not installed."""
MODES = ("bare", "metrics", "logged")
PARTS = ("cpu", "wrk")


def unlimited_plans() -> None:
    """The plans' backend rate out of the bench's reach (as bench/ratelimit.py does): the limiter still
    counts every request (it is on in every way measured here), and refuses none."""
    from silver_auth.plans import service as plans  # noqa: PLC0415

    for plan_id, plan in list(plans.PLANS.items()):
        plans.PLANS[plan_id] = dataclasses.replace(plan, requests_per_minute=10**9)


def patched_asgi() -> Any:
    """`silver_auth.app:asgi`, without the request observer when the switch says `off`."""
    unlimited_plans()
    from silver_auth import app  # noqa: PLC0415

    if os.environ.get(SWITCH) == "off":
        app.observe_requests = lambda *_: None  # type: ignore[assignment]
    return app.asgi()


def server_argv(kind: str, port: int) -> list[str]:
    """The service through this bench's factory, with the options `silver-auth serve` uses."""
    if kind == "granian":
        code = (
            "import sys; from granian import Granian; from granian.constants import Interfaces; "
            "Granian('observability:patched_asgi', address=sys.argv[1], port=int(sys.argv[2]), "
            "workers=1, interface=Interfaces.ASGI, factory=True, log_access=False).serve()"
        )
    else:
        code = (
            "import sys, uvicorn; uvicorn.run('observability:patched_asgi', factory=True, "
            "host=sys.argv[1], port=int(sys.argv[2]), workers=1, access_log=False, proxy_headers=False, "
            "server_header=False, log_level='warning', lifespan='on')"
        )
    return [sys.executable, "-c", code, tp.HOST, str(port)]


def mode_env(env: dict[str, str], mode: str, port: int) -> dict[str, str]:
    return {
        **env,
        "SILVER_BIND_PORT": str(port),
        "SILVER_LOG_LEVEL": "INFO",  # production's default: every 2xx is an info line
        "SILVER_LOG_FORMAT": "json",
        "SILVER_ACCESS_LOG": "true" if mode == "logged" else "false",
        "SILVER_METRICS_PORT": "0",  # the listener is not on the request path; three servers, one port
        # One address sends everything: its budgets must not run out (bench/ratelimit.py does the same).
        "SILVER_RATE_LIMIT_CLIENT_PER_MINUTE": str(10**9),
        "SILVER_RATE_LIMIT_ANONYMOUS_PER_MINUTE": str(10**9),
        SWITCH: "off" if mode == "bare" else "on",
        "PYTHONPATH": str(tp.BENCH),
    }


@dataclass
class ModeRow(tp.MedianOfRounds):
    server: str
    mode: str
    rounds: list[tp.WrkResult] = field(default_factory=list)
    vs_bare: list[float] = field(default_factory=list)
    vs_baseline: list[float] = field(default_factory=list)


def bench_server(
    kind: str, env: dict[str, str], workdir: Path, keys: tp.Seeded, opts: tp.Options
) -> list[ModeRow]:
    base_port = tp.free_port()
    ports = {mode: tp.free_port() for mode in MODES}
    baseline_argv = [
        sys.executable,
        str(tp.BENCH / "baseline_app.py"),
        "--server",
        kind,
        "--host",
        tp.HOST,
        "--port",
        str(base_port),
    ]
    baseline = tp.Target("baseline", f"http://{tp.HOST}:{base_port}/baseline", expect='"baseline"')
    targets = {
        mode: tp.Target(
            mode,
            f"http://{tp.HOST}:{ports[mode]}/v1/backend/project",
            {"Authorization": f"Bearer {keys.secret}"},
            expect='"environment":"live"',
        )
        for mode in MODES
    }
    rows = {mode: ModeRow(kind, mode) for mode in ("baseline", *MODES)}
    with contextlib.ExitStack() as stack:
        stack.enter_context(tp.running(f"baseline-{kind}", baseline_argv, env, workdir, baseline.url))
        for mode in MODES:
            base = f"http://{tp.HOST}:{ports[mode]}"
            stack.enter_context(
                tp.running(
                    f"silver-{kind}-{mode}",
                    server_argv(kind, ports[mode]),
                    mode_env(env, mode, ports[mode]),
                    workdir,
                    f"{base}/health",
                )
            )
        for target in (baseline, *targets.values()):
            tp.check(target)
            if opts.warmup > 0:
                tp.wrk(target, opts.threads, opts.connections, opts.warmup)

        def measure(target: tp.Target, label: str) -> tp.WrkResult:
            result = tp.wrk(target, opts.threads, opts.connections, opts.seconds)
            rows[target.name].rounds.append(result)
            print(
                f"  {kind:8} {target.name:9} {label:8} {result.requests_per_second:9.0f} req/s  "
                f"p99 {result.latency_p99_ms:7.2f} ms",
                flush=True,
            )
            return result

        before = measure(targets["bare"], "round 0")
        for round_no in range(1, opts.rounds + 1):
            reference = measure(baseline, f"round {round_no}")
            measured = {mode: measure(targets[mode], f"round {round_no}") for mode in ("metrics", "logged")}
            after = measure(targets["bare"], f"round {round_no}")
            bare = (before.requests_per_second + after.requests_per_second) / 2
            rows["bare"].vs_baseline.append(after.requests_per_second / reference.requests_per_second)
            for mode, result in measured.items():
                rows[mode].vs_bare.append(result.requests_per_second / bare)
                rows[mode].vs_baseline.append(result.requests_per_second / reference.requests_per_second)
            before = after
    return list(rows.values())


# --- cpu: in-process ---------------------------------------------------------------------------------


@dataclass
class CpuRow:
    mode: str
    microseconds: list[float] = field(default_factory=list)
    """CPU time per request, one figure per round."""


def cpu_part(requests: int, rounds: int) -> list[CpuRow]:
    """The three ways, in turns, on one SQLite database, each app with a warm key cache."""
    with tempfile.TemporaryDirectory(prefix="silver-bench-obs-cpu-") as tmp:
        workdir = Path(tmp)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(tp.SCRUBBED_PREFIXES)},
            "SILVER_DATA_DIR": str(workdir / "data"),
            "SILVER_LOG_LEVEL": "INFO",
            "SILVER_LOG_FORMAT": "json",
            "SILVER_METRICS_PORT": "0",
            "SILVER_RATE_LIMIT_CLIENT_PER_MINUTE": str(10**9),
            "SILVER_RATE_LIMIT_ANONYMOUS_PER_MINUTE": str(10**9),
        }
        tp.migrate(env, workdir)
        keys = tp.seed(env)
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        try:
            return asyncio.run(_cpu_rounds(keys.secret, requests, rounds, workdir / "requests.log"))
        finally:
            os.environ.clear()
            os.environ.update(saved)


async def _cpu_rounds(secret: str, requests: int, rounds: int, log_path: Path) -> list[CpuRow]:
    unlimited_plans()
    from silver_auth.app import create_app  # noqa: PLC0415 - after the environment is in place
    from silver_auth.settings import load_settings  # noqa: PLC0415
    from silver_auth.web.access_log import AccessLog  # noqa: PLC0415

    logged = create_app(load_settings())
    quiet = create_app(load_settings(SILVER_ACCESS_LOG=False))
    bare = create_app(load_settings())
    assert isinstance(bare.asgi_handler, AccessLog)
    bare.asgi_handler = bare.asgi_handler.handler  # the observer taken out again
    apps = {"bare": bare, "metrics": quiet, "logged": logged}
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/backend/project",
        "raw_path": b"/v1/backend/project",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {secret}".encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def call(app: Any, times: int) -> None:
        for _ in range(times):
            await app({**scope, "headers": list(scope["headers"])}, receive, send)

    rows = {mode: CpuRow(mode) for mode in apps}
    with log_path.open("w") as sink, contextlib.redirect_stderr(sink):  # the log lines go to a file
        for app in apps.values():
            await call(app, 20)  # the first fills the key cache: the rest take the hot path
        for round_no in range(rounds):
            order = list(apps) if round_no % 2 == 0 else list(reversed(apps))
            for mode in order:
                started = time.process_time()
                await call(apps[mode], requests)
                await asyncio.sleep(0)  # the loop's turn ends: the last lines are written, and counted
                rows[mode].microseconds.append((time.process_time() - started) / requests * 1e6)
    if set(statuses) != {200}:
        raise tp.BenchError(f"the hot path answered {sorted(set(statuses))}")
    if sum(1 for _ in log_path.open()) < requests * rounds:
        raise tp.BenchError("the logged app wrote fewer lines than it served requests")
    for app in apps.values():
        await app.state.runtime.engine.dispose()
        await app.state.runtime.throttle.engine.dispose()
    return list(rows.values())


def print_cpu_table(rows: list[CpuRow]) -> None:
    bare = min(next(r for r in rows if r.mode == "bare").microseconds)
    print()
    print("| /v1/backend/project, in-process | CPU µs per request: best | median | added to bare |")
    print("|---------------------------------|-------------------------:|-------:|--------------:|")
    for row in rows:
        best, median = min(row.microseconds), statistics.median(row.microseconds)
        added = f"{best - bare:+.1f} µs" if row.mode != "bare" else "-"
        print(f"| {row.mode:31} | {best:24.1f} | {median:6.1f} | {added:>13} |")


# --- wrk: served ---------------------------------------------------------------------------------------


def print_table(rows: list[ModeRow]) -> None:
    print()
    print("| server  | /v1/backend/project | req/s (median) | p99 ms | vs bare (range)   | vs Starlette |")
    print("|---------|---------------------|---------------:|-------:|-------------------|-------------:|")
    for row in rows:
        label = "bare Starlette" if row.mode == "baseline" else row.mode
        if row.vs_bare:
            vs_bare = f"{statistics.median(row.vs_bare):.2f}x ({min(row.vs_bare):.2f}-{max(row.vs_bare):.2f})"
        else:
            vs_bare = "1.00x" if row.mode == "bare" else "-"
        vs_base = f"{statistics.median(row.vs_baseline):.2f}x" if row.vs_baseline else "1.00x"
        figures = f"{row.rps:14.0f} | {row.p99:6.1f} | {vs_bare:17} | {vs_base:>12}"
        print(f"| {row.server:7} | {label:19} | {figures} |")


def parse_args(argv: list[str] | None) -> tuple[tp.Options, tuple[str, ...], int]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--part", choices=PARTS, action="append", help="repeatable; default both")
    parser.add_argument("--requests", type=int, default=20_000, help="cpu: requests per round (20000)")
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 round, 1 s warm-up")
    parser.add_argument("--server", choices=tp.SERVERS, action="append", help="repeatable; default granian")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10, quick 3)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    args = parser.parse_args(argv)
    seconds = args.duration or (3.0 if args.quick else 10.0)
    opts = tp.Options(
        servers=tuple(args.server or ("granian",)),
        threads=args.threads,
        connections=args.connections,
        seconds=min(max(seconds, 1.0), 60.0),
        warmup=1.0 if args.quick else 2.0,
        rounds=max(1, min(args.rounds or (1 if args.quick else 3), 10)),
    )
    requests = max(100, args.requests // (10 if args.quick else 1))
    return opts, tuple(args.part or PARTS), requests


def run(opts: tp.Options, parts: tuple[str, ...], requests: int) -> int:
    results: dict[str, Any] = {"options": asdict(opts)}
    if "cpu" in parts:
        cpu = cpu_part(requests, max(opts.rounds, 3) * 2 - 1)
        print_cpu_table(cpu)
        results["cpu"] = [asdict(row) for row in cpu]
    if "wrk" in parts:
        results.update(wrk_part(opts))
    tp.RESULTS.mkdir(exist_ok=True)
    (tp.RESULTS / "observability.json").write_text(json.dumps(results, indent=2))
    return 0


def wrk_part(opts: tp.Options) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise tp.BenchError("wrk is not installed (Debian: apt-get install wrk)")
    database_url = os.environ.get("BENCH_DATABASE_URL", tp.DEFAULT_DATABASE_URL)
    info = tp.machine()
    print(f"machine: {info['cpu']} · {info['cores']} cores · Python {info['python']} · {info['wrk']}")
    print(
        f"wrk -t{opts.threads} -c{opts.connections} -d{opts.seconds:g}s, {opts.rounds} round(s); one worker "
        f"per server; SILVER_ENV=production on {urlsplit(database_url).path[1:]!r}"
    )
    rows: list[ModeRow] = []
    with tempfile.TemporaryDirectory(prefix="silver-bench-obs-") as tmp:
        workdir = Path(tmp)
        env = tp.production_env(database_url, workdir / "data")
        tp.migrate(env, workdir)
        keys = tp.seed(env)
        for kind in opts.servers:
            rows += bench_server(kind, env, workdir, keys, opts)
    print_table(rows)
    return {"machine": info, "rows": [asdict(row) for row in rows]}


def main(argv: list[str] | None = None) -> int:
    opts, parts, requests = parse_args(argv)
    try:
        return run(opts, parts, requests)
    except (tp.BenchError, subprocess.TimeoutExpired) as exc:
        print(f"bench error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
