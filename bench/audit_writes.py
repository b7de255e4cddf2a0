"""Audited writes per second at 1, 8 and 32 concurrent writers on Postgres, before and after sealing.

Each writer repeats one realistic audited write: rename its own project (a small domain row update) and
record `project.updated`, in one transaction, committed. Two schemes run side by side, in the same run,
alternating:

- chain-head (before): the old `record()`, inline: the single chain-head row is bumped in the writer's
  transaction, so its row lock is held until that transaction commits and writers queue on it;
- sealed (after): today's `record()`, no shared lock; an in-process sealer per writer process, on its
  own connection and woken by commits as in the app, links committed events into the chain.

Writers are spread over client processes (as many as CPUs, like app workers), each with its own pool.

While writers run, a sampler reads `pg_stat_activity` for the writers' backends every few milliseconds:
the share of samples waiting on a lock (the chain head), on WAL/IO, running, or waiting for the client
shows what bounds each run. CPU use of this process and of the whole machine is printed too. After each
sealed run the chain is sealed to the end and verified; after each chain-head run its head must count
every event. The acceptance bar: sealed, 32 writers reach at least 3x one writer's throughput.

    .venv/bin/python bench/audit_writes.py                 # 1, 8, 32 writers; 2 rounds of 5 s each
    .venv/bin/python bench/audit_writes.py --quick         # 1 round of 2 s
    .venv/bin/python bench/audit_writes.py --hold-ms 20    # each transaction also waits 20 ms (F5)
    BENCH_AUDIT_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench_audit ...

It creates the scratch database if missing and empties it each run (never a database named `test`).
Exit 0: the bar holds; 1: it does not; 2: the bench could not run. A benchmark, not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from silver_auth.audit.chain import GENESIS_HASH, HEAD_ID, event_hash, seal_pending, verify_chain
from silver_auth.audit.models import AuditChainHead, AuditEvent
from silver_auth.audit.sealer import sealing
from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.ids import new_id
from silver_auth.core.redaction import redact
from silver_auth.db.engine import create_sessionmaker
from silver_auth.db.migrate import upgrade
from silver_auth.db.session import transaction
from silver_auth.orgs.models import Org
from silver_auth.projects.models import Project

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/bench_audit"
APP_NAME = "silver-audit-bench"
SEALER_NAME = "silver-audit-bench-sealer"
SCHEMES = ("chain-head", "sealed")
MIN_SCALING = 3.0
SAMPLE_EVERY = 0.01
Sessionmaker = async_sessionmaker[AsyncSession]


class BenchError(Exception):
    """The bench could not run (not a slow result)."""


# --- the two schemes -----------------------------------------------------------------------------------


async def record_with_chain_head(
    db: AsyncSession, action: AuditAction, *, actor: Actor, org_id: str, project_id: str, target: str
) -> None:
    """The scheme before sealing, as `record()` was: bump the one head row, then append the event with
    its chain fields. The head's row lock stays with this transaction until it commits."""
    bumped = await db.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(seq=AuditChainHead.seq + 1)
        .returning(AuditChainHead.seq, AuditChainHead.hash)
    )
    seq, prev_hash = bumped.one()
    event = AuditEvent(
        seq=seq,
        id=new_id("evt"),
        at=clock.now(),
        org_id=org_id,
        project_id=project_id,
        actor=actor.id,
        actor_ip=actor.ip,
        action=str(action),
        target=target,
        metadata_=redact({"name": target}),
        prev_hash=prev_hash,
    )
    event.hash = event_hash(event)
    db.add(event)
    await db.execute(update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(hash=event.hash))


async def audited_write(
    sessionmaker: Sessionmaker, scheme: str, project: tuple[str, str], n: int, hold: float
) -> None:
    org_id, project_id = project
    actor = Actor("acc_bench", "127.0.0.1")
    async with transaction(sessionmaker) as db:
        name = f"Project {n}"
        await db.execute(
            update(Project).where(Project.id == project_id).values(name=name, updated_at=clock.now())
        )
        if scheme == "sealed":
            await record(
                db,
                AuditAction.PROJECT_UPDATED,
                actor=actor,
                org_id=org_id,
                project_id=project_id,
                target=project_id,
                metadata={"name": name},
            )
        else:
            await record_with_chain_head(
                db,
                AuditAction.PROJECT_UPDATED,
                actor=actor,
                org_id=org_id,
                project_id=project_id,
                target=project_id,
            )
        if hold:
            await asyncio.sleep(hold)  # work inside the transaction, e.g. a call to Authentik


# --- setup -------------------------------------------------------------------------------------------


