"""Webhook delivery: deliveries per second for one `silver-auth worker`, and what the outbox adds to a
backend user create.

1. **Worker throughput** (issue 9's target: at least 500 deliveries/s). Events are written to the outbox
   first (`webhook.test`, spread over the endpoints in turn); then one `silver-auth worker` starts and
   the clock runs until every delivery has succeeded at a local receiver (a minimal asyncio HTTP/1.1
   server in its own process, answering 204 on keep-alive connections). The worker sequences the
   events, claims, signs, sends and records every attempt, as in production. SQLite and Postgres.
2. **User create with and without the outbox.** `POST /v1/backend/users` (no password) through the
   service as bench/throughput.py runs it (Postgres, SILVER_ENV=production, granian, one worker), under
   wrk, each email new. Modes, one server at a time, in turns: `off` (the outbox write skipped: this
   bench's own switch, set in its server process only), `on` (the event written, the in-process worker
   delivering it to the receiver), `external` (the event written, a separate `silver-auth worker`
   delivering). Each run's ratio is over the mean of the `off` runs just before and after it.

    .venv/bin/python bench/webhook_delivery.py                  # both parts
    .venv/bin/python bench/webhook_delivery.py --part worker --events 5000 --endpoints 1 --endpoints 8
    .venv/bin/python bench/webhook_delivery.py --part create --rounds 3 --duration 10
    BENCH_WEBHOOK_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench_webhooks ...

The Postgres database (default `bench_webhooks`) belongs to the bench: it is created if missing and
emptied at the start of each part. Exit 0 after a run (a benchmark, not a test), 2 when it cannot run.
Raw figures go to bench/results/webhook_delivery.json (git-ignored). Loopback only; every process
started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

import throughput as tp  # bench/throughput.py: settings, servers, wrk

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_webhooks"
OUTBOX_SWITCH = "BENCH_WEBHOOK_OUTBOX"
"""`off` in a server process this bench starts: the outbox write is skipped. Read by this file only."""
PER_TRANSACTION = 100
MODES = ("off", "on", "external")
CREATE_SCRIPT = """local counter = 0
local prefix = os.getenv("BENCH_EMAIL_PREFIX")
local auth = os.getenv("BENCH_AUTHORIZATION")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  local body = string.format('{"email":"%s-%d-%d@bench.invalid"}', prefix, tid, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = auth}, body)
end
local told = false
function response(status, headers, body)
  if status >= 300 and not told then
    told = true
    io.write("first non-2xx answer: ", status, " ", body, "\\n")
  end
