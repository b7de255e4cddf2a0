"""What the access log and the request metrics cost the hot path: `/v1/backend/project` with a warm key,
served three ways side by side, under wrk.

- `bare`: the request observer (silver_auth.web.access_log) not installed at all. This bench's own
  switch (BENCH_OBSERVABILITY=off, read by its factory `patched_asgi` in the server process), not a
  product setting.
- `metrics`: installed, SILVER_ACCESS_LOG=false: request id, X-Request-Id echo, route template,
  request counter and latency histogram.
- `logged`: installed with the access log on, as production runs: JSON lines, SILVER_LOG_LEVEL=INFO,
  one line per request written to the server's stderr (a file here).

Each server runs as bench/throughput.py runs the service (Postgres, SILVER_ENV=production, one worker,
the Granian or uvicorn options of `silver-auth serve`), beside the bare Starlette baseline. Per round:
baseline, bare, metrics, logged, bare, …; each `metrics`/`logged` run is divided by the mean of the
`bare` runs just before and after it, so load that comes and goes hits both sides.

    .venv/bin/python bench/observability.py                      # granian, 3 rounds of 10 s
    .venv/bin/python bench/observability.py --quick --server uvicorn
    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench .venv/bin/python bench/observability.py

A benchmark, not a test: exit 0 after a run, 2 when it cannot run. Raw figures go to
bench/results/observability.json (git-ignored). Loopback only; every server is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import throughput as tp  # bench/throughput.py: settings, seeding, servers, wrk

SWITCH = "BENCH_OBSERVABILITY"
"""`off` in a server process this bench starts: the request observer is not installed."""
MODES = ("bare", "metrics", "logged")


def patched_asgi() -> Any:
    """`silver_auth.app:asgi`, without the request observer when the switch says `off`."""
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
        SWITCH: "off" if mode == "bare" else "on",
        "PYTHONPATH": str(tp.BENCH),
    }


@dataclass
class ModeRow:
    server: str
    mode: str
    rounds: list[tp.WrkResult] = field(default_factory=list)
    vs_bare: list[float] = field(default_factory=list)
    vs_baseline: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return statistics.median(r.requests_per_second for r in self.rounds)

    @property
    def p99(self) -> float:
        return statistics.median(r.latency_p99_ms for r in self.rounds)


def bench_server(kind: str, env: dict[str, str], workdir: Path, keys: tp.Seeded, opts: tp.Options) -> list[ModeRow]:
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


def print_table(rows: list[ModeRow]) -> None:
    print()
    print("| server  | /v1/backend/project | req/s (median) | p99 ms | vs bare (range) | vs Starlette |")
    print("|---------|---------------------|---------------:|-------:|-----------------|-------------:|")
    for row in rows:
        label = "bare Starlette" if row.mode == "baseline" else row.mode
        if row.vs_bare:
            vs_bare = f"{statistics.median(row.vs_bare):.2f}x ({min(row.vs_bare):.2f}-{max(row.vs_bare):.2f})"
        else:
            vs_bare = "1.00x" if row.mode == "bare" else "-"
        vs_base = f"{statistics.median(row.vs_baseline):.2f}x" if row.vs_baseline else "1.00x"
        print(
            f"| {row.server:7} | {label:19} | {row.rps:14.0f} | {row.p99:6.1f} | {vs_bare:15} | {vs_base:>12} |"
        )


def parse_args(argv: list[str] | None) -> tp.Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 round, 1 s warm-up")
    parser.add_argument("--server", choices=tp.SERVERS, action="append", help="repeatable; default granian")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10, quick 3)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    args = parser.parse_args(argv)
    seconds = args.duration or (3.0 if args.quick else 10.0)
    return tp.Options(
        servers=tuple(args.server or ("granian",)),
        threads=args.threads,
        connections=args.connections,
        seconds=min(max(seconds, 1.0), 60.0),
        warmup=1.0 if args.quick else 2.0,
        rounds=max(1, min(args.rounds or (1 if args.quick else 3), 10)),
    )


def run(opts: tp.Options) -> int:
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
    tp.RESULTS.mkdir(exist_ok=True)
    (tp.RESULTS / "observability.json").write_text(
        json.dumps(
            {"machine": info, "options": asdict(opts), "rows": [asdict(row) for row in rows]},
            indent=2,
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    try:
        return run(opts)
    except (tp.BenchError, subprocess.TimeoutExpired) as exc:
        print(f"bench error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
