"""What every check reads from: the settings, the options of this run, the database (opened once, its
failure remembered as one reason), an HTTP client for the edge, and the running API's public config."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from silver_auth.core.redaction import redact_text
from silver_auth.ops.probing import Pins, probe_client, tls_context
from silver_auth.settings import Settings

DATABASE_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class DoctorOptions:
    url: str | None = None
    """The auth host's public https:// URL (the live edge: G1-G3)."""
    accounts_url: str | None = None
    """The accounts host's public https:// URL."""
    ca_file: Path | None = None
    """The CA that signed the edge's certificate, when it is not a public one (Caddy's internal CA)."""
    http_port: int = 80
    """Where the edge answers plain http (to see it redirect)."""
    checkout: Path | None = None
    """A source checkout whose README is checked too (L8); found by itself when run from one."""
    timeout: float = 10.0
    pins: Pins = field(default_factory=dict)
    """`--resolve` host names reached at an address of the operator's choosing."""


class DatabaseUnavailable(Exception):
    """The database could not be used; `reason` is one redacted line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return redact_text(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


@dataclass
class Doctor:
    settings: Settings
    options: DoctorOptions = field(default_factory=DoctorOptions)
    _engine: AsyncEngine | None = None
    _sessionmaker: async_sessionmaker[AsyncSession] | None = None
    _database_error: str | None = None
    _http: httpx.AsyncClient | None = None
    _live_config: tuple[str, dict[str, Any] | None, str | None] | None = None

    @property
    def is_production(self) -> bool:
        return self.settings.is_production

    async def database(self) -> async_sessionmaker[AsyncSession]:
        """The configured database, migrated to this version; else DatabaseUnavailable (every time)."""
        if self._sessionmaker is not None:
            return self._sessionmaker
        if self._database_error is None:
            try:
                self._sessionmaker = await asyncio.wait_for(self._open(), DATABASE_SECONDS)
                return self._sessionmaker
            except DatabaseUnavailable as exc:
                self._database_error = exc.reason
            except TimeoutError:
                self._database_error = f"database unreachable: no answer within {DATABASE_SECONDS:.0f}s"
            except Exception as exc:  # a driver's error, whatever its class: one line, never a trace
                self._database_error = f"database unreachable: {one_line(exc)}"
        raise DatabaseUnavailable(self._database_error)

    async def _open(self) -> async_sessionmaker[AsyncSession]:
        from silver_auth.db.engine import create_engine, create_sessionmaker  # noqa: PLC0415
        from silver_auth.db.migrate import is_current  # noqa: PLC0415

        if self.settings.is_sqlite and self.settings.database_url is None:
            database = (self.settings.data_dir / "silver.db").resolve()
            if not database.exists():  # opening it would create an empty one
                raise DatabaseUnavailable(f"no database at {database}: set SILVER_DATA_DIR or DATABASE_URL")
        self._engine = create_engine(self.settings)
        if not await is_current(self._engine):
            raise DatabaseUnavailable(
                "the database is not migrated to this version: run `silver-auth migrate`"
            )
        return create_sessionmaker(self._engine)

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = probe_client(
                verify=tls_context(self.options.ca_file), timeout=self.options.timeout, pins=self.options.pins
            )
        return self._http

    @property
    def api_base(self) -> str:
        """The running API: the edge when --url is given, else the bind address on this host."""
        if self.options.url:
            return self.options.url.rstrip("/")
        host = self.settings.bind_host
        host = "127.0.0.1" if host in ("0.0.0.0", "", "localhost") else host  # noqa: S104
        host = "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.settings.bind_port}"

    async def live_config(self) -> tuple[str, dict[str, Any] | None, str | None]:
        """(where, `/v1/config` as served, why it could not be read): asked once per run."""
        if self._live_config is None:
            where = f"{self.api_base}/v1/config"
            try:
                answer = await self.http.get(where)
                if answer.status_code != 200:
                    self._live_config = (where, None, f"answered {answer.status_code}")
                else:
                    body = answer.json()
                    self._live_config = (where, body if isinstance(body, dict) else None, None)
            except (httpx.HTTPError, ValueError) as exc:
                self._live_config = (where, None, one_line(exc))
        return self._live_config

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._engine is not None:
            await self._engine.dispose()
