"""The hot path's throughput while console sign-ins run, against the same without them, side by side.

Each sign-in verifies an argon2id hash (~0.1-0.2 s of CPU at production parameters). On the event loop,
two sign-ins in flight took /v1/backend/project from thousands of requests per second to a few
hundred; in the hashing threads (SILVER_PASSWORD_HASH_THREADS) the hot path keeps the loop. Run as
bench/throughput.py runs the service (Postgres, SILVER_ENV=production, one worker), each round measures
with wrk, loopback only: the bare Starlette baseline, /v1/backend/project alone, then
/v1/backend/project while a second wrk keeps N console sign-ins in flight (POST /console/api/sign-in,
right password) for each N of --burst, then the baseline again. Ratios compare runs seconds apart.

    .venv/bin/python bench/sign_in_burst.py                 # granian; bursts of 2 and 8; 3 rounds of 10 s
    .venv/bin/python bench/sign_in_burst.py --quick         # 1 round of 3 s
    .venv/bin/python bench/sign_in_burst.py --server uvicorn --burst 2 --burst 16
    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench ...

Exit 0 after a run (a benchmark, not a test: no bar), 2 when it cannot run. Raw figures go to
bench/results/sign_in_burst.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import throughput as tp  # bench/throughput.py: settings, seeding, servers, wrk

SIGN_IN_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email": "%s", "password": "%s"}'
"""


