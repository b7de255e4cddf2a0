"""Test harness: a real database per test (SQLite, or Postgres with SILVER_TEST_DB=postgres), a real app.

SQLite: migrated once into a template file, copied for each test.
Postgres: SILVER_TEST_POSTGRES_URL (default: the `test` database on 127.0.0.1:5432) is migrated once per
run and emptied between tests; under pytest-xdist each worker gets its own database beside it
(`test_gw0`, `test_gw1`, …), created on the same server at the worker's start.
Apps: one per distinct settings for the whole session, each test bringing its own Runtime (engine, key
cache, session codec, identity backend), so no per-process state passes from one test to the next.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.testing import TestClient
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from silver_auth.accounts import passwords
from silver_auth.app import create_app
from silver_auth.audit.service import GENESIS_HASH
from silver_auth.core import clock
from silver_auth.core.logging import configure_logging
from silver_auth.db.engine import create_engine
from silver_auth.db.migrate import upgrade
from silver_auth.db.migrations.env import target_metadata
from silver_auth.runtime import build_runtime
from silver_auth.settings import Settings, load_settings
from tests.factories import Harness

BACKEND = os.environ.get("SILVER_TEST_DB", "sqlite")
BASE_POSTGRES_URL = os.environ.get(
    "SILVER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
# pytest-xdist names each worker process (gw0, gw1, …); without xdist there is one process, "master".
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "master")
ENV_PREFIXES = ("SILVER_", "SESSION_", "DATABASE_URL", "AUTHENTIK_")


def _worker_url(base: str, worker: str) -> str:
    if worker == "master":
        return base
    url = make_url(base)
    return url.set(database=f"{url.database}_{worker}").render_as_string(hide_password=False)


POSTGRES_URL = _worker_url(BASE_POSTGRES_URL, WORKER)
"""This process's Postgres database: the base one, or this xdist worker's own."""


def pytest_report_header() -> str:
    return f"silver-auth test database: {BACKEND}"


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hashing() -> Iterator[None]:
    """Real argon2id with test-sized cost: production parameters (~0.1 s a hash) dominate the suite.

    Subprocess tests (CLI, e2e quick start) still run the production parameters.
    """
    original, original_dummy = passwords._hasher, passwords._DUMMY_HASH
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    passwords._DUMMY_HASH = passwords._hasher.hash("timing-equaliser-not-a-password")
    yield
    passwords._hasher, passwords._DUMMY_HASH = original, original_dummy


@pytest.fixture(scope="session", autouse=True)
def _access_log_at_once() -> None:
    """A server writes the access log's lines at the end of each turn of its event loop; tests read
    them right after a request (and a line written later would land in another test's output)."""
    configure_logging(batched=False)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests see only the settings they pass; the shell's SILVER_* and .env never leak in."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    clock.reset()
    yield
    clock.reset()


GENEROUS_RATE_LIMITS = (
    "SILVER_RATE_LIMIT_CLIENT_PER_MINUTE",
    "SILVER_RATE_LIMIT_CONSOLE_PER_MINUTE",
    "SILVER_RATE_LIMIT_ANONYMOUS_PER_MINUTE",
    "SILVER_RATE_LIMIT_SIGN_IN_PER_MINUTE",
    "SILVER_RATE_LIMIT_SIGN_UP_PER_MINUTE",
    "SILVER_RATE_LIMIT_MFA_PER_MINUTE",
    "SILVER_RATE_LIMIT_CODE_EXCHANGE_PER_MINUTE",
    "SILVER_RATE_LIMIT_REFRESH_PER_MINUTE",
    "SILVER_RATE_LIMIT_INVITATION_PER_MINUTE",
)


def base_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "SILVER_DATA_DIR": str(tmp_path / "data"),
        "SESSION_SECRET": secrets.token_urlsafe(40),
        "SILVER_KEY_PEPPER": secrets.token_urlsafe(40),
        "SILVER_SEALING_KEYS": "t1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "SILVER_KEY_CACHE_TTL_SECONDS": 5,
        # Last-used times written on the fill, as they are read: whole-database snapshots stay still
        # between requests; tests/keys/test_last_used.py proves the written-behind default.
        "SILVER_KEY_LAST_USED_FLUSH_SECONDS": 0,
        "SILVER_METRICS_PORT": 0,  # no listener per app: tests that want one pick a free port
        # The limiter runs in every test, with room for what a test sends from its one address (fuzzing
        # included); tests/ratelimit sets the limits it proves.
        **{name: 100_000 for name in GENEROUS_RATE_LIMITS},
    }
    values.update(overrides)
    return load_settings(**values)