async def prepare(url: str, writers: int) -> list[tuple[str, str]]:
    """Create the scratch database if missing, empty it, migrate it, and give each writer a project."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise BenchError("the audit bench needs Postgres (SQLite has one writer at a time by design)")
    if parsed.database in (None, "", "test", "postgres", "template0", "template1"):
        raise BenchError(
            f"refusing to use database {parsed.database!r}: give the bench its own scratch database"
        )
    plain = parsed.set(drivername="postgresql")
    try:
        admin = await asyncpg.connect(plain.set(database="postgres").render_as_string(hide_password=False))
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(f"Postgres unreachable at {parsed.host}:{parsed.port}: {exc}") from None
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database):
            await admin.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.close()
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await upgrade(engine)
        now = clock.now()
        projects = [(new_id("org"), new_id("prj")) for _ in range(writers)]
        async with transaction(create_sessionmaker(engine)) as db:
            for org_id, project_id in projects:
                db.add(Org(id=org_id, name="Bench", plan="scale", created_at=now))
                db.add(Project(id=project_id, org_id=org_id, name="Bench", created_at=now, updated_at=now))
    finally:
        await engine.dispose()
    return projects


async def reset_log(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE audit_events RESTART IDENTITY"))
        await connection.execute(
            update(AuditChainHead).where(AuditChainHead.id == HEAD_ID).values(seq=0, hash=GENESIS_HASH)
        )


# --- measuring ---------------------------------------------------------------------------------------


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat (0, 0 where there is none)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def classify(state: str | None, wait_type: str | None, wait: str | None) -> str:
    if state != "active":
        return "client"  # idle in transaction: the backend waits for this process
    if wait_type == "Lock":
        return "lock"
    if wait_type in ("IO", "LWLock", "IPC"):
        return "wal/io"
    if wait_type is None:
        return "running"
    return "other"


async def sample(url: str, stop: asyncio.Event, seen: Counter[str]) -> None:
    """What the writers' backends are doing, every SAMPLE_EVERY seconds, until `stop`."""
    connection = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        while not stop.is_set():
            rows = await connection.fetch(
                "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                "WHERE application_name = $1 AND backend_type = 'client backend'",
                APP_NAME,
            )
            for row in rows:
                seen[classify(row["state"], row["wait_event_type"], row["wait_event"])] += 1
            await asyncio.sleep(SAMPLE_EVERY)
    finally:
        await connection.close()


@dataclass
class Run:
    scheme: str
    writers: int
    processes: int
    writes: int
    seconds: float
    waits: Counter[str]
    client_cpu: float
    """The writer processes' CPU time over wall time, in cores (1.0 = one core busy)."""
    machine_cpu: float
    """Share of all the machine's CPU time that was busy (every process, Postgres included)."""
    backlog: int = 0
    """Sealed scheme: events committed but not sealed yet when the writers stopped."""
    checked: str = ""

    @property
    def rate(self) -> float:
        return self.writes / self.seconds

    def share(self, kind: str) -> float:
        total = sum(self.waits.values())
        return self.waits[kind] / total if total else 0.0


def writer_process(
    pipe: Connection, url: str, scheme: str, projects: list[tuple[str, str]], duration: float, hold: float
) -> None:
    """One client process, as one app worker: its own pool, its own in-process sealer (sealed)."""
    try:
        import uvloop  # noqa: PLC0415 - the loop uvicorn and granian run the app on

        uvloop.run(writers(pipe, url, scheme, projects, duration, hold))
    except ImportError:
        asyncio.run(writers(pipe, url, scheme, projects, duration, hold))


async def writers(
    pipe: Connection, url: str, scheme: str, projects: list[tuple[str, str]], duration: float, hold: float
) -> None:
    engine = create_async_engine(
        url,
        pool_size=len(projects),
        max_overflow=2,
        connect_args={"server_settings": {"application_name": APP_NAME}},
    )
    sessionmaker = create_sessionmaker(engine)
    # As in the app (audit.sealer.app_sealer): the sealer on an engine of its own, woken by commits.
    sealer_engine = create_async_engine(
        url, pool_size=1, connect_args={"server_settings": {"application_name": SEALER_NAME}}
    )
    counts = [0] * len(projects)

    async def ping() -> None:
        async with sessionmaker() as db:
            await db.execute(select(1))

    async def writer(i: int, deadline: float) -> None:
        while time.time() < deadline:
            await audited_write(sessionmaker, scheme, projects[i], counts[i], hold)
            counts[i] += 1

    try:
        await asyncio.gather(*(ping() for _ in projects))  # every connection open before the clock starts
        pipe.send("ready")
        start = pipe.recv()
        sealer = sealing(create_sessionmaker(sealer_engine), wake_on=engine)
        async with sealer if scheme == "sealed" else contextlib.nullcontext():
            await asyncio.sleep(max(0.0, start - time.time()))
            cpu0, began = time.process_time(), time.time()
            await asyncio.gather(*(writer(i, start + duration) for i in range(len(projects))))
            pipe.send((sum(counts), time.time() - began, time.process_time() - cpu0))
        # Leaving `sealing` sealed the rest, as the app does at shutdown.
    finally:
        await engine.dispose()
        await sealer_engine.dispose()
    pipe.send("done")