@dataclass
class Load:
    label: str
    burst: int
    backend: list[tp.WrkResult] = field(default_factory=list)
    sign_ins: list[tp.WrkResult] = field(default_factory=list)
    vs_baseline: list[float] = field(default_factory=list)
    vs_alone: list[float] = field(default_factory=list)

    def median(self, values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")


def sign_in_wrk(url: str, script: Path, in_flight: int, seconds: float) -> subprocess.Popen[str]:
    argv = ["wrk", "-t1", f"-c{in_flight}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str], seconds: float) -> tp.WrkResult:
    out, err = process.communicate(timeout=seconds + 60)
    if process.returncode != 0:
        raise tp.BenchError(f"wrk (sign-ins) failed: {err.strip()}")
    result = tp.parse_wrk(out)
    if result.non_2xx:  # a refused sign-in (429, 401) costs no argon2: it would flatter the figures
        raise tp.BenchError(f"sign-ins: {result.non_2xx} of {result.requests} answers were not 2xx")
    return result


def bench_server(
    kind: str, env: dict[str, str], workdir: Path, seeded: tp.Seeded, opts: Options
) -> list[Load]:
    base_port, silver_port = tp.free_port(), tp.free_port()
    silver = f"http://{tp.HOST}:{silver_port}"
    baseline = tp.Target("baseline", f"http://{tp.HOST}:{base_port}/baseline", expect='"baseline"')
    backend = tp.Target(
        "backend-project",
        f"{silver}/v1/backend/project",
        {"Authorization": f"Bearer {seeded.secret}"},
        expect='"environment":"live"',
    )
    script = workdir / "sign_in.lua"
    script.write_text(SIGN_IN_SCRIPT % (seeded.email, seeded.password))
    baseline_argv = [sys.executable, str(tp.BENCH / "baseline_app.py"), "--server", kind]
    baseline_argv += ["--host", tp.HOST, "--port", str(base_port)]
    serve = tp.silver_cli("serve", "--workers", "1", "--server", kind)
    loads = [Load("alone", 0)] + [Load(f"{n} sign-ins in flight", n) for n in opts.bursts]
    with (
        tp.running(f"baseline-{kind}", baseline_argv, env, workdir, baseline.url),
        tp.running(
            f"silver-{kind}",
            serve,
            {**env, "SILVER_BIND_PORT": str(silver_port)},
            workdir,
            f"{silver}/health",
        ),
    ):
        for target in (baseline, backend):
            tp.check(target)
            tp.wrk(target, opts.threads, opts.connections, opts.warmup)
        finish(sign_in_wrk(f"{silver}/console/api/sign-in", script, 1, 1), 1)  # the sign-in works

        def measure(target: tp.Target) -> tp.WrkResult:
            return tp.wrk(target, opts.threads, opts.connections, opts.seconds)

        before = measure(baseline)
        for round_no in range(1, opts.rounds + 1):
            results: list[tuple[Load, tp.WrkResult]] = []
            for load in loads:
                if load.burst:
                    # The sign-ins start first and end after: the whole backend run sees them.
                    burst = sign_in_wrk(f"{silver}/console/api/sign-in", script, load.burst, opts.seconds + 2)
                    time.sleep(1)
                    result = measure(backend)
                    load.sign_ins.append(finish(burst, opts.seconds + 2))
                else:
                    result = measure(backend)
                results.append((load, result))
                signs = f"  {load.sign_ins[-1].requests_per_second:6.1f} sign-ins/s" if load.burst else ""
                print(
                    f"  {kind:8} round {round_no}  backend-project {load.label:22} "
                    f"{result.requests_per_second:9.0f} req/s  p99 {result.latency_p99_ms:8.2f} ms{signs}",
                    flush=True,
                )
            after = measure(baseline)
            reference = (before.requests_per_second + after.requests_per_second) / 2
            alone = results[0][1].requests_per_second
            for load, result in results:
                load.backend.append(result)
                load.vs_baseline.append(result.requests_per_second / reference)
                load.vs_alone.append(result.requests_per_second / alone)
            before = after
    return loads


@dataclass
class Options:
    servers: tuple[str, ...]
    bursts: tuple[int, ...]
    threads: int
    connections: int
    seconds: float
    warmup: float
    rounds: int


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 round, 1 s warm-up")
    parser.add_argument("--server", choices=tp.SERVERS, action="append", help="repeatable; default granian")
    parser.add_argument("--burst", type=int, action="append", help="sign-ins in flight (default 2 and 8)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t of the backend run (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c of the backend run (64)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 10, quick 3)")
    parser.add_argument("--rounds", type=int, help="default 3, quick 1")
    args = parser.parse_args(argv)
    return Options(
        servers=tuple(args.server or ("granian",)),
        bursts=tuple(sorted({max(1, n) for n in args.burst or (2, 8)})),
        threads=args.threads,
        connections=args.connections,
        seconds=min(max(args.duration or (3.0 if args.quick else 10.0), 1.0), 60.0),
        warmup=1.0 if args.quick else 2.0,
        rounds=max(1, min(args.rounds or (1 if args.quick else 3), 10)),
    )


def run(opts: Options) -> int:
    database_url = os.environ.get("BENCH_DATABASE_URL", tp.DEFAULT_DATABASE_URL)
    info = tp.machine()
    threads = os.environ.get("SILVER_PASSWORD_HASH_THREADS", "the CPU count")
    print(f"machine: {info['cpu']} · {info['cores']} cores · Python {info['python']} · {info['wrk']}")
    print(
        f"backend: wrk -t{opts.threads} -c{opts.connections} -d{opts.seconds:g}s; sign-ins: wrk -t1 "
        f"-c<burst>; {opts.rounds} round(s); hashing threads: {threads}; "
        f"SILVER_ENV=production on {urlsplit(database_url).path[1:]!r}"
    )
    rows: dict[str, list[Load]] = {}
    with tempfile.TemporaryDirectory(prefix="silver-bench-") as tmp:
        workdir = Path(tmp)
        env = tp.production_env(database_url, workdir / "data")
        if "SILVER_PASSWORD_HASH_THREADS" in os.environ:  # production_env leaves SILVER_* out on purpose
            env["SILVER_PASSWORD_HASH_THREADS"] = os.environ["SILVER_PASSWORD_HASH_THREADS"]
        tp.migrate(env, workdir)
        seeded = tp.seed(env)
        for kind in opts.servers:
            rows[kind] = bench_server(kind, env, workdir, seeded, opts)
    print()
    print(
        "| server  | /v1/backend/project   | req/s (median) | p99 ms | vs alone | vs baseline | sign-ins/s |"
    )
    print(
        "|---------|-----------------------|---------------:|-------:|---------:|------------:|-----------:|"
    )
    for kind, loads in rows.items():
        for load in loads:
            rps = load.median([r.requests_per_second for r in load.backend])
            p99 = load.median([r.latency_p99_ms for r in load.backend])
            signs = load.median([r.requests_per_second for r in load.sign_ins])
            alone, base = load.median(load.vs_alone), load.median(load.vs_baseline)
            shown = f"{signs:.1f}" if load.burst else "-"
            print(
                f"| {kind:7} | {load.label:21} | {rps:14.0f} | {p99:6.1f} | {alone:7.2f}x "
                f"| {base:10.2f}x | {shown:>10} |"
            )
    tp.RESULTS.mkdir(exist_ok=True)
    (tp.RESULTS / "sign_in_burst.json").write_text(
        json.dumps(
            {
                "machine": info,
                "hash_threads": threads,
                "rows": {
                    kind: [
                        {
                            "load": load.label,
                            "backend_rps": [r.requests_per_second for r in load.backend],
                            "backend_p99_ms": [r.latency_p99_ms for r in load.backend],
                            "sign_ins_per_second": [r.requests_per_second for r in load.sign_ins],
                            "vs_alone": load.vs_alone,
                            "vs_baseline": load.vs_baseline,
                        }
                        for load in loads
                    ]
                    for kind, loads in rows.items()
                },
            },
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