end
"""


# --- the receiver (its own process) ---------------------------------------------------------------


async def _serve_receiver(port: int) -> None:
    stats = {"count": 0, "first": 0.0, "last": 0.0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"GET /stats"):
                    body = json.dumps(stats).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                elif head.startswith(b"POST /reset"):
                    stats.update(count=0, first=0.0, last=0.0)
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                else:
                    now = time.monotonic()  # CLOCK_MONOTONIC: comparable with the bench's own clock
                    if not stats["count"]:
                        stats["first"] = now
                    stats["count"] += 1
                    stats["last"] = now
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, tp.HOST, port, backlog=1024)
    async with server:
        await server.serve_forever()


def receiver_main(port: int) -> None:
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415

        uvloop.install()
    asyncio.run(_serve_receiver(port))


@dataclass
class Receiver:
    url: str

    def stats(self) -> dict[str, float]:
        answer: dict[str, float] = httpx.get(f"{self.url}/stats", timeout=5.0).json()
        return answer

    def reset(self) -> None:
        httpx.post(f"{self.url}/reset", timeout=5.0)


@contextlib.contextmanager
def receiver_running(workdir: Path) -> Iterator[Receiver]:
    port = tp.free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), "--receiver", str(port)]
    with tp.running("receiver", argv, dict(os.environ), workdir, f"http://{tp.HOST}:{port}/stats"):
        yield Receiver(f"http://{tp.HOST}:{port}")


# --- the server process for the create part (granian's factory target) ----------------------------


def patched_asgi() -> Any:
    """`silver_auth.app:asgi`, with the bench's outbox switch applied before the services are imported:
    `off` makes emit build nothing and add nothing to the transaction."""
    from silver_auth.webhooks import outbox  # noqa: PLC0415

    original = outbox.emit
    if os.environ.get(OUTBOX_SWITCH) == "off":
        from silver_auth.core.ids import new_id  # noqa: PLC0415
        from silver_auth.webhooks.models import WebhookEvent  # noqa: PLC0415

        def skipped(db: Any, kind: Any, data: Any, **where: Any) -> Any:
            return WebhookEvent(id=new_id("msg"), type=str(kind), payload="")

        outbox.emit = skipped
        for module in list(sys.modules.values()):  # any module that bound the original already
            if getattr(module, "emit", None) is original:
                module.emit = skipped  # type: ignore[attr-defined]

    from silver_auth.app import asgi  # noqa: PLC0415

    return asgi()


# --- seeding --------------------------------------------------------------------------------------


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Seeded:
    project_ids: list[str]
    endpoint_ids: list[str]
    secret_keys: list[str]


async def _seed(projects: int, endpoints_per_project: int, receiver_url: str) -> Seeded:
    from sqlalchemy import update  # noqa: PLC0415

    from silver_auth.accounts.service import create_account  # noqa: PLC0415
    from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415
    from silver_auth.db.session import transaction  # noqa: PLC0415
    from silver_auth.orgs.models import Org  # noqa: PLC0415
    from silver_auth.orgs.service import create_org  # noqa: PLC0415
    from silver_auth.runtime import build_runtime, key_service, project_service  # noqa: PLC0415
    from silver_auth.settings import load_settings  # noqa: PLC0415 - after the env is in place
    from silver_auth.webhooks.service import EndpointCreate, EndpointService  # noqa: PLC0415

    runtime = build_runtime(load_settings())
    seeded = Seeded([], [], [])
    try:
        async with transaction(runtime.sessionmaker) as db:
            email = f"bench-{secrets.token_hex(6)}@bench.invalid"
            account = await create_account(db, email, secrets.token_urlsafe(24), actor=CLI_ACTOR)
            org = await create_org(db, "Bench", owner_id=account.id, actor=CLI_ACTOR)
            # The largest plan: room for the endpoints and every end-user the create runs make.
            await db.execute(update(Org).where(Org.id == org.id).values(plan="scale"))
            org.plan = "scale"
            for n in range(projects):
                project = await project_service(runtime, db).create(org.id, f"Bench {n}", actor=CLI_ACTOR)
                seeded.project_ids.append(project.id)
                key = await key_service(runtime, db).create(project, "secret", "test", actor=CLI_ACTOR)
                seeded.secret_keys.append(key.raw)
                endpoints = EndpointService(db, runtime.sealer, runtime.webhook_resolver, runtime.settings)
                for m in range(endpoints_per_project):
                    made = await endpoints.create(
                        project,
                        EndpointCreate(url=f"{receiver_url}/hooks/{n}/{m}", environment="test"),
                        actor=CLI_ACTOR,
                    )
                    seeded.endpoint_ids.append(made.endpoint.id)
        return seeded
    finally:
        await runtime.engine.dispose()
        await runtime.throttle.engine.dispose()


async def _write_events(project_ids: list[str], endpoint_ids: list[str], count: int) -> None:
    from silver_auth.db.session import transaction  # noqa: PLC0415
    from silver_auth.runtime import build_runtime  # noqa: PLC0415
    from silver_auth.settings import load_settings  # noqa: PLC0415
    from silver_auth.webhooks.events import EventType  # noqa: PLC0415
    from silver_auth.webhooks.outbox import emit  # noqa: PLC0415

    per_project = len(endpoint_ids) // len(project_ids)
    runtime = build_runtime(load_settings())
    try:
        for start in range(0, count, PER_TRANSACTION):
            async with transaction(runtime.sessionmaker) as db:
                for n in range(start, min(start + PER_TRANSACTION, count)):
                    endpoint_id = endpoint_ids[n % len(endpoint_ids)]
                    emit(
                        db,
                        EventType.WEBHOOK_TEST,
                        {"endpoint_id": endpoint_id, "message": f"bench event {n}"},
                        project_id=project_ids[(n % len(endpoint_ids)) // per_project],
                        environment="test",
                        endpoint_id=endpoint_id,
                    )
    finally:
        await runtime.engine.dispose()
        await runtime.throttle.engine.dispose()


async def _delivery_counts() -> dict[str, int]:
    from sqlalchemy import func, select  # noqa: PLC0415

    from silver_auth.db.engine import create_engine  # noqa: PLC0415
    from silver_auth.settings import load_settings  # noqa: PLC0415
    from silver_auth.webhooks.models import WebhookDelivery, WebhookEvent  # noqa: PLC0415

    engine = create_engine(load_settings())
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
            )
            counts = {status: int(n) for status, n in rows.all()}
            events = await connection.scalar(select(func.count()).select_from(WebhookEvent))
            counts["events"] = int(events or 0)
            return counts
    finally:
        await engine.dispose()


class Poller:
    """Counts deliveries by status on a loop and engine of its own, cheaply enough to poll often."""

    def __init__(self) -> None:
        from sqlalchemy import func, select  # noqa: PLC0415

        from silver_auth.db.engine import create_engine  # noqa: PLC0415
        from silver_auth.settings import load_settings  # noqa: PLC0415
        from silver_auth.webhooks.models import WebhookDelivery  # noqa: PLC0415

        self._runner = asyncio.Runner()
        self._engine = create_engine(load_settings())
        self._query = select(func.count()).where(WebhookDelivery.status == "succeeded")
        self._pending = select(func.count()).where(WebhookDelivery.status == "pending")

    def _count(self, query: Any) -> int:
        async def work() -> int:
            async with self._engine.connect() as connection:
                return int(await connection.scalar(query) or 0)

        return self._runner.run(work())

    def succeeded(self) -> int:
        return self._count(self._query)

    def pending(self) -> int:
        return self._count(self._pending)

    def close(self) -> None:
        self._runner.run(self._engine.dispose())
        self._runner.close()


# --- databases ------------------------------------------------------------------------------------


def _base_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(tp.SCRUBBED_PREFIXES)}
    env.update(
        {
            "DATABASE_URL": database_url,
            "SILVER_DATA_DIR": str(data_dir),
            "SESSION_SECRET": secrets.token_urlsafe(48),
            "SILVER_KEY_PEPPER": secrets.token_urlsafe(48),
            "SILVER_SEALING_KEYS": "bench1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "SILVER_WEBHOOK_WORKER": "external",
            "SILVER_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


async def _reset_postgres(url: str) -> None:
    import asyncpg  # noqa: PLC0415
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    parsed = make_url(url)
    admin_dsn = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(
        parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:  # the bench's own database: every run starts empty
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


def prepared_database(kind: str, postgres_url: str, workdir: Path) -> str:
    """A migrated, empty database of the kind: a new SQLite file, or the bench's Postgres database."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / f'bench-{secrets.token_hex(4)}.db'}"
    else:
        try:
            asyncio.run(_reset_postgres(postgres_url))
        except OSError as exc:
            raise tp.BenchError(f"Postgres unreachable: {exc}") from None
        url = postgres_url
    return url


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a live process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_argv() -> list[str]:
    return tp.silver_cli("worker")


