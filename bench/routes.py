"""Every route a customer's traffic hits, against a bare Starlette endpoint (and better-auth), under wrk.

    make bench                                   # the full run (~12 min): table, peer, two workers, memory
    .venv/bin/python bench/routes.py --quick     # 1 round of 3 s, no memory pass (~3 min)
    .venv/bin/python bench/routes.py --no-peer --route backend-users --route jwks

The service runs as production runs it (`SILVER_ENV=production`, Postgres, Redis for the limiter,
granian, one worker; `silver-auth serve`'s checks and options) through a factory that lifts the plans'
backend rate out of wrk's reach: the limiter still counts every request and refuses none. wrk runs in
its own process on the same machine. Rounds are interleaved: baseline, three routes, baseline, … so each
route is divided by the mean of the baseline runs on either side of it; the table shows the median over
rounds and the range. Then the database-backed routes are run again on two workers (their ratio to one
worker), and one worker's RSS is read after 100,000 and after 200,000 requests of a mix of routes.
With the peer (default, needs Node), better-auth's comparable checks run in the same rounds.

Writes bench/results/routes.json. Exits 2 when it cannot run; otherwise 0 (targets are reported, not
enforced: the machine is shared and its load is in the output).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib.util
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

import throughput as tp  # bench/throughput.py: settings, servers, wrk output

RESULTS = tp.RESULTS / "routes.json"
REDIRECT = "https://app.bench.invalid/callback"
ORIGIN = "https://app.bench.invalid"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
AUDIT_EVENTS = 1_000
MEMORY_STEP = 100_000
TARGET_DB_RATIO = 0.1
TARGET_VERIFY_RATIO = 0.3
TARGET_TWO_WORKERS = 1.7
TARGET_RSS_GROWTH = 0.05
SIGN_IN_CONNECTIONS = 8


def bench_asgi() -> Any:
    """`silver_auth.app:asgi` with every plan's backend rate out of wrk's reach (bench/ratelimit.py does
    the same): one key sends everything here, which no plan allows."""
    from silver_auth.plans import service as plans  # noqa: PLC0415

    for plan_id, plan in list(plans.PLANS.items()):
        plans.PLANS[plan_id] = dataclasses.replace(plan, requests_per_minute=10**9)
    from silver_auth import app  # noqa: PLC0415

    return app.asgi()


def server_argv(workers: int) -> list[str]:
    """What `silver-auth serve --workers N` runs (its production check, its shared metrics for several
    workers, granian with its options), with this file's factory."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]); "
        "from granian import Granian; from granian.constants import Interfaces; "
        "from silver_auth.cli import server; from silver_auth.settings import load_settings; "
        "settings = load_settings(); server._check_production(settings); "
        "workers = int(sys.argv[1]);\n"
        "with server._shared_metrics(settings, workers):\n"
        "    Granian('routes:bench_asgi', address=settings.bind_host, port=settings.bind_port, "
        "workers=workers, interface=Interfaces.ASGI, factory=True, log_access=False).serve()"
    )
    return [sys.executable, "-c", code, str(workers), str(tp.BENCH)]


# --- what is measured ------------------------------------------------------------------------------


@dataclass
class Route:
    name: str
    path: str
    """Path and query, appended to the server's address."""
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    body: str | None = None
    bodies: list[str] | None = None
    """One body per request, each used once (single-use codes and refresh tokens), in order."""
    header_values: tuple[str, list[str]] | None = None
    """A header whose value rotates over the list, request by request (the peer's API keys)."""
    expect: str = ""
    kind: str = "db"
    """cached (no query when warm), db (reads or writes the database), hash (a password hash), peer."""
    base: str = ""
    """Address of the server that answers it; empty: the service."""
    connections: int | None = None
    """wrk -c for this route (a password sign-in queues behind its hash threads); None: the default."""

    def url(self, silver: str) -> str:
        return (self.base or silver) + self.path