def _engine_for(url: str) -> AsyncEngine:
    return create_engine(
        load_settings(_env_file=None, DATABASE_URL=url, SILVER_DATA_DIR=tempfile.gettempdir())
    )


async def _migrate(url: str, reset: bool) -> None:
    engine = _engine_for(url)
    try:
        if reset:
            async with engine.begin() as connection:
                await connection.execute(text("DROP SCHEMA public CASCADE"))
                await connection.execute(text("CREATE SCHEMA public"))
        await upgrade(engine)
    finally:
        await engine.dispose()


def _dsn(url: str) -> str:
    """The asyncpg form of a SQLAlchemy Postgres URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _create_worker_database(url: str) -> None:
    """A new, empty database for this xdist worker, on the base database's server."""
    name = make_url(url).database
    admin = await asyncpg.connect(_dsn(BASE_POSTGRES_URL))
    try:
        # WITH (FORCE): a worker killed mid-run can leave a connection behind.
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "silver.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}", reset=False))
    return path


TABLES = [table.name for table in reversed(target_metadata.sorted_tables)]
# DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE swaps every table's and index's files
# (~25 ms against ~1 ms here). Children first, so no foreign key is ever left dangling.
EMPTY_POSTGRES = "".join(f"DELETE FROM {table};" for table in TABLES) + (
    f"INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}');"
    # Audit insertion ids start at 1 again, as in a fresh SQLite copy.
    "SELECT setval(pg_get_serial_sequence('audit_events', 'row_id'), 1, false);"
)


class PostgresCleaner:
    """Empties this process's database before each test over one connection kept for the session."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._loop = asyncio.Runner()
        self._connection: asyncpg.Connection[Any] = self._loop.run(asyncpg.connect(_dsn(url)))

    def empty(self) -> None:
        self._loop.run(self._connection.execute(EMPTY_POSTGRES))

    def close(self) -> None:
        self._loop.run(self._connection.close())
        self._loop.close()


@pytest.fixture(scope="session")
def postgres_migrated() -> Iterator[PostgresCleaner]:
    if POSTGRES_URL == BASE_POSTGRES_URL:
        asyncio.run(_migrate(POSTGRES_URL, reset=True))
    else:
        asyncio.run(_create_worker_database(POSTGRES_URL))
        asyncio.run(_migrate(POSTGRES_URL, reset=False))
    cleaner = PostgresCleaner(POSTGRES_URL)
    yield cleaner
    cleaner.close()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if BACKEND == "postgres":
        cleaner: PostgresCleaner = request.getfixturevalue("postgres_migrated")
        cleaner.empty()
        return cleaner.url
    template: Path = request.getfixturevalue("sqlite_template")
    target = tmp_path / "silver.db"
    shutil.copy(template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return base_settings(tmp_path, DATABASE_URL=database_url)


# What each test sets for itself, read only through the Runtime: apps that differ in these alone are
# the same app. Any other setting may shape the app itself (headers, body limit), so it keys the pool.
PER_TEST_SETTINGS = frozenset(
    {"data_dir", "database_url", "session_secret", "key_pepper", "sealing_keys", "authentik_token"}
)


def _app_key(settings: Settings) -> str:
    values = settings.model_dump(exclude=set(PER_TEST_SETTINGS))
    return repr(
        sorted(
            (name, value.get_secret_value() if isinstance(value, SecretStr) else value)
            for name, value in values.items()
        )
    )


class AppPool:
    """Litestar apps built once per distinct settings (create_app costs ~0.4 s: ~160 handlers), each
    served with a Runtime of its own per use, the way create_app would have built it."""

    def __init__(self) -> None:
        self._idle: dict[str, list[Litestar]] = {}

    @contextmanager
    def serve(self, settings: Settings) -> Iterator[TestClient[Litestar]]:
        key = _app_key(settings)
        idle = self._idle.setdefault(key, [])
        # Two apps at once (two workers on one database) must not share one: each has its own runtime.
        app = idle.pop() if idle else create_app(settings)
        # create_app's process-wide effect: logs go to this test's stderr (capfd reads there).
        configure_logging(settings.log_level, settings.log_format)
        app.state.runtime = build_runtime(settings)
        try:
            with TestClient(app, raise_server_exceptions=False) as client:
                yield client
        finally:
            idle.append(app)


@pytest.fixture(scope="session")
def apps() -> AppPool:
    return AppPool()


@pytest.fixture
def harness(apps: AppPool, settings: Settings) -> Iterator[Harness]:
    with apps.serve(settings) as client:
        yield Harness(client, settings)