# --- part 1: worker throughput --------------------------------------------------------------------


@dataclass
class WorkerRun:
    database: str
    endpoints: int
    events: int
    wall_seconds: float
    """From the worker's start (process launch) until every delivery had succeeded."""
    send_seconds: float
    """From the first request at the receiver to the last."""
    received: int
    cpu_seconds: float
    """The worker process's own CPU time (user and system), start to finish."""

    @property
    def per_cpu_second(self) -> float:
        """What one core would sustain: the machine is shared, wall time depends on the neighbours."""
        return self.events / self.cpu_seconds if self.cpu_seconds > 0 else float("nan")

    @property
    def per_second(self) -> float:
        return self.events / self.wall_seconds

    @property
    def send_per_second(self) -> float:
        return (self.received - 1) / self.send_seconds if self.send_seconds > 0 else float("nan")


def worker_run(
    kind: str, endpoints: int, events: int, postgres_url: str, workdir: Path, receiver: Receiver
) -> WorkerRun:
    url = prepared_database(kind, postgres_url, workdir)
    env = _base_env(url, workdir / f"data-{kind}")
    tp.migrate(env, workdir)
    projects = max(
        1, (endpoints + 1) // 2
    )  # the largest plan allows 50 endpoints a project; 2 keeps it plain
    per_project = endpoints // projects
    with environment(env):
        seeded = asyncio.run(_seed(projects, per_project, receiver.url))
        asyncio.run(_write_events(seeded.project_ids, seeded.endpoint_ids, events))
        poller = Poller()
    receiver.reset()
    log_path = workdir / f"worker-{kind}-{endpoints}.log"
    try:
        with log_path.open("wb") as log:
            started = time.monotonic()
            process = subprocess.Popen(
                worker_argv(),
                env=env,
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                deadline = started + max(120.0, events / 20)
                while True:
                    # The receiver's count first (another process, cheap); the database only once every
                    # event has arrived, so polling costs the worker's database next to nothing.
                    done = 0
                    if receiver.stats()["count"] >= events:
                        with environment(env):
                            done = poller.succeeded()
                    if done >= events:
                        finished = time.monotonic()
                        cpu = cpu_seconds(process.pid)
                        break
                    if process.poll() is not None:
                        raise tp.BenchError(
                            f"the worker exited with {process.returncode}: {log_path.read_text()[-800:]}"
                        )
                    if time.monotonic() > deadline:
                        raise tp.BenchError(f"{done} of {events} delivered after {deadline - started:.0f}s")
                    time.sleep(0.02)
            finally:
                tp.stop(process)
    finally:
        with environment(env):
            poller.close()
    stats = receiver.stats()
    return WorkerRun(
        kind, endpoints, events, finished - started, stats["last"] - stats["first"], int(stats["count"]), cpu
    )


# --- part 2: user create with and without the outbox ----------------------------------------------


@dataclass
class CreateRow:
    mode: str
    runs: list[tp.WrkResult] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    backlog_at_stop: list[int] = field(default_factory=list)
    events: int = 0

    @property
    def rps(self) -> float:
        return statistics.median(r.requests_per_second for r in self.runs)

    @property
    def p99(self) -> float:
        return statistics.median(r.latency_p99_ms for r in self.runs)


def create_wrk(
    url: str, script: Path, env: dict[str, str], threads: int, connections: int, seconds: float
) -> tp.WrkResult:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
    argv += ["-s", str(script), url]
    env = {**env, "BENCH_EMAIL_PREFIX": secrets.token_hex(6)}  # every email new, across runs too
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False, env=env)
    if done.returncode != 0:
        raise tp.BenchError(f"wrk failed: {done.stderr.strip()}")
    result = tp.parse_wrk(done.stdout)
    if result.non_2xx:
        told = [line for line in done.stdout.splitlines() if line.startswith("first non-2xx")]
        raise tp.BenchError(
            f"{result.non_2xx} of {result.requests} user creates did not answer 2xx: {told[:2]}"
        )
    return result