LUA = """
local method, path, body = %(method)s, %(path)s, %(body)s
local headers = %(headers)s
local rotate_header = %(rotate_header)s
local values = {}
local counter, step = 0, 1
local created = 0

function setup(thread)
  thread:set("first", created)
  created = created + 1
end

function init(args)
  step = %(threads)d
  counter = first or 0
  %(load)s
end

function request()
  local value = values[(counter %% #values) + 1]
  counter = counter + step
  if rotate_header then
    headers[rotate_header] = value
    return wrk.format(method, path, headers, body)
  end
  if #values > 0 then
    return wrk.format(method, path, headers, value)
  end
  return wrk.format(method, path, headers, body)
end
"""


def _lua_string(value: str | None) -> str:
    return "nil" if value is None else json.dumps(value)  # a JSON string is a valid Lua string here


def lua_script(route: Route, workdir: Path, threads: int) -> Path | None:
    """A wrk script for a route that is not a plain GET: its method, body, and the values it rotates."""
    if route.method == "GET" and not route.bodies and not route.header_values:
        return None
    values: list[str] = route.bodies or (route.header_values[1] if route.header_values else [])
    load = ""
    if values:
        values_file = workdir / f"{route.name}.values"
        values_file.write_text("".join(v.replace("\n", " ") + "\n" for v in values))
        load = f"for line in io.lines({json.dumps(str(values_file))}) do values[#values + 1] = line end"
    headers = "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in route.headers.items()) + "}"
    script = workdir / f"{route.name}.lua"
    script.write_text(
        LUA
        % {
            "method": json.dumps(route.method),
            "path": json.dumps(route.path),
            "body": _lua_string(route.body),
            "headers": headers,
            "rotate_header": _lua_string(route.header_values[0] if route.header_values else None),
            "threads": threads,
            "load": load,
        }
    )
    return script


