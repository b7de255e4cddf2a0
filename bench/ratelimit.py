"""What the app limiter (G35) costs on the hot endpoints: the service without it, with memory storage and
with Redis storage, side by side with the bare Starlette baseline, in interleaved rounds of one run.

Issue 10's bar: with memory storage, /v1/backend/project (the backend-key check) keeps at least 0.8 of
its speed without the limiter. Exits 1 below the bar, 2 when the bench cannot run.

    .venv/bin/python bench/ratelimit.py            # 3 rounds of 10 s per endpoint and mode
    .venv/bin/python bench/ratelimit.py --quick
    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench \
        BENCH_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/ratelimit.py

Every server runs as `silver-auth serve --workers 1 --server granian` runs it (SILVER_ENV=production,
Postgres), through this file's factory: it raises the Free plan's backend rate out of wrk's reach, so
every request is counted and none refused, and in mode `off` lets the app start with the limiter off,
which the production guard otherwise refuses (G35). Loopback only; every server is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import throughput as tp  # bench/throughput.py: settings, servers, wrk

MODES = ("off", "memory", "redis")
MODE_SWITCH = "BENCH_RATE_LIMIT_MODE"
"""Which mode a server process this bench starts is in. Read by this file only."""
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ENDPOINTS = ("backend-project", "client-config")
MIN_RATIO = 0.8


def limited_asgi() -> Any:
    """`silver_auth.app:asgi` with a backend rate wrk cannot spend, and in mode `off` the limiter off."""
    from silver_auth.plans import service as plans  # noqa: PLC0415

    for plan_id, plan in list(plans.PLANS.items()):
        plans.PLANS[plan_id] = dataclasses.replace(plan, requests_per_minute=10**9)
    from silver_auth import app  # noqa: PLC0415

    if os.environ.get(MODE_SWITCH) == "off":
        guard = app.production_violations
        app.production_violations = lambda settings: [v for v in guard(settings) if not v.startswith("G35:")]
    return app.asgi()


@dataclass
class Row(tp.MedianOfRounds):
    endpoint: str
    mode: str
    rounds: list[tp.WrkResult] = field(default_factory=list)
    vs_baseline: list[float] = field(default_factory=list)
    vs_off: list[float] = field(default_factory=list)


@contextlib.contextmanager
def silver(mode: str, env: dict[str, str], workdir: Path, redis_url: str) -> Iterator[str]:
    port = tp.free_port()
    server_env = {
        **env,
        "SILVER_BIND_PORT": str(port),
        MODE_SWITCH: mode,
        "SILVER_RATE_LIMIT_ENABLED": "false" if mode == "off" else "true",
        # Every client of the bench is one address: its anonymous and client budgets must not run out.
        "SILVER_RATE_LIMIT_CLIENT_PER_MINUTE": str(10**9),
        "SILVER_RATE_LIMIT_ANONYMOUS_PER_MINUTE": str(10**9),
        "PYTHONPATH": str(tp.BENCH),
    }
    if mode == "redis":
        server_env |= {
            "SILVER_REDIS_URL": redis_url,
            "SILVER_REDIS_KEY_PREFIX": f"bench{secrets.token_hex(4)}",
        }
    argv = [
        sys.executable,
        "-c",
        "import sys; from granian import Granian; from granian.constants import Interfaces; "
        "Granian('ratelimit:limited_asgi', address=sys.argv[1], port=int(sys.argv[2]), workers=1, "
        "interface=Interfaces.ASGI, factory=True, log_access=False).serve()",
        tp.HOST,
        str(port),
    ]
    base = f"http://{tp.HOST}:{port}"
    with tp.running(f"silver-{mode}", argv, server_env, workdir, f"{base}/health"):
        yield base


def run(opts: tp.Options, redis_url: str) -> int:
    database_url = os.environ.get("BENCH_DATABASE_URL", tp.DEFAULT_DATABASE_URL)
    info = tp.machine()
    print(f"machine: {info['cpu']} · {info['cores']} cores · Python {info['python']} · {info['wrk']}")
    print(
        f"wrk -t{opts.threads} -c{opts.connections} -d{opts.seconds:g}s, {opts.rounds} round(s), median "
        f"kept; granian, one worker; modes {', '.join(MODES)}; Redis {redis_url}"
    )
    with tempfile.TemporaryDirectory(prefix="silver-bench-limits-") as tmp:
        workdir = Path(tmp)
        env = tp.production_env(database_url, workdir / "data")
        tp.migrate(env, workdir)
        keys = tp.seed(env)
        base_port = tp.free_port()
        baseline_argv = [sys.executable, str(tp.BENCH / "baseline_app.py"), "--server", "granian"]
        baseline_argv += ["--host", tp.HOST, "--port", str(base_port)]
        baseline = tp.Target("baseline", f"http://{tp.HOST}:{base_port}/baseline", expect='"baseline"')
        rows = {(e, m): Row(e, m) for e in ENDPOINTS for m in MODES}
        with contextlib.ExitStack() as stack:
            stack.enter_context(tp.running("baseline", baseline_argv, env, workdir, baseline.url))
            bases = {mode: stack.enter_context(silver(mode, env, workdir, redis_url)) for mode in MODES}
            targets = {
                (endpoint, mode): target
                for mode, base in bases.items()
                for endpoint, target in (
                    (
                        "backend-project",
                        tp.Target(
                            f"backend-project/{mode}",
                            f"{base}/v1/backend/project",
                            {"Authorization": f"Bearer {keys.secret}"},
                            expect='"environment":"live"',
                        ),
                    ),
                    (
                        "client-config",
                        tp.Target(
                            f"client-config/{mode}",
                            f"{base}/v1/client-config",
                            {"X-Publishable-Key": keys.publishable},
                            expect='"sign_in_methods"',
                        ),
                    ),
                )
            }
            for target in [baseline, *targets.values()]:
                tp.check(target)
                tp.wrk(target, opts.threads, opts.connections, opts.warmup)

            def measure(target: tp.Target, label: str) -> tp.WrkResult:
                result = tp.wrk(target, opts.threads, opts.connections, opts.seconds)
                print(
                    f"  {target.name:24} {label:8} {result.requests_per_second:9.0f} req/s  "
                    f"p99 {result.latency_p99_ms:7.2f} ms",
                    flush=True,
                )
                return result

            before = measure(baseline, "round 0")
            for round_no in range(1, opts.rounds + 1):
                order = MODES if round_no % 2 else tuple(reversed(MODES))  # no mode always goes first
                results = {
                    (endpoint, mode): measure(targets[(endpoint, mode)], f"round {round_no}")
                    for endpoint in ENDPOINTS
                    for mode in order
                }
                after = measure(baseline, f"round {round_no}")
                reference = (before.requests_per_second + after.requests_per_second) / 2
                for (endpoint, mode), result in results.items():
                    row = rows[(endpoint, mode)]
                    row.rounds.append(result)
                    row.vs_baseline.append(result.requests_per_second / reference)
                    off = results[(endpoint, "off")].requests_per_second
                    row.vs_off.append(result.requests_per_second / off)
                before = after
    print()
    print("| endpoint            | limiter | req/s (median) | p99 ms | vs baseline | vs no limiter (range) |")
    print("|---------------------|---------|---------------:|-------:|------------:|-----------------------|")
    for row in rows.values():
        spread = f"{min(row.vs_off):.2f}-{max(row.vs_off):.2f}"
        print(
            f"| {tp.PATHS[row.endpoint]:19} | {row.mode:7} | {row.rps:14.0f} | {row.p99:6.1f} "
            f"| {statistics.median(row.vs_baseline):10.2f}x "
            f"| {statistics.median(row.vs_off):.2f}x ({spread}) |"
        )
    tp.RESULTS.mkdir(exist_ok=True)
    (tp.RESULTS / "ratelimit.json").write_text(
        json.dumps(
            {
                "machine": info,
                "options": dataclasses.asdict(opts),
                "rows": [
                    {**dataclasses.asdict(r), "rps": r.rps, "vs_off": statistics.median(r.vs_off)}
                    for r in rows.values()
                ],
            },
            indent=2,
        )
    )
    memory = statistics.median(rows[("backend-project", "memory")].vs_off)
    print(f"\nbar: /v1/backend/project with memory storage >= {MIN_RATIO:.2f}x of itself without the limiter")
    if memory < MIN_RATIO:
        print(f"FAIL {memory:.2f}x")
        return 1
    print(f"PASS {memory:.2f}x")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    known, rest = parser.parse_known_args(argv)
    opts = tp.parse_args(rest)
    try:
        return run(opts, known.redis_url)
    except (tp.BenchError, subprocess.TimeoutExpired) as exc:
        print(f"bench error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