@contextlib.contextmanager
def create_server(mode: str, env: dict[str, str], workdir: Path, run_no: int) -> Iterator[str]:
    """The service for one mode, as `silver-auth serve --workers 1 --server granian` starts it (the same
    Granian options), with this bench's factory so the outbox switch applies in the worker process."""
    port = tp.free_port()
    server_env = {
        **env,
        "SILVER_BIND_PORT": str(port),
        OUTBOX_SWITCH: "off" if mode == "off" else "on",
        "SILVER_WEBHOOK_WORKER": "external" if mode == "external" else "in-process",
        "PYTHONPATH": str(tp.BENCH),
    }
    argv = [
        sys.executable,
        "-c",
        "import sys; from granian import Granian; from granian.constants import Interfaces; "
        "Granian('webhook_delivery:patched_asgi', address=sys.argv[1], port=int(sys.argv[2]), workers=1, "
        "interface=Interfaces.ASGI, factory=True, log_access=False).serve()",
        tp.HOST,
        str(port),
    ]
    base = f"http://{tp.HOST}:{port}"
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            tp.running(f"silver-{mode}-{run_no}", argv, server_env, workdir, f"{base}/health")
        )
        if mode == "external":
            worker_env = {**env, "SILVER_WEBHOOK_WORKER": "external"}
            stack.enter_context(
                tp.running(f"worker-{run_no}", worker_argv(), worker_env, workdir, f"{base}/health")
            )
        yield base