def run_wrk(route: Route, silver: str, workdir: Path, opts: Options, seconds: float) -> tp.WrkResult:
    connections = route.connections or opts.connections
    argv = ["wrk", f"-t{opts.threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    argv += ["--timeout", "30s" if route.connections else "10s"]
    script = lua_script(route, workdir, opts.threads)
    if script is not None:
        argv += ["-s", str(script)]
    else:
        for name, value in route.headers.items():
            argv += ["-H", f"{name}: {value}"]
    argv.append(route.url(silver))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise tp.BenchError(f"wrk failed on {route.name}: {done.stderr.strip()}")
    return tp.parse_wrk(done.stdout)


def check(route: Route, silver: str) -> None:
    """One request that must succeed with the expected body (a fast error page is never measured). A
    route with single-use bodies is checked with a body of its own, not one of the measured ones."""
    if route.bodies:
        return  # single-use values: a warm-up run with its own values checks them (non-2xx counted)
    headers = dict(route.headers)
    if route.header_values:
        headers[route.header_values[0]] = route.header_values[1][0]
    answer = httpx.request(route.method, route.url(silver), headers=headers, content=route.body, timeout=30.0)
    if not 200 <= answer.status_code < 300 or route.expect not in answer.text:
        raise tp.BenchError(f"{route.name}: {answer.status_code} {answer.text[:300]}")


# --- seeding ---------------------------------------------------------------------------------------


@dataclass
class Seeded:
    account_email: str
    account_password: str
    account_id: str
    org_id: str
    project_id: str
    publishable: str
    secret: str
    user_id: str
    user_email: str
    user_password: str
    session_jwt: str
    session_id: str


class Seeder:
    """The bench's data, made through the services in this process (the server's env in os.environ)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.seeded: Seeded | None = None

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def run(self, work: Callable[[Any], Any]) -> Any:
        with self.environment():
            return asyncio.run(self._with_runtime(work))

    async def _with_runtime(self, work: Callable[[Any], Any]) -> Any:
        from silver_auth.runtime import build_runtime  # noqa: PLC0415
        from silver_auth.settings import load_settings  # noqa: PLC0415 - after the env is in place

        runtime = build_runtime(load_settings())
        try:
            return await work(runtime)
        finally:
            await runtime.engine.dispose()
            await runtime.throttle.engine.dispose()

    def seed(self) -> Seeded:
        self.seeded = self.run(_seed)
        return self.seeded

    def codes(self, count: int) -> list[str]:
        assert self.seeded is not None
        return list(self.run(lambda runtime: _codes(runtime, self.seeded, count)))

    def refresh_tokens(self, count: int) -> list[str]:
        assert self.seeded is not None
        return list(self.run(lambda runtime: _refresh_tokens(runtime, self.seeded, count)))


async def _seed(runtime: Any) -> Seeded:
    from silver_auth.accounts.service import create_account  # noqa: PLC0415
    from silver_auth.audit.service import CLI_ACTOR, Actor, AuditAction, record  # noqa: PLC0415
    from silver_auth.db.session import transaction  # noqa: PLC0415
    from silver_auth.endusers import grants, sessions  # noqa: PLC0415
    from silver_auth.endusers.service import ProjectEnvironment, create_user  # noqa: PLC0415
    from silver_auth.orgs.service import create_org  # noqa: PLC0415
    from silver_auth.runtime import key_service, project_service  # noqa: PLC0415

    settings = runtime.settings
    email, password = f"bench-{secrets.token_hex(6)}@bench.invalid", secrets.token_urlsafe(24)
    user_email, user_password = f"user-{secrets.token_hex(6)}@bench.invalid", secrets.token_urlsafe(24)
    async with transaction(runtime.sessionmaker) as db:
        account = await create_account(db, email, password, actor=CLI_ACTOR)
        org = await create_org(db, "Bench", owner_id=account.id, actor=CLI_ACTOR)
        projects = project_service(runtime, db)
        project = await projects.create(org.id, "Bench", actor=CLI_ACTOR)
        project = await projects.add_redirect_url(project, REDIRECT, actor=CLI_ACTOR)
        project = await projects.add_origin(project, ORIGIN, actor=CLI_ACTOR)
        keys = key_service(runtime, db)
        publishable = await keys.create(project, "publishable", "live", actor=CLI_ACTOR)
        secret = await keys.create(project, "secret", "live", actor=CLI_ACTOR)
        scope = ProjectEnvironment(project.id, "live")
        user = await create_user(db, scope, user_email, user_password, actor=CLI_ACTOR, via="backend")
        for n in range(50):  # a full first page of users
            await create_user(
                db, scope, f"u{n}-{secrets.token_hex(4)}@bench.invalid", None, actor=CLI_ACTOR, via="backend"
            )
        started = await sessions.start_end_user_session(
            db, settings, user, mfa=False, ip=None, user_agent="bench", via="hosted-page"
        )
        code = await sessions.issue_code(db, settings, started.session, REDIRECT)
        actor = Actor(account.id)
        for n in range(AUDIT_EVENTS):  # pages of the org's log, by the owner and by the CLI
            await record(
                db,
                AuditAction.PROJECT_UPDATED,
                actor=actor if n % 2 else CLI_ACTOR,
                org_id=org.id,
                project_id=project.id,
                target=project.id,
                metadata={"n": n},
            )
    async with transaction(runtime.sessionmaker) as db:
        issued = await grants.exchange_code(
            db, runtime.sessionmaker, settings, scope, grants.CodeRedemption(code, REDIRECT, None, True)
        )
    return Seeded(
        email,
        password,
        account.id,
        org.id,
        project.id,
        publishable.raw,
        secret.raw,
        user.id,
        user_email,
        user_password,
        issued.jwt,
        issued.session.id,
    )


async def _signed_in_session(db: Any, seeded: Seeded) -> Any:
    from silver_auth.endusers.models import EndUserSession  # noqa: PLC0415

    return await db.get(EndUserSession, seeded.session_id)


async def _codes(runtime: Any, seeded: Seeded, count: int) -> list[str]:
    """Single-use codes of the seeded user's session, as the hosted pages issue them."""
    from silver_auth.db.session import transaction  # noqa: PLC0415
    from silver_auth.endusers import sessions  # noqa: PLC0415

    async with transaction(runtime.sessionmaker) as db:
        session = await _signed_in_session(db, seeded)
        return [await sessions.issue_code(db, runtime.settings, session, REDIRECT) for _ in range(count)]


async def _refresh_tokens(runtime: Any, seeded: Seeded, count: int) -> list[str]:
    """Sessions of the seeded user, each with a current session token (what a code exchange leaves)."""
    from silver_auth.core.crypto import token_hash  # noqa: PLC0415
    from silver_auth.db.session import transaction  # noqa: PLC0415
    from silver_auth.endusers import sessions  # noqa: PLC0415

    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    async with transaction(runtime.sessionmaker) as db:
        signed_in = await _signed_in_session(db, seeded)
        for token in tokens:
            sessions.single_sign_on_session(db, signed_in).refresh_hash = token_hash(token)
    return tokens


def console_cookie(silver: str, seeded: Seeded, cookie_name: str) -> str:
    """Sign the account in through the API; the Cookie header of its console session."""
    answer = httpx.post(
        f"{silver}/console/api/sign-in",
        json={"email": seeded.account_email, "password": seeded.account_password},
        timeout=30.0,
    )
    if answer.status_code != 200 or cookie_name not in answer.cookies:
        raise tp.BenchError(f"console sign-in: {answer.status_code} {answer.text[:300]}")
    return f"{cookie_name}={answer.cookies[cookie_name]}"


def routes(seeded: Seeded, cookie: str) -> list[Route]:
    backend = {"Authorization": f"Bearer {seeded.secret}"}
    publishable = {"X-Publishable-Key": seeded.publishable}
    console = {"Cookie": cookie}
    pages = f"/p/{seeded.project_id}/live"
    json_type = {"Content-Type": "application/json"}
    org = seeded.org_id
    return [
        Route("health", "/health", expect='"status":"ok"'),
        Route("client-config", "/v1/client-config", publishable, expect='"sign_in_methods"', kind="cached"),
        Route(
            "backend-project", "/v1/backend/project", backend, expect='"environment":"live"', kind="cached"
        ),
        Route(
            "sessions-verify",
            "/v1/backend/sessions/verify",
            {**backend, **json_type},
            method="POST",
            body=json.dumps({"token": seeded.session_jwt}),
            expect='"valid":true',
        ),
        Route("jwks", f"/v1/projects/{seeded.project_id}/jwks.json", expect='"keys"'),
        Route("backend-users", "/v1/backend/users", backend, expect='"items"'),
        Route("backend-user", f"/v1/backend/users/{seeded.user_id}", backend, expect=seeded.user_id),
        Route("console-me", "/console/api/me", console, expect='"csrf_token"'),
        Route("console-projects", f"/console/api/orgs/{org}/projects", console, expect=seeded.project_id),
        Route("audit-page", f"/console/api/orgs/{org}/audit", console, expect='"items"'),
        Route(
            "audit-by-actor",
            f"/console/api/orgs/{org}/audit?actor={quote(seeded.account_id)}",
            console,
            expect='"items"',
        ),
        Route(
            "hosted-sign-in",
            f"{pages}/sign-in?redirect_url={quote(REDIRECT, safe='')}",
            expect="<form",
        ),
        Route(
            "console-sign-in",
            "/console/api/sign-in",
            json_type,
            method="POST",
            body=json.dumps({"email": seeded.account_email, "password": seeded.account_password}),
            expect='"csrf_token"',
            kind="hash",
            connections=SIGN_IN_CONNECTIONS,
        ),
        Route("code-exchange", "/v1/client/sessions/exchange", {**backend, **json_type}, method="POST"),
        Route("refresh", "/v1/client/sessions/refresh", {**backend, **json_type}, method="POST"),
    ]


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class Options:
    threads: int
    connections: int
    seconds: float
    warmup: float
    rounds: int
    only: tuple[str, ...]
    peer: bool
    workers_pass: bool
    memory_pass: bool


@dataclass
class Row(tp.MedianOfRounds):
    name: str
    kind: str
    rounds: list[tp.WrkResult] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(r.latency_p50_ms for r in self.rounds)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")

    @property
    def non_2xx(self) -> int:
        return sum(r.non_2xx for r in self.rounds)


def load_average() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


class Bench:
    def __init__(self, opts: Options, workdir: Path, env: dict[str, str], seeder: Seeder) -> None:
        self.opts, self.workdir, self.env, self.seeder = opts, workdir, env, seeder
        self.rows: dict[str, Row] = {}

    def fill(self, route: Route) -> None:
        """Fresh single-use values for a code exchange or a refresh, enough for one run at any rate."""
        if route.name not in ("code-exchange", "refresh"):
            return
        count = int(max(self.opts.seconds, self.opts.warmup) * 2_500)
        if route.name == "code-exchange":
            route.bodies = [
                json.dumps({"code": code, "redirect_url": REDIRECT}) for code in self.seeder.codes(count)
            ]
            route.expect = '"session_token"'
        else:
            route.bodies = [json.dumps({"session_token": t}) for t in self.seeder.refresh_tokens(count)]
            route.expect = '"session_token"'

    def measure(self, route: Route, silver: str, label: str) -> tp.WrkResult:
        self.fill(route)
        result = run_wrk(route, silver, self.workdir, self.opts, self.opts.seconds)
        row = self.rows.setdefault(route.name, Row(route.name, route.kind))
        row.rounds.append(result)
        print(
            f"  {route.name:24} {label:9} {result.requests_per_second:9.0f} req/s  "
            f"p50 {result.latency_p50_ms:7.2f} ms  p99 {result.latency_p99_ms:7.2f} ms"
            + (f"  non-2xx {result.non_2xx}" if result.non_2xx else ""),
            flush=True,
        )
        return result

    def rounds(self, baseline: Route, measured: list[Route], silver: str) -> None:
        """baseline, up to three routes, baseline, …; each route over the mean of its two neighbours."""
        for round_no in range(1, self.opts.rounds + 1):
            label = f"round {round_no}"
            before = self.measure(baseline, silver, label)
            for start in range(0, len(measured), 3):
                chunk = measured[start : start + 3]
                results = {r.name: self.measure(r, silver, label) for r in chunk}
                after = self.measure(baseline, silver, label)
                reference = (before.requests_per_second + after.requests_per_second) / 2
                for name, result in results.items():
                    self.rows[name].ratios.append(result.requests_per_second / reference)
                before = after
            print(f"  load average {load_average()}", flush=True)


@contextlib.contextmanager
def silver_server(env: dict[str, str], workdir: Path, workers: int, label: str) -> Iterator[tuple[str, Any]]:
    port = tp.free_port()
    silver = f"http://{tp.HOST}:{port}"
    with tp.running(
        label, server_argv(workers), {**env, "SILVER_BIND_PORT": str(port)}, workdir, f"{silver}/health"
    ) as server:
        yield silver, server


def worker_pids(server: Any) -> list[int]:
    """The processes under the server's that serve requests (granian's workers)."""
    done = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=False
    )
    children = [int(p) for p in done.stdout.split()]
    workers: list[int] = []
    for child in children:
        grand = subprocess.run(["pgrep", "-P", str(child)], capture_output=True, text=True, check=False)
        workers += [int(p) for p in grand.stdout.split()]
    return workers or children


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory_pass(bench: Bench, server: Any, silver: str, mix: list[Route]) -> dict[str, Any]:
    """One worker's RSS after 100,000 and after 200,000 requests of a mix of routes (in turns)."""
    pids = worker_pids(server)
    served, marks = 0, {}
    readings: list[tuple[int, int]] = []
    turn = 0
    while served < 2 * MEMORY_STEP:
        route = mix[turn % len(mix)]
        turn += 1
        result = run_wrk(route, silver, bench.workdir, bench.opts, 5)
        served += result.requests
        rss = sum(rss_kib(pid) for pid in pids)
        readings.append((served, rss))
        for mark in (MEMORY_STEP, 2 * MEMORY_STEP):
            if served >= mark and mark not in marks:
                marks[mark] = rss
    growth = (marks[2 * MEMORY_STEP] - marks[MEMORY_STEP]) / marks[MEMORY_STEP]
    print(
        f"  RSS after {MEMORY_STEP:,} requests {marks[MEMORY_STEP] / 1024:.1f} MiB, after "
        f"{2 * MEMORY_STEP:,} {marks[2 * MEMORY_STEP] / 1024:.1f} MiB: {growth:+.1%}",
        flush=True,
    )
    return {"workers": pids, "readings": readings, "growth": growth, "rss_kib": marks}


