"""better-auth, the peer of the side-by-side benchmark: install, run, seed and load it like SEQN.

better-auth 1.7.5 with @better-auth/api-key 1.7.5 (bench/peers/better-auth, installed with `npm ci` from its
lock) on the machine's Node with its `node:http` handler, against Postgres through a `pg` pool. Both of its
limiters are off (we measure the server, not its limiter). The comparable checks:

    peer-api-key             GET /bench/verify-key, the app's route around the server-only verifyApiKey;
                             the plugin writes the key's row on every check, so the load rotates over keys
    peer-get-session         GET /api/auth/get-session with the session cookie (a database read)
    peer-get-session-cached  the same on an instance with the signed session cookie cache on (no read)
    peer-sign-in             POST /api/auth/sign-in/email (one scrypt verification, a session row written)

Each password sign-in is normalised by the raw verify rate of its own hash in its own runtime
(`hash_verify_rate` for better-auth's scrypt in Node, `seqn_hash_verify_rate` for SEQN's argon2id in
Python), so a costlier hash is not read as a slower server.

    .venv/bin/python bench/peer_better_auth.py --smoke   # install, start both, seed, wrk each check 3 s

The smoke run uses BENCH_PEER_DATABASE_URL (default: database bench_peer on 127.0.0.1). Loopback only;
every wrk run is bounded and every server started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

PEER_DIR = Path(__file__).resolve().parent / "peers" / "better-auth"
HOST = "127.0.0.1"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/bench_peer"
EMAIL = "bench-peer@example.com"
PASSWORD = "bench-peer-password-123"  # noqa: S105 - the bench user of a throwaway peer
API_KEYS = 32
API_KEY_HEADER = "x-api-key"
READY_PATH = "/api/auth/ok"
SIGN_IN_SMOKE_SECONDS = 12.0
WARMUP_SECONDS = 2.0
# better-auth refuses a cookie-authenticated POST without an Origin it trusts (its CSRF check).
ORIGIN_HEADER = "origin"


class PeerError(Exception):
    """The peer could not be installed, started or seeded."""


@dataclass
class PeerSeed:
    email: str
    password: str
    cookie: str
    """The Cookie header value of a signed-in session (with the cached-session cookie when the instance
    that seeded has the cache on)."""
    api_keys: list[str]


# --- install and run ------------------------------------------------------------------------------


def install() -> None:
    """`npm ci` from the lock, when node_modules is missing."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise PeerError(f"the better-auth peer needs {tool} on PATH (Debian: apt-get install nodejs npm)")
    if (PEER_DIR / "node_modules" / "better-auth" / "package.json").exists():
        return
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=PEER_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise PeerError(f"npm ci in {PEER_DIR} failed:\n{(done.stdout + done.stderr).strip()[-2000:]}")