def create_part(opts: Options, postgres_url: str, workdir: Path, receiver: Receiver) -> list[CreateRow]:
    url = prepared_database("postgres", postgres_url, workdir)
    env = tp.production_env(url, workdir / "data-create")
    tp.migrate(env, workdir)
    with environment(env):
        seeded = asyncio.run(_seed(len(MODES), 1, receiver.url))
        poller = Poller()
    keys = dict(zip(MODES, seeded.secret_keys, strict=True))
    script = workdir / "create.lua"
    script.write_text(CREATE_SCRIPT)
    rows = {mode: CreateRow(mode) for mode in MODES}
    order = ["off"]
    for round_no in range(opts.rounds):
        order += ["on", "external", "off"] if round_no % 2 == 0 else ["external", "on", "off"]
    results: list[tuple[str, tp.WrkResult]] = []
    try:
        for run_no, mode in enumerate(order):
            with create_server(mode, env, workdir, run_no) as base:
                wrk_env = {
                    **os.environ,
                    "BENCH_AUTHORIZATION": f"Bearer {keys[mode]}",
                }
                check = httpx.post(
                    f"{base}/v1/backend/users",
                    json={"email": f"check-{mode}-{run_no}@bench.invalid"},
                    headers={"Authorization": f"Bearer {keys[mode]}"},
                    timeout=10.0,
                )
                if check.status_code != 201:
                    raise tp.BenchError(f"user create ({mode}): {check.status_code} {check.text[:300]}")
                if opts.warmup:
                    create_wrk(
                        f"{base}/v1/backend/users",
                        script,
                        wrk_env,
                        opts.threads,
                        opts.connections,
                        opts.warmup,
                    )
                result = create_wrk(
                    f"{base}/v1/backend/users", script, wrk_env, opts.threads, opts.connections, opts.seconds
                )
                with environment(env):
                    backlog = poller.pending()
                    # Drain before the next mode's server starts, so it never delivers this one's events.
                    deadline = time.monotonic() + 120
                    while poller.pending() and time.monotonic() < deadline:
                        time.sleep(0.2)
                rows[mode].runs.append(result)
                rows[mode].backlog_at_stop.append(backlog)
                results.append((mode, result))
                print(
                    f"  {mode:9} run {run_no}: {result.requests_per_second:7.0f} creates/s  "
                    f"p99 {result.latency_p99_ms:7.1f} ms  backlog at stop {backlog}",
                    flush=True,
                )
    finally:
        with environment(env):
            counts = asyncio.run(_delivery_counts())
            poller.close()
    rows["on"].events = rows["external"].events = counts.get("events", 0)
    # Each `on`/`external` run over the mean of the `off` runs on either side of it.
    for index, (mode, result) in enumerate(results):
        if mode == "off":
            continue
        before = next(r for m, r in reversed(results[:index]) if m == "off")
        after = next(r for m, r in results[index + 1 :] if m == "off")
        reference = (before.requests_per_second + after.requests_per_second) / 2
        rows[mode].ratios.append(result.requests_per_second / reference)
    print(f"  deliveries at the end: {counts}")
    return list(rows.values())


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Options:
    parts: tuple[str, ...]
    databases: tuple[str, ...]
    events: int
    endpoints: tuple[int, ...]
    worker_rounds: int
    threads: int
    connections: int
    seconds: float
    warmup: float
    rounds: int


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--part", choices=("worker", "create"), action="append", help="default both")
    parser.add_argument("--database", choices=("sqlite", "postgres"), action="append", help="worker part")
    parser.add_argument("--events", type=int, default=2000, help="events per worker run (default 2000)")
    parser.add_argument("--endpoints", type=int, action="append", help="endpoints (default 1 and 8)")
    parser.add_argument("--worker-rounds", type=int, default=2, help="runs per worker case, median kept")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t for the create part")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c for the create part")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per create run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the create modes")
    args = parser.parse_args(argv)
    return Options(
        parts=tuple(args.part or ("worker", "create")),
        databases=tuple(args.database or ("sqlite", "postgres")),
        events=max(100, args.events),
        endpoints=tuple(args.endpoints or (1, 8)),
        worker_rounds=max(1, args.worker_rounds),
        threads=args.threads,
        connections=args.connections,
        seconds=min(max(args.duration, 1.0), 60.0),
        warmup=1.0,
        rounds=max(1, min(args.rounds, 10)),
    )