def two_workers_pass(bench: Bench, env: dict[str, str], db_routes: list[Route]) -> dict[str, float]:
    """The database-backed routes on two workers, against one worker, in alternating runs."""
    one: dict[str, list[float]] = {r.name: [] for r in db_routes}
    two: dict[str, list[float]] = {r.name: [] for r in db_routes}
    rounds = max(1, min(bench.opts.rounds, 2))
    for workers, into in ((1, one), (2, two)) * rounds:
        with silver_server(env, bench.workdir, workers, f"silver-{workers}w") as (silver, _server):
            for route in db_routes:
                check(route, silver)
                run_wrk(route, silver, bench.workdir, bench.opts, bench.opts.warmup)
                result = run_wrk(route, silver, bench.workdir, bench.opts, bench.opts.seconds)
                into[route.name].append(result.requests_per_second)
                print(
                    f"  {workers} worker(s) {route.name:24} {result.requests_per_second:9.0f} req/s",
                    flush=True,
                )
    return {name: statistics.median(two[name]) / statistics.median(one[name]) for name in one}


def peer_routes(
    workdir: Path, database_url: str, stack: contextlib.ExitStack
) -> tuple[list[Route], dict[str, float]]:
    """better-auth's comparable checks (bench/peer_better_auth.py), its servers started on `stack`."""
    import peer_better_auth as peer  # noqa: PLC0415 - bench/peer_better_auth.py, needs Node

    peer.install()
    found: list[Route] = []
    for cookie_cache in (False, True):
        base = stack.enter_context(peer.running(database_url, workdir, cookie_cache))
        seeded = peer.seed(base)
        for target in peer.targets(base, seeded, cookie_cache):
            if not cookie_cache and target["name"] == "peer-get-session-cached":
                continue
            if cookie_cache and target["name"] != "peer-get-session-cached":
                continue  # the cache changes only get-session: the other checks run once
            rotating = target.get("bodies_by_header")
            found.append(
                Route(
                    target["name"],
                    urlsplit(target["url"])._replace(scheme="", netloc="").geturl(),
                    dict(target.get("headers") or {}),
                    method=target.get("method", "GET"),
                    body=target.get("body"),
                    header_values=(rotating[0], list(rotating[1])) if rotating else None,
                    expect=target.get("expect", ""),
                    kind="peer",
                    connections=SIGN_IN_CONNECTIONS if target["name"] == "peer-sign-in" else None,
                    base=base,
                )
            )
    rates = {"better-auth": peer.hash_verify_rate(3.0), "seqn": peer.seqn_hash_verify_rate(3.0)}
    return found, rates