def node_database_url(database_url: str) -> str:
    """The URL for node-postgres: SQLAlchemy's `postgresql+asyncpg://` spelling without the driver."""
    parts = urlsplit(database_url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise PeerError(f"the better-auth peer runs on Postgres, not {scheme!r}")
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(log_path: Path, log: IO[bytes]) -> str:
    log.flush()
    return log_path.read_text(errors="replace").strip()[-1500:]


def _stop(process: subprocess.Popen[bytes]) -> None:
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


@contextlib.contextmanager
def running(
    database_url: str, workdir: Path, cookie_cache: bool, *, cookie_cache_max_age: int = 3600
) -> Iterator[str]:
    """A better-auth server on a free loopback port, its base URL yielded once it answers.

    The schema is created (or completed) in `database_url` on start by better-auth's own migrations. Its
    tables (user, session, account, verification, apikey) share no name with SEQN's. The cookie cache
    trusts a cached session for `cookie_cache_max_age` seconds: long enough that a long run does not
    silently fall back to the database half-way (better-auth's default is 300)."""
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 - npm and node only read their config there
        "NODE_ENV": "production",
        "BENCH_PEER_DATABASE_URL": node_database_url(database_url),
        "BENCH_PEER_PORT": str(port),
        "BENCH_PEER_COOKIE_CACHE": "1" if cookie_cache else "0",
        "BENCH_PEER_COOKIE_CACHE_MAX_AGE": str(cookie_cache_max_age),
    }
    if "UV_THREADPOOL_SIZE" in os.environ:  # the same pool as hash_verify_rate measures
        env["UV_THREADPOOL_SIZE"] = os.environ["UV_THREADPOOL_SIZE"]
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"peer-better-auth-{'cache' if cookie_cache else 'nocache'}.log"
    with log_path.open("wb") as log:
        # A session of its own, so the whole group is stopped whatever happens.
        process = subprocess.Popen(
            ["node", str(PEER_DIR / "server.mjs")],
            env=env,
            cwd=PEER_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60.0
            while True:
                if process.poll() is not None:
                    raise PeerError(f"better-auth exited with {process.returncode}:\n{_tail(log_path, log)}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(base_url + READY_PATH, timeout=1.0).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise PeerError(f"better-auth not ready after 60 s:\n{_tail(log_path, log)}")
                time.sleep(0.2)
            yield base_url
        finally:
            _stop(process)


# --- seed -----------------------------------------------------------------------------------------


def _cookie_header(response: httpx.Response) -> str:
    pairs = []
    for raw in response.headers.get_list("set-cookie"):
        pair = raw.split(";", 1)[0].strip()
        if "better-auth." in pair.split("=", 1)[0] and not pair.endswith("="):
            pairs.append(pair)
    return "; ".join(pairs)


def seed(base_url: str, keys: int = API_KEYS) -> PeerSeed:
    """The bench user (signed up once; later seeds reuse it), a fresh signed-in session and `keys` new
    API keys, all through better-auth's own HTTP API."""
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        credentials = {"email": EMAIL, "password": PASSWORD}
        signed_up = client.post("/api/auth/sign-up/email", json={**credentials, "name": "Bench Peer"})
        if signed_up.status_code != 200 and "USER_ALREADY_EXISTS" not in signed_up.text:
            raise PeerError(f"sign-up: {signed_up.status_code} {signed_up.text[:300]}")
        client.cookies.clear()  # a sign-in with a cookie must pass the Origin check; the bench's has none
        signed_in = client.post("/api/auth/sign-in/email", json=credentials)
        if signed_in.status_code != 200:
            raise PeerError(f"sign-in: {signed_in.status_code} {signed_in.text[:300]}")
        cookie = _cookie_header(signed_in)
        if "session_token=" not in cookie:
            raise PeerError("sign-in set no session cookie")
        client.cookies.clear()  # the Cookie header below is the one the bench will send
        headers = {"cookie": cookie, ORIGIN_HEADER: base_url}
        api_keys = []
        for number in range(keys):
            created = client.post(
                "/api/auth/api-key/create", json={"name": f"bench-{number}"}, headers=headers
            )
            if created.status_code != 200:
                raise PeerError(f"api-key/create: {created.status_code} {created.text[:300]}")
            api_keys.append(str(created.json()["key"]))
    return PeerSeed(EMAIL, PASSWORD, cookie, api_keys)


# --- what is measured -----------------------------------------------------------------------------


def targets(base_url: str, seed: PeerSeed, cookie_cache: bool) -> list[dict[str, Any]]:
    """The comparable checks on one instance; get-session is named for the instance's cookie cache."""
    return [
        {
            "name": "peer-api-key",
            "method": "GET",
            "url": base_url + "/bench/verify-key",
            "headers": {},
            "body": None,
            "bodies_by_header": (API_KEY_HEADER, list(seed.api_keys)),
            "expect": '"valid":true',
        },
        {
            "name": "peer-get-session-cached" if cookie_cache else "peer-get-session",
            "method": "GET",
            "url": base_url + "/api/auth/get-session",
            "headers": {"cookie": seed.cookie},
            "body": None,
            # better-auth answers 200 `null` without a live session: only a session counts.
            "expect": '"session":{',
        },
        {
            "name": "peer-sign-in",
            "method": "POST",
            "url": base_url + "/api/auth/sign-in/email",
            "headers": {"content-type": "application/json"},
            "body": json.dumps({"email": seed.email, "password": seed.password}),
            "expect": '"token":',
        },
    ]


_LUA = """
local method, path, body = %(method)s, %(path)s, %(body)s
local headers = %(headers)s
local rotate_header = %(rotate_header)s
local values = %(values)s
local threads = %(threads)d
local created = 0
local counter = 0

function setup(thread)
  thread:set("lane", created)
  created = created + 1
end

function init(args)
  counter = lane or 0
end

function request()
  if rotate_header then
    headers[rotate_header] = values[(counter %% #values) + 1]
    counter = counter + threads
  end
  return wrk.format(method, path, headers, body)
end
"""


def _lua_string(value: str | None) -> str:
    return "nil" if value is None else json.dumps(value)  # a JSON string of ASCII is a valid Lua string


def lua_script(target: dict[str, Any], threads: int = 2) -> str | None:
    """A wrk script for a target that is not a plain GET (its method and body) or that rotates a header
    over values (the API keys, each wrk thread starting on its own), or None for a plain GET."""
    rotating = target.get("bodies_by_header")
    if target["method"] == "GET" and target.get("body") is None and not rotating:
        return None
    headers = target.get("headers") or {}
    parts = urlsplit(target["url"])
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return _LUA % {
        "method": json.dumps(target["method"]),
        "path": json.dumps(path),
        "body": _lua_string(target.get("body")),
        "headers": "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()) + "}",
        "rotate_header": _lua_string(rotating[0] if rotating else None),
        "values": "{" + ", ".join(json.dumps(v) for v in (rotating[1] if rotating else [])) + "}",
        "threads": threads,
    }


# --- raw hash verify rates ------------------------------------------------------------------------


def hash_verify_rate(seconds: float = 3) -> float:
    """Verifications per second of better-auth 1.7.5's password hash, in Node, as its server runs them.

    It is node:crypto's async scrypt (N=16384, r=16, p=1, 64-byte key; @better-auth/utils/password's
    "node" export): on libuv's thread pool, unbounded by better-auth, so as many at once as the pool has
    threads (4 unless UV_THREADPOOL_SIZE says otherwise, and the server here does not). The script keeps
    twice that many in flight (hash-rate.mjs)."""
    done = subprocess.run(
        ["node", str(PEER_DIR / "hash-rate.mjs"), f"{seconds:g}"],
        cwd=PEER_DIR,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    if done.returncode != 0:
        raise PeerError(f"hash-rate.mjs failed: {done.stderr.strip()[-1500:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["per_second"])


def seqn_hash_verify_rate(seconds: float = 3) -> float:
    """Verifications per second of SEQN's password hash, in Python, as the service runs them.

    The service's own `silver_auth.accounts.passwords.verify_password` (argon2-cffi's default argon2id:
    t=3, m=64 MiB, p=4) in a fresh interpreter: each verification in a worker thread, at most
    SILVER_PASSWORD_HASH_THREADS at once (default: the CPU count), the rest queued. Twice that many
    verifications are kept in flight, as concurrent sign-ins would."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--seqn-hash-rate", f"{seconds:g}"],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    if done.returncode != 0:
        raise PeerError(f"SEQN hash rate failed: {done.stderr.strip()[-1500:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["per_second"])


async def _seqn_verifies(seconds: float) -> dict[str, Any]:
    from silver_auth.accounts import passwords  # noqa: PLC0415 - only this measure needs the service

    threads = int(os.environ.get("SILVER_PASSWORD_HASH_THREADS") or os.cpu_count() or 1)
    passwords.set_hash_threads(threads)
    encoded = await passwords.hash_password(PASSWORD)
    if not await passwords.verify_password(encoded, PASSWORD):
        raise PeerError("argon2 verify failed on its own hash")
    count = 0
    started = time.perf_counter()
    until = started + seconds

    async def lane() -> None:
        nonlocal count
        while time.perf_counter() < until:
            if not await passwords.verify_password(encoded, PASSWORD):
                raise PeerError("argon2 verify failed")
            count += 1

    await asyncio.gather(*(lane() for _ in range(threads * 2)))
    elapsed = time.perf_counter() - started
    return {
        "hash": encoded.split("$", 4)[3],
        "threads": threads,
        "verifies": count,
        "per_second": count / elapsed,
    }


# --- smoke ----------------------------------------------------------------------------------------


def _wrk(
    target: dict[str, Any], workdir: Path, threads: int, connections: int, seconds: float
) -> dict[str, float]:
    # A queued sign-in may wait many seconds for a scrypt thread on a busy machine: slow, not failed.
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s"]
    for name, value in (target.get("headers") or {}).items():
        argv += ["-H", f"{name}: {value}"]
    script = lua_script(target, threads)
    if script is not None:
        path = workdir / f"{target['name']}.lua"
        path.write_text(script)
        argv += ["-s", str(path)]
    argv.append(target["url"])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    total = re.search(r"(\d+) requests in", done.stdout)
    if done.returncode != 0 or not rps or not total:
        raise PeerError(f"wrk failed on {target['name']}: {done.stdout}{done.stderr}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", done.stdout)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", done.stdout)
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


def _check(target: dict[str, Any]) -> None:
    """One request by hand that must succeed with the expected body, so a fast error is never measured."""
    headers = dict(target.get("headers") or {})
    rotating = target.get("bodies_by_header")
    if rotating:
        headers[rotating[0]] = rotating[1][0]
    answer = httpx.request(
        target["method"], target["url"], headers=headers, content=target.get("body"), timeout=30
    )
    if answer.status_code // 100 != 2 or target["expect"] not in answer.text:
        raise PeerError(f"{target['name']}: {answer.status_code} {answer.text[:300]}")


def smoke(database_url: str, seconds: float) -> int:
    install()
    failed = False
    with tempfile.TemporaryDirectory(prefix="peer-better-auth-") as tmp:
        workdir = Path(tmp)
        for cookie_cache in (False, True):
            with running(database_url, workdir, cookie_cache) as base_url:
                seeded = seed(base_url)
                print(
                    f"better-auth cookie cache {'on ' if cookie_cache else 'off'} at {base_url}: "
                    f"{len(seeded.api_keys)} keys",
                    flush=True,
                )
                for target in targets(base_url, seeded, cookie_cache):
                    if cookie_cache and not target["name"].endswith("-cached"):
                        continue  # the cache changes only get-session
                    _check(target)
                    if (
                        target["name"] != "peer-sign-in"
                    ):  # V8 compiles the hot path first; sign-in is all hash
                        _wrk(target, workdir, threads=2, connections=32, seconds=WARMUP_SECONDS)
                    # 32 sign-ins at once queue for 4 scrypt threads: a short run may see none finish.
                    duration = (
                        max(seconds, SIGN_IN_SMOKE_SECONDS) if target["name"] == "peer-sign-in" else seconds
                    )
                    result = _wrk(target, workdir, threads=2, connections=32, seconds=duration)
                    # None answered within the run (each sign-in waits its turn for a scrypt thread) or
                    # some failed: either way the figure is not one to report.
                    bad = result["non_2xx"] + result["socket_errors"] or not result["requests"]
                    failed = failed or bool(bad)
                    print(
                        f"  {target['name']:24} {result['rps']:9.0f} req/s  {result['requests']:7d} requests"
                        f"  "
                        f"non-2xx {result['non_2xx']}  socket errors {result['socket_errors']}",
                        flush=True,
                    )
    scrypt = hash_verify_rate(seconds)
    argon2 = seqn_hash_verify_rate(seconds)
    print(
        f"raw hash verifies/s: better-auth scrypt (Node, thread pool) {scrypt:.1f}, "
        f"SEQN argon2id (Python, worker threads) {argon2:.1f}",
        flush=True,
    )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--smoke", action="store_true", help="install, start both instances, seed, wrk each check"
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="wrk duration and hash-rate window (smoke)"
    )
    parser.add_argument("--seqn-hash-rate", type=float, metavar="SECONDS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.seqn_hash_rate is not None:
            print(json.dumps(asyncio.run(_seqn_verifies(args.seqn_hash_rate))))
            return 0
        if args.smoke:
            return smoke(os.environ.get("BENCH_PEER_DATABASE_URL", DEFAULT_DATABASE_URL), args.seconds)
    except PeerError as exc:
        print(f"peer: {exc}", file=sys.stderr)
        return 2
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
