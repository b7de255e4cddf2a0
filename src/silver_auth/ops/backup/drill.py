"""`silver-auth restore-drill` (G24, L4): the newest offsite backup, decrypted and restored into a scratch
database (a new Postgres database beside the live one, or a SQLite file), checked against its sealed
manifest (dump digest, schema revision, per-table row counts and checksums, audit chain), then proven
usable by the app itself (canary). The drill is recorded in the live database's `ops_runs`; the scratch
database is dropped; a failure raises `restore_drill_failed`, the next good drill clears it."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from silver_auth.alerts.service import clear_alert, raise_alert
from silver_auth.audit.chain import verify_chain
from silver_auth.db.migrate import alembic_config
from silver_auth.db.session import transaction
from silver_auth.ops.backup.canary import Canary, check_canary, read_canary, scratch_app
from silver_auth.ops.backup.credentials import BackupCredentials, read_credentials
from silver_auth.ops.backup.dump import Step, private_file
from silver_auth.ops.backup.errors import BackupError
from silver_auth.ops.backup.manifest import (
    MANIFEST_NAME,
    Manifest,
    chain_head,
    file_sha256,
    load,
    manifest_digest,
    schema_revision,
    seal_holds,
    table_digests,
)
from silver_auth.ops.backup.offsite import AgeFiles, Offsite, OffsiteCopy, Restic, offsite_targets
from silver_auth.ops.backup.postgres import PgServer, create_database, drop_database, pg_restore
from silver_auth.ops.backup.service import database_label
from silver_auth.ops.models import OpsRun
from silver_auth.ops.runs import begin_run, finish_run
from silver_auth.settings import Settings

FAILED_KIND = "restore_drill_failed"


def _quiet(_message: str) -> None:
    return None


@dataclass(slots=True)
class DrillReport:
    run_id: str
    backup_id: str | None = None
    source: str | None = None
    reference: str | None = None
    manifest: Manifest | None = None
    scratch: str | None = None
    checks: dict[str, str] = field(default_factory=dict)
    restore_ms: int | None = None

    def detail(self) -> dict[str, Any]:
        manifest = self.manifest
        return {
            "backup_id": self.backup_id,
            "backup_created_at": manifest.created_at.isoformat() if manifest else None,
            "source": self.source,
            "reference": self.reference,
            "database": manifest.database if manifest else None,
            "scratch": self.scratch,
            "schema_revision": manifest.schema_revision if manifest else None,
            "tables": len(manifest.tables) if manifest else None,
            "rows": manifest.total_rows if manifest else None,
            "restore_ms": self.restore_ms,
            "checks": self.checks,
        }


def code_head() -> str:
    return ",".join(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


def _pick(credentials: BackupCredentials, source: str | None) -> Offsite:
    targets = offsite_targets(credentials)
    if source is not None:
        wanted = {"restic": Restic, "age": AgeFiles}[source]
        targets = [target for target in targets if isinstance(target, wanted)]
        if not targets:
            raise BackupError(f"env.backup configures no {source} target")
    return targets[0]


async def _live_record(sessionmaker: async_sessionmaker[AsyncSession], backup_id: str) -> str | None:
    """The manifest digest this service recorded when it made `backup_id`, if the live database has it."""
    async with sessionmaker() as db:
        detail = await db.scalar(
            select(OpsRun.detail).where(
                OpsRun.kind == "backup", OpsRun.backup_id == backup_id, OpsRun.outcome == "succeeded"
            )
        )
    digest = (detail or {}).get("manifest_sha256")
    return str(digest) if digest else None


@dataclass(frozen=True, slots=True)
class Fetched:
    manifest: Manifest
    raw: bytes
    dump: Path
    dump_sha256: str | None
    """None when the dump file is missing."""
    dump_bytes: int


def _read_fetched(copy: OffsiteCopy, fetched: Path) -> Fetched:
    found = sorted(fetched.rglob(MANIFEST_NAME))
    if len(found) != 1:
        raise BackupError(f"the offsite copy {copy.reference} holds {len(found)} manifests, not one")
    manifest, raw = load(found[0])
    dump = found[0].parent / manifest.dump.name
    if not dump.is_file():
        return Fetched(manifest, raw, dump, None, 0)
    return Fetched(manifest, raw, dump, file_sha256(dump), dump.stat().st_size)


async def _verify_files(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    copy: OffsiteCopy,
    fetched_dir: Path,
    report: DrillReport,
) -> tuple[Manifest, Path]:
    fetched = await asyncio.to_thread(_read_fetched, copy, fetched_dir)
    manifest = report.manifest = fetched.manifest
    if manifest.backup_id != copy.backup_id:
        raise BackupError(f"the offsite copy named {copy.backup_id} holds backup {manifest.backup_id}")
    if not seal_holds(manifest, settings.secret("key_pepper")):
        raise BackupError(
            f"the manifest of {manifest.backup_id} was edited after the backup was made: its seal does "
            "not match (or SILVER_KEY_PEPPER is not the one the backup was made with)"
        )
    report.checks["manifest_seal"] = "matches"
    recorded = await _live_record(sessionmaker, manifest.backup_id)
    if recorded is not None and recorded != manifest_digest(fetched.raw):
        raise BackupError(
            f"the manifest of {manifest.backup_id} differs from the one recorded when it was made"
        )
    report.checks["live_record"] = "matches" if recorded else "not in this database (skipped)"
    if fetched.dump_sha256 is None:
        raise BackupError(f"the offsite copy of {manifest.backup_id} holds no {manifest.dump.name}")
    if fetched.dump_sha256 != manifest.dump.sha256 or fetched.dump_bytes != manifest.dump.bytes:
        raise BackupError(
            f"the dump of {manifest.backup_id} was edited after the backup was made: its sha256 is "
            f"{fetched.dump_sha256[:16]}…, the manifest records {manifest.dump.sha256[:16]}…"
        )
    report.checks["dump_digest"] = "matches"
    return manifest, fetched.dump


def _copy_private(source: Path, target: Path) -> None:
    with open(private_file(target), "wb") as handle, source.open("rb") as original:
        shutil.copyfileobj(original, handle)


@asynccontextmanager
async def _scratch(
    settings: Settings, manifest: Manifest, dump: Path, workdir: Path, report: DrillReport
) -> AsyncIterator[str]:
    """The dump restored into a scratch database; answers its SQLAlchemy URL; dropped after the block."""
    if manifest.database == "sqlite":
        target = workdir / "scratch.sqlite3"
        await asyncio.to_thread(_copy_private, dump, target)
        report.scratch = "sqlite temporary file"
        yield f"sqlite+aiosqlite:///{target}"
        return
    if settings.is_sqlite:
        raise BackupError(
            "a Postgres backup restores into Postgres: run the drill with the Postgres settings"
        )
    server = PgServer.from_settings(settings)
    name = f"{settings.restore_drill_database_prefix}{secrets.token_hex(6)}"
    await create_database(server, name)
    report.scratch = f"postgresql database {name} (dropped after)"
    try:
        await pg_restore(server, dump, name)
        yield server.url_of(name)
    finally:
        await drop_database(server, name)


async def _check_restored(url: str, manifest: Manifest, report: DrillReport) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            revision, head = await schema_revision(connection), code_head()
            if not revision == manifest.schema_revision == head:
                raise BackupError(
                    f"schema revision: the restored copy is at {revision}, the manifest says "
                    f"{manifest.schema_revision}, this version of silver-auth is at {head}"
                )
            report.checks["schema_revision"] = revision
            restored = await table_digests(connection)
            counted = [
                f"{name}: {restored[name].rows if name in restored else 'missing'} rows, "
                f"the manifest says {table.rows}"
                for name, table in manifest.tables.items()
                if name not in restored or restored[name].rows != table.rows
            ]
            if counted:
                raise BackupError(f"row counts differ from the manifest: {'; '.join(counted[:5])}")
            report.checks["row_counts"] = f"{len(manifest.tables)} tables, {manifest.total_rows} rows"
            differing = [
                name for name, table in manifest.tables.items() if restored[name].sha256 != table.sha256
            ]
            if differing:
                raise BackupError(f"checksums differ from the manifest in {', '.join(differing)}")
            report.checks["checksums"] = f"{len(manifest.tables)} tables match"
            if await chain_head(connection) != manifest.audit_chain:
                raise BackupError("the audit chain head differs from the one the manifest records")
        async with AsyncSession(engine) as db:
            chain = await verify_chain(db)
        if chain.broken:
            raise BackupError(f"the audit chain of the restored copy is broken: {chain.broken}")
        report.checks["audit_chain"] = f"{chain.checked} events verified"
    finally:
        await engine.dispose()


async def _drill(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    canary: Canary,
    source: str | None,
    report: DrillReport,
    step: Step,
) -> None:
    credentials = read_credentials(settings.backup_env_path)
    target = _pick(credentials, source)
    step("finding the newest offsite backup")
    copy = await target.newest()
    report.backup_id, report.source, report.reference = copy.backup_id, copy.kind, copy.reference
    with tempfile.TemporaryDirectory(prefix="silver-drill-") as scratch:  # mode 0700
        workdir = Path(scratch)
        fetched = workdir / "fetched"
        fetched.mkdir(mode=0o700)
        step(f"fetching and decrypting {copy.backup_id} ({copy.kind})")
        await target.fetch(copy, fetched)
        manifest, dump = await _verify_files(sessionmaker, settings, copy, fetched, report)
        step("restoring into a scratch database")
        started = time.monotonic()
        async with _scratch(settings, manifest, dump, workdir, report) as url:
            report.restore_ms = int((time.monotonic() - started) * 1000)
            step("comparing the restored copy with the manifest")
            await _check_restored(url, manifest, report)
            step("starting the app on the restored copy (canary key, canary sign-in)")
            async with scratch_app(settings, url, workdir) as base:
                report.checks |= await check_canary(base, canary)


async def run_drill(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    trigger: str = "command",
    source: str | None = None,
    canary_key_file: Path | None = None,
    canary_account: str | None = None,
    canary_password_file: Path | None = None,
    step: Step = _quiet,
) -> DrillReport:
    """Run one restore drill and record it in the live database; BackupError with one line on failure
    (recorded, and alerted, first)."""
    async with transaction(sessionmaker) as db:
        report = DrillReport((await begin_run(db, "restore_drill", trigger=trigger)).id)
    scrub: tuple[str, ...] = ()
    try:
        canary = read_canary(
            settings, key_file=canary_key_file, account=canary_account, password_file=canary_password_file
        )
        scrub = canary.secrets
        await _drill(sessionmaker, settings, canary, source, report, step)
    except Exception as exc:
        text = exc.detail if isinstance(exc, BackupError) else f"{type(exc).__name__}: {str(exc).strip()}"
        line = (text.splitlines() or [type(exc).__name__])[0]
        for secret in scrub:
            line = line.replace(secret, "[REDACTED]")
        async with transaction(sessionmaker) as db:
            await finish_run(
                db,
                report.run_id,
                succeeded=False,
                backup_id=report.backup_id,
                error=line,
                detail=report.detail(),
            )
        raise_alert(
            FAILED_KIND,
            database_label(settings),
            f"Restore drill failed: {line}",
            backup_id=report.backup_id or "none",
            guide="G24, L4",
        )
        raise BackupError(line) from None
    async with transaction(sessionmaker) as db:
        await finish_run(
            db, report.run_id, succeeded=True, backup_id=report.backup_id, detail=report.detail()
        )
    clear_alert(FAILED_KIND, database_label(settings), f"Restore drills succeed again ({report.backup_id}).")
    return report