COMPARISONS = (
    ("API-key check", "backend-project", "peer-api-key"),
    ("session check", "sessions-verify", "peer-get-session"),
    ("session check (peer cookie cache)", "sessions-verify", "peer-get-session-cached"),
    ("password sign-in (per hash verify)", "console-sign-in", "peer-sign-in"),
)


def print_tables(rows: dict[str, Row], extra: dict[str, Any]) -> None:
    print()
    print("| route | kind | req/s | p50 ms | p99 ms | vs baseline (median, range) | non-2xx |")
    print("|---|---|---:|---:|---:|---|---:|")
    for row in rows.values():
        spread = f"{min(row.ratios):.3f}-{max(row.ratios):.3f}" if row.ratios else "-"
        ratio = f"{row.ratio:.3f}x ({spread})" if row.ratios else "1.000x"
        print(
            f"| {row.name} | {row.kind} | {row.rps:.0f} | {row.p50:.2f} | {row.p99:.2f} "
            f"| {ratio} | {row.non_2xx} |"
        )
    peer = extra.get("peer")
    if peer:
        rates = peer["hash_verify_rates"]
        print()
        print(
            f"hash verifies per second, one process: SEQN argon2 {rates['seqn']:.1f}, "
            f"better-auth scrypt {rates['better-auth']:.1f}"
        )
        print("| check | SEQN req/s | better-auth req/s | SEQN / better-auth |")
        print("|---|---:|---:|---:|")
        for label, ours, theirs in COMPARISONS:
            if ours not in rows or theirs not in rows:
                continue
            a, b = rows[ours].rps, rows[theirs].rps
            if "sign-in" in ours:
                a, b = a / rates["seqn"], b / rates["better-auth"]
            print(f"| {label} | {rows[ours].rps:.0f} | {rows[theirs].rps:.0f} | {a / b:.2f}x |")
    if "two_workers" in extra:
        print()
        print("| route | two workers / one |")
        print("|---|---:|")
        for name, ratio in extra["two_workers"].items():
            print(f"| {name} | {ratio:.2f}x |")
    if "memory" in extra:
        growth = extra["memory"]["growth"]
        print(
            f"\nRSS growth of one worker from {MEMORY_STEP:,} to {2 * MEMORY_STEP:,} requests: {growth:+.1%}"
        )


