"""Postgres for backups and drills: `pg_dump` and `pg_restore` run as child processes that get the
connection, password included, through libpq's environment (`PGPASSWORD`), never their arguments; and
the drill's scratch databases, created beside the live one and dropped after."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from silver_auth.core.redaction import REDACTED, redact_text
from silver_auth.ops.backup.errors import BackupError
from silver_auth.settings import Settings

DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
SSL_MODES = {"true": "require", "false": "disable"}


@dataclass(frozen=True, slots=True)
class PgServer:
    """The live database's server, as the settings name it."""

    url: URL
    bin_dir: Path | None

    @classmethod
    def from_settings(cls, settings: Settings) -> PgServer:
        return cls(make_url(settings.sqlalchemy_url), settings.backup_pg_bin_dir)

    @property
    def database(self) -> str:
        return self.url.database or ""

    def url_of(self, database: str) -> str:
        """The SQLAlchemy URL of another database on this server (password included: keep it in memory)."""
        return self.url.set(database=database).render_as_string(hide_password=False)

    def environment(self, database: str | None = None) -> dict[str, str]:
        """libpq's variables for a child process: the only way the password reaches it."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGCONNECT_TIMEOUT": "10"}
        query = dict(self.url.query)
        host = self.url.host or query.get("host")
        for name, value in (
            ("PGHOST", host),
            ("PGPORT", str(self.url.port) if self.url.port else None),
            ("PGUSER", self.url.username),
            ("PGPASSWORD", self.url.password),
            ("PGDATABASE", database or self.database),
        ):
            if value:
                env[name] = str(value)
        ssl = query.get("sslmode") or query.get("ssl")
        if isinstance(ssl, str):
            env["PGSSLMODE"] = SSL_MODES.get(ssl.lower(), ssl)
        return env

    def tool(self, name: str) -> str:
        found = str(self.bin_dir / name) if self.bin_dir else shutil.which(name)
        if not found or not Path(found).is_file():
            raise BackupError(
                f"{name} not found: install the PostgreSQL client of the server's major version "
                "(Debian: postgresql-client) or set SILVER_BACKUP_PG_BIN_DIR"
            )
        return found

    def scrub(self, message: str) -> str:
        password = self.url.password
        if password:
            message = message.replace(str(password), REDACTED)
        return redact_text(message)


async def _run(
    server: PgServer, command: list[str], *, database: str | None, stdout: BinaryIO | None
) -> None:
    process = await asyncio.create_subprocess_exec(
        *command,
        env=server.environment(database),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout if stdout is not None else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
        why = server.scrub(lines[0] if lines else f"exit code {process.returncode}")
        raise BackupError(f"{Path(command[0]).name} failed: {why}")


async def pg_dump(server: PgServer, snapshot: str, target: BinaryIO) -> None:
    """Dump the live database as of `snapshot` (pg_export_snapshot) in pg_dump's custom format."""
    command = [
        server.tool("pg_dump"),
        "--format=custom",
        "--no-owner",
        "--no-privileges",
        f"--snapshot={snapshot}",
    ]
    await _run(server, command, database=None, stdout=target)


async def pg_restore(server: PgServer, dump: Path, database: str) -> None:
    command = [
        server.tool("pg_restore"),
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={database}",
        str(dump),
    ]
    await _run(server, command, database=database, stdout=None)


async def _admin(server: PgServer, statement: str) -> None:
    engine = create_async_engine(server.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def create_database(server: PgServer, name: str) -> None:
    if not DATABASE_NAME.fullmatch(name):
        raise BackupError(f"{name!r} is not a scratch database name")
    try:
        await _admin(server, f'CREATE DATABASE "{name}"')
    except Exception as exc:
        raise BackupError(
            f"cannot create the scratch database {name}: {server.scrub(str(exc).splitlines()[0])} "
            "(the database user needs CREATEDB)"
        ) from None


async def drop_database(server: PgServer, name: str) -> None:
    if DATABASE_NAME.fullmatch(name):
        await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
