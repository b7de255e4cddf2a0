"""`silver-auth backup` and the worker's scheduled backups (G22, L3): a consistent dump with its sealed
manifest into the local backup directory, then the encrypted offsite copy, then local retention. Each
run is recorded in `ops_runs`; a failed one raises `backup_failed`, the next good one clears it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.alerts.service import clear_alert, raise_alert
from silver_auth.core.ids import new_id
from silver_auth.core.redaction import redact_text
from silver_auth.db.session import transaction
from silver_auth.ops.backup.credentials import BackupCredentials, read_credentials
from silver_auth.ops.backup.dump import Step, dump_database
from silver_auth.ops.backup.errors import BackupError
from silver_auth.ops.backup.manifest import MANIFEST_NAME, Manifest, encode, manifest_digest, sealed
from silver_auth.ops.backup.offsite import BACKUP_ID_PREFIX, OffsiteCopy, offsite_targets
from silver_auth.ops.runs import begin_run, finish_run
from silver_auth.settings import Settings

FAILED_KIND = "backup_failed"


def _quiet(_message: str) -> None:
    return None


def database_label(settings: Settings) -> str:
    """The live database, named without its password: the subject of backup and drill alerts."""
    url = make_url(settings.sqlalchemy_url)
    if url.get_backend_name() == "sqlite":
        return f"sqlite {url.database}"
    return f"postgresql {url.host or 'localhost'}:{url.port or 5432}/{url.database}"


@dataclass(slots=True)
class BackupReport:
    run_id: str
    backup_id: str
    directory: Path
    manifest: Manifest
    manifest_sha256: str
    offsite: list[OffsiteCopy] = field(default_factory=list)
    deleted_local: list[str] = field(default_factory=list)
    local_only: bool = False

    def detail(self) -> dict[str, Any]:
        """What ops_runs keeps (and `--json` prints): counts, sizes and digests, never a credential."""
        manifest = self.manifest
        return {
            "database": manifest.database,
            "schema_revision": manifest.schema_revision,
            "tables": len(manifest.tables),
            "rows": manifest.total_rows,
            "row_counts": {name: table.rows for name, table in manifest.tables.items()},
            "dump_file": manifest.dump.name,
            "dump_bytes": manifest.dump.bytes,
            "dump_sha256": manifest.dump.sha256,
            "manifest_sha256": self.manifest_sha256,
            "audit_chain_seq": manifest.audit_chain.seq if manifest.audit_chain else None,
            "local_directory": str(self.directory),
            "local_only": self.local_only,
            "offsite": [{"kind": copy.kind, "reference": copy.reference} for copy in self.offsite],
            "deleted_local": self.deleted_local,
        }


def private_directory(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)  # the copies hold every password hash and sealed secret
    return path


def local_backups(root: Path) -> list[Path]:
    """The complete local backups, oldest first (backup ids sort by time)."""
    if not root.is_dir():
        return []
    return sorted(
        path
        for path in root.iterdir()
        if path.is_dir() and path.name.startswith(BACKUP_ID_PREFIX) and (path / MANIFEST_NAME).is_file()
    )


def prune_local(root: Path, keep: int) -> list[str]:
    """Delete the complete local backups beyond the newest `keep`; answers the ids deleted."""
    old = local_backups(root)[:-keep] if keep > 0 else []
    for path in old:
        shutil.rmtree(path)
    return [path.name for path in old]


async def _make(
    settings: Settings,
    credentials: BackupCredentials | None,
    report_ids: tuple[str, str],
    step: Step,
) -> BackupReport:
    run_id, backup_id = report_ids
    root = private_directory(settings.backup_directory)
    partial = root / f".{backup_id}.partial"
    partial.mkdir(mode=0o700)
    try:
        manifest = sealed(
            await dump_database(settings, backup_id, partial, step), settings.secret("key_pepper")
        )
        raw = encode(manifest)
        (partial / MANIFEST_NAME).write_bytes(raw)
        (partial / MANIFEST_NAME).chmod(0o600)
        directory = partial.rename(root / backup_id)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    report = BackupReport(
        run_id, backup_id, directory, manifest, manifest_digest(raw), local_only=credentials is None
    )
    if credentials is not None:
        for target in offsite_targets(credentials):
            step(f"sending the encrypted offsite copy ({type(target).__name__.lower()})")
            try:
                report.offsite.append(await target.send(directory, backup_id))
            except BackupError as exc:
                raise BackupError(f"{exc.detail}; the local copy is kept at {directory}") from None
    report.deleted_local = prune_local(root, settings.backup_keep_local)
    return report


def _failure_line(exc: BaseException, credentials: BackupCredentials | None) -> str:
    text = exc.detail if isinstance(exc, BackupError) else f"{type(exc).__name__}: {str(exc).strip()}"
    line = (text.splitlines() or [type(exc).__name__])[0]
    return credentials.scrub(line) if credentials is not None else redact_text(line)


async def run_backup(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    trigger: str = "command",
    local_only: bool = False,
    run_id: str | None = None,
    step: Step = _quiet,
) -> BackupReport:
    """Make one backup and record it (`run_id`: a run the schedule has claimed already). Raises
    BackupError with one line on failure, after recording it and raising the alert."""
    if run_id is None:
        async with transaction(sessionmaker) as db:
            run_id = (await begin_run(db, "backup", trigger=trigger)).id
    backup_id = new_id("bkp")
    credentials: BackupCredentials | None = None
    try:
        if not local_only:
            step("reading the offsite credentials (env.backup)")
            credentials = read_credentials(
                settings.backup_env_path
            )  # G23: refused before anything is written
        report = await _make(settings, credentials, (run_id, backup_id), step)
    except Exception as exc:
        line = _failure_line(exc, credentials)
        async with transaction(sessionmaker) as db:
            await finish_run(db, run_id, succeeded=False, backup_id=backup_id, error=line)
        raise_alert(
            FAILED_KIND,
            database_label(settings),
            f"Backup failed: {line}",
            backup_id=backup_id,
            trigger=trigger,
            guide="G22, L3",
        )
        raise BackupError(line) from None
    async with transaction(sessionmaker) as db:
        await finish_run(db, run_id, succeeded=True, backup_id=backup_id, detail=report.detail())
    clear_alert(FAILED_KIND, database_label(settings), f"Backups succeed again ({backup_id}).")
    return report