def _verdict(label: str, met: bool, figure: str) -> str:
    return f"{label}: {'met' if met else 'NOT met'} ({figure})"


def targets_report(rows: dict[str, Row], extra: dict[str, Any]) -> list[str]:
    lines = []
    db = [r for r in rows.values() if r.kind == "db" and r.ratios]
    if db:
        worst = min(db, key=lambda r: r.ratio)
        label, figure = (
            f"database-backed routes >= {TARGET_DB_RATIO}x",
            f"lowest {worst.name} {worst.ratio:.3f}x",
        )
        lines.append(_verdict(label, worst.ratio >= TARGET_DB_RATIO, figure))
    verify = rows.get("sessions-verify")
    if verify and verify.ratios:
        label = f"session verification >= {TARGET_VERIFY_RATIO}x"
        lines.append(_verdict(label, verify.ratio >= TARGET_VERIFY_RATIO, f"{verify.ratio:.3f}x"))
    if "two_workers" in extra:
        lowest = min(extra["two_workers"].values())
        label = f"two workers >= {TARGET_TWO_WORKERS}x one"
        lines.append(_verdict(label, lowest >= TARGET_TWO_WORKERS, f"lowest {lowest:.2f}x"))
    if "memory" in extra:
        growth = extra["memory"]["growth"]
        label = f"RSS growth < {TARGET_RSS_GROWTH:.0%}"
        lines.append(_verdict(label, growth < TARGET_RSS_GROWTH, f"{growth:+.1%}"))
    return lines


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s, no two-worker or memory pass")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 5, quick 3)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (default 32)")
    parser.add_argument("--route", action="append", help="measure only this route (repeatable)")
    parser.add_argument("--no-peer", action="store_true", help="skip better-auth")
    parser.add_argument("--no-workers", action="store_true", help="skip the two-worker pass")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory pass")
    args = parser.parse_args(argv)
    seconds = args.duration or (3.0 if args.quick else 5.0)
    return Options(
        threads=args.threads,
        connections=args.connections,
        seconds=min(max(seconds, 1.0), 60.0),
        warmup=1.0 if args.quick else 2.0,
        rounds=max(1, min(args.rounds or (1 if args.quick else 3), 10)),
        only=tuple(args.route or ()),
        peer=not args.no_peer,
        workers_pass=not (args.no_workers or args.quick),
        memory_pass=not (args.no_memory or args.quick),
    )