def worker_part(opts: Options, postgres_url: str, workdir: Path, receiver: Receiver) -> list[WorkerRun]:
    print(f"worker: {opts.events} events pre-written, one `silver-auth worker`, receiver 204")
    runs: list[WorkerRun] = []
    for kind in opts.databases:
        for endpoints in opts.endpoints:
            for _ in range(opts.worker_rounds):
                result = worker_run(kind, endpoints, opts.events, postgres_url, workdir, receiver)
                runs.append(result)
                print(
                    f"  {kind:8} {endpoints:2} endpoint(s): {result.per_second:6.0f}/s from start "
                    f"({result.wall_seconds:5.2f} s), {result.send_per_second:6.0f}/s first to "
                    f"last send, {result.per_cpu_second:6.0f} per CPU second, {result.received} requests",
                    flush=True,
                )
    print()
    print("| database | endpoints | deliveries/s from worker start | first to last send | per worker CPU s |")
    print("|----------|----------:|-------------------------------:|-------------------:|-----------------:|")
    for kind in opts.databases:
        for endpoints in opts.endpoints:
            mine = [r for r in runs if r.database == kind and r.endpoints == endpoints]
            wall = statistics.median(r.per_second for r in mine)
            sending = statistics.median(r.send_per_second for r in mine)
            per_cpu = statistics.median(r.per_cpu_second for r in mine)
            print(f"| {kind:8} | {endpoints:9} | {wall:30.0f} | {sending:18.0f} | {per_cpu:16.0f} |")
    return runs


def run(opts: Options) -> int:
    postgres_url = os.environ.get("BENCH_WEBHOOK_DATABASE_URL", DEFAULT_DATABASE_URL)
    info = tp.machine()
    print(f"machine: {info['cpu']} · {info['cores']} cores · Python {info['python']} · {info['wrk']}")
    report: dict[str, Any] = {"machine": info, "options": asdict(opts)}
    with tempfile.TemporaryDirectory(prefix="silver-bench-hooks-") as tmp:
        workdir = Path(tmp)
        with receiver_running(workdir) as receiver:
            if "worker" in opts.parts:
                runs = worker_part(opts, postgres_url, workdir, receiver)
                report["worker"] = [
                    {**asdict(r), "per_second": r.per_second, "per_cpu_second": r.per_cpu_second}
                    for r in runs
                ]
            if "create" in opts.parts:
                print(
                    f"\ncreate: POST /v1/backend/users, wrk -t{opts.threads} -c{opts.connections} "
                    f"-d{opts.seconds:g}s, {opts.rounds} round(s); granian, SILVER_ENV=production on "
                    f"{urlsplit(postgres_url).path[1:]!r}"
                )
                rows = create_part(opts, postgres_url, workdir, receiver)
                print()
                print("| outbox   | creates/s (median) | p99 ms | vs off (median, range) |")
                print("|----------|-------------------:|-------:|------------------------|")
                for row in rows:
                    spread = f" ({min(row.ratios):.2f}-{max(row.ratios):.2f})" if row.ratios else ""
                    ratio = f"{statistics.median(row.ratios):.2f}x{spread}" if row.ratios else "1.00x"
                    print(f"| {row.mode:8} | {row.rps:18.0f} | {row.p99:6.1f} | {ratio:22} |")
                report["create"] = {"rows": [asdict(r) for r in rows]}
    tp.RESULTS.mkdir(exist_ok=True)
    (tp.RESULTS / "webhook_delivery.json").write_text(json.dumps(report, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--receiver":
        receiver_main(int(sys.argv[2]))
        return 0
    opts = parse_args(argv)
    try:
        return run(opts)
    except (tp.BenchError, subprocess.TimeoutExpired) as exc:
        print(f"bench error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