async def receive(pipe: Connection) -> Any:
    return await asyncio.to_thread(pipe.recv)


async def measure(
    url: str, scheme: str, projects: list[tuple[str, str]], processes: int, duration: float, hold: float
) -> Run:
    engine = create_async_engine(url)
    sessionmaker = create_sessionmaker(engine)
    context = multiprocessing.get_context("spawn")
    workers = []
    try:
        await reset_log(engine)
        for part in range(processes):
            ours, theirs = context.Pipe()
            group = projects[part::processes]
            process = context.Process(
                target=writer_process, args=(theirs, url, scheme, group, duration, hold), daemon=True
            )
            process.start()
            workers.append((process, ours))
        for _, pipe in workers:
            if await receive(pipe) != "ready":
                raise BenchError("a writer process did not start")
        start = time.time() + 0.3
        for _, pipe in workers:
            pipe.send(start)
        waits: Counter[str] = Counter()
        stop = asyncio.Event()
        await asyncio.sleep(start - time.time())
        sampler = asyncio.create_task(sample(url, stop, waits))
        busy0, total0 = machine_cpu()
        await asyncio.sleep(duration)
        busy1, total1 = machine_cpu()
        stop.set()
        await sampler
        backlog = await unsealed(sessionmaker) if scheme == "sealed" else 0
        reports = [await receive(pipe) for _, pipe in workers]
        for _, pipe in workers:
            if await receive(pipe) != "done":
                raise BenchError("a writer process did not finish")
        writes = sum(r[0] for r in reports)
        seconds = max(r[1] for r in reports)
        checked = await check(sessionmaker, scheme, writes)
        machine = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
        cpu = sum(r[2] for r in reports) / seconds
        return Run(scheme, len(projects), processes, writes, seconds, waits, cpu, machine, backlog, checked)
    finally:
        for process, _ in workers:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        await engine.dispose()


async def check(sessionmaker: Sessionmaker, scheme: str, writes: int) -> str:
    """The log holds every write, and its chain is whole (sealed) or counted by the head (chain-head)."""
    async with sessionmaker() as db:
        if scheme == "sealed":
            report = await verify_chain(db)
            if report.broken or report.unsealed or report.checked != writes:
                raise BenchError(f"the sealed chain does not verify after the run: {report}")
            return f"verified {report.checked}"
        head = await db.get(AuditChainHead, HEAD_ID)
        stored = await db.scalar(select(func.count()).select_from(AuditEvent))
    if head is None or head.seq != writes or stored != writes:
        raise BenchError("the chain-head run lost or forked events")
    return f"head at {head.seq}"


async def unsealed(sessionmaker: Sessionmaker) -> int:
    async with sessionmaker() as db:
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None))
        return int(await db.scalar(query) or 0)


async def sealing_alone(url: str, projects: list[tuple[str, str]], events: int = 5000) -> tuple[float, float]:
    """What sealing costs by itself: `events` committed and unsealed, then one seal_pending().
    Returns (events per second, CPU microseconds per event in this process)."""
    engine = create_async_engine(url)
    sessionmaker = create_sessionmaker(engine)
    try:
        await reset_log(engine)
        org_id, project_id = projects[0]
        for start in range(0, events, 500):
            async with transaction(sessionmaker) as db:
                for n in range(start, min(events, start + 500)):
                    await record(
                        db,
                        AuditAction.PROJECT_UPDATED,
                        actor=Actor("acc_bench"),
                        org_id=org_id,
                        project_id=project_id,
                        target=str(n),
                    )
        cpu0, began = time.process_time(), time.monotonic()
        sealed = await seal_pending(sessionmaker)
        seconds, cpu = time.monotonic() - began, time.process_time() - cpu0
        if sealed != events:
            raise BenchError(f"sealed {sealed} of {events} events")
        return sealed / seconds, cpu / sealed * 1e6
    finally:
        await engine.dispose()


# --- report ------------------------------------------------------------------------------------------


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