def run(opts: Options) -> int:
    if shutil.which("wrk") is None:
        raise tp.BenchError("wrk is not installed (Debian: apt-get install wrk)")
    if importlib.util.find_spec("granian") is None:
        raise tp.BenchError("granian is not installed")
    database_url = os.environ.get("BENCH_DATABASE_URL", tp.DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    info = tp.machine()
    print(f"machine: {info['cpu']} · {info['cores']} cores · Python {info['python']} · {info['wrk']}")
    print(f"load average at start: {load_average()}")
    print(
        f"wrk -t{opts.threads} -c{opts.connections} -d{opts.seconds:g}s, {opts.rounds} interleaved round(s); "
        f"granian, one worker, SILVER_ENV=production on {urlsplit(database_url).path[1:]!r}, limiter on Redis"
    )
    extra: dict[str, Any] = {"load_average_start": load_average()}
    with tempfile.TemporaryDirectory(prefix="silver-routes-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        env = bench_env(database_url, redis_url, workdir)
        tp.migrate(env, workdir)
        seeder = Seeder(env)
        seeded = seeder.seed()
        base_port = tp.free_port()
        baseline_argv = [sys.executable, str(tp.BENCH / "baseline_app.py"), "--server", "granian"]
        baseline_argv += ["--host", tp.HOST, "--port", str(base_port)]
        baseline = Route(
            "baseline",
            "/baseline",
            expect='"baseline"',
            kind="baseline",
            base=f"http://{tp.HOST}:{base_port}",
        )
        stack.enter_context(tp.running("baseline", baseline_argv, env, workdir, baseline.url("")))
        peer: list[Route] = []
        if opts.peer:
            peer, rates = peer_routes(workdir, database_url, stack)
            extra["peer"] = {"hash_verify_rates": rates}
        silver, server = stack.enter_context(silver_server(env, workdir, 1, "silver"))
        cookie_name = seeder.run(_cookie_name)
        measured = routes(seeded, console_cookie(silver, seeded, cookie_name))
        if opts.only:
            measured = [r for r in measured if r.name in opts.only]
        measured += [r for r in peer if not opts.only or r.name in opts.only]
        bench = Bench(opts, workdir, env, seeder)
        for route in [baseline, *measured]:
            bench.fill(route)
            check(route, silver)
            run_wrk(route, silver, workdir, opts, opts.warmup)
        bench.rounds(baseline, measured, silver)
        if opts.memory_pass:
            mix = [r for r in measured if r.kind in ("db", "cached") and not r.bodies and not r.base]
            extra["memory"] = memory_pass(bench, server, silver, mix)
        stack.close()
        if opts.workers_pass:
            db_routes = [r for r in measured if r.kind == "db" and not r.bodies and not r.base]
            extra["two_workers"] = two_workers_pass(bench, env, db_routes)
    extra["load_average_end"] = load_average()
    write_report(bench, extra, info, opts)
    return 0


def bench_env(database_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
    env = tp.production_env(database_url, workdir / "data")
    env.update(
        {
            "SILVER_REDIS_URL": redis_url,
            "SILVER_REDIS_KEY_PREFIX": f"bench{secrets.token_hex(4)}",
            "SILVER_METRICS_PORT": "0",
            "SILVER_END_USER_CODE_SECONDS": "600",
            # One address sends everything: no per-IP or per-session budget may run out.
            **{
                f"SILVER_RATE_LIMIT_{name}_PER_MINUTE": str(10**9)
                for name in ("CLIENT", "CONSOLE", "ANONYMOUS", "SIGN_IN", "CODE_EXCHANGE", "REFRESH")
            },
        }
    )
    return env


def write_report(bench: Bench, extra: dict[str, Any], info: dict[str, str], opts: Options) -> None:
    print_tables(bench.rows, extra)
    report = targets_report(bench.rows, extra)
    print()
    for line in report:
        print(line)
    print(f"load average at end: {extra['load_average_end']}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": info,
                "options": dataclasses.asdict(opts),
                "rows": [
                    {**dataclasses.asdict(r), "rps": r.rps, "p50": r.p50, "p99": r.p99, "ratio": r.ratio}
                    for r in bench.rows.values()
                ],
                "targets": report,
                **extra,
            },
            indent=2,
        )
    )
    print(f"written to {RESULTS.relative_to(tp.ROOT)}")


async def _cookie_name(runtime: Any) -> str:
    return str(runtime.settings.session_cookie_name)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    try:
        return run(opts)
    except (tp.BenchError, subprocess.TimeoutExpired) as exc:
        print(f"bench error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"took {time.monotonic() - started:.0f} s")
    sys.exit(code)