def table(results: dict[tuple[str, int], list[Run]], writer_counts: list[int]) -> tuple[str, float]:
    lines = [
        "| writers | before: chain head (w/s) | after: sealed (w/s) | after / before "
        "| before: lock waits | after: lock waits | after: client CPU | after: machine CPU "
        "| after: backlog at stop |",
        "|--------:|-------------------------:|--------------------:|---------------:"
        "|-------------------:|------------------:|------------------:|-------------------:"
        "|----------------------:|",
    ]
    base = {
        scheme: statistics.median(r.rate for r in results[scheme, writer_counts[0]]) for scheme in SCHEMES
    }
    for writers in writer_counts:
        before, after = (statistics.median(r.rate for r in results[s, writers]) for s in SCHEMES)
        mb, ma = median_run(results["chain-head", writers]), median_run(results["sealed", writers])
        lines.append(
            f"| {writers:>7} | {before:>10.0f} ({before / base['chain-head']:.2f}x) "
            f"| {after:>9.0f} ({after / base['sealed']:.2f}x) | {after / before:>13.2f}x "
            f"| {mb.share('lock'):>17.0%} | {ma.share('lock'):>16.0%} | {ma.client_cpu:>10.2f} cores "
            f"| {ma.machine_cpu:>17.0%} | {ma.backlog:>21} |"
        )
    top = writer_counts[-1]
    scaling = statistics.median(r.rate for r in results["sealed", top]) / base["sealed"]
    return "\n".join(lines), scaling


def profile(results: dict[tuple[str, int], list[Run]], writer_counts: list[int]) -> str:
    kinds = ("lock", "wal/io", "running", "client", "other")
    lines = [
        "| scheme | writers | " + " | ".join(kinds) + " |",
        "|--------|--------:|" + "|".join("-" * (len(k) + 2) for k in kinds) + "|",
    ]
    for writers in writer_counts:
        for scheme in SCHEMES:
            run = median_run(results[scheme, writers])
            cells = " | ".join(f"{run.share(k):>{len(k)}.0%}" for k in kinds)
            lines.append(f"| {scheme} | {writers} | {cells} |")
    return "\n".join(lines)


async def bench(args: argparse.Namespace) -> int:
    writer_counts = sorted({int(x) for x in args.writers.split(",")})
    projects = await prepare(args.database_url, max(writer_counts))
    hold = args.hold_ms / 1000
    results: dict[tuple[str, int], list[Run]] = {}
    for round_no in range(1, args.rounds + 1):
        for writers in writer_counts:
            # Alternate the order each round, so load that comes and goes hits both schemes.
            order = SCHEMES if round_no % 2 else tuple(reversed(SCHEMES))
            for scheme in order:
                processes = args.processes or min(writers, os.cpu_count() or 1)
                run = await measure(
                    args.database_url, scheme, projects[:writers], processes, args.duration, hold
                )
                results.setdefault((scheme, writers), []).append(run)
                print(
                    f"round {round_no} {scheme:>10} {writers:>2} writers in {processes} process(es): "
                    f"{run.rate:7.0f} w/s ({run.writes} in {run.seconds:.1f} s; "
                    f"lock waits {run.share('lock'):.0%}; client CPU {run.client_cpu:.2f} cores; "
                    f"machine CPU {run.machine_cpu:.0%}; {run.checked})",
                    flush=True,
                )
    summary, scaling = table(results, writer_counts)
    print()
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{args.rounds} round(s) of {args.duration:g} s; hold {args.hold_ms:g} ms; medians"
    )
    print(summary)
    print()
    print("Where the writers' backends were (share of pg_stat_activity samples, median run):")
    print(profile(results, writer_counts))
    print()
    rate, cpu = await sealing_alone(args.database_url, projects)
    print(f"sealing alone: {rate:.0f} events/s, {cpu:.0f} µs of this process's CPU per event")
    print()
    verdict = scaling >= MIN_SCALING
    print(
        f"sealed: {writer_counts[-1]} writers reach {scaling:.2f}x one writer "
        f"(bar {MIN_SCALING:g}x): {'PASS' if verdict else 'FAIL'}"
    )
    return 0 if verdict else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_AUDIT_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--writers", default="1,8,32", help="comma-separated writer counts (default 1,8,32)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (default 5)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds per scheme and writer count (default 2)"
    )
    parser.add_argument("--hold-ms", type=float, default=0.0, help="wait inside each transaction (default 0)")
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="writer processes, as app workers (default: as many as CPUs, at most one per writer)",
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 2.0
    try:
        sys.exit(asyncio.run(bench(args)))
    except BenchError as exc:
        print(f"audit bench cannot run: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
