"""`silver-auth backup`, `restore-drill` and `backup-env`: local and encrypted offsite backups (G22, G23,
L3) and the restore drills that prove them (G24, L4). Progress goes to stderr (Rich), results to stdout
(`--json` for scripts); a failure is one line on stderr and a non-zero exit, recorded in `ops_runs`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from silver_auth.cli.base import database, err, fail, out, run
from silver_auth.settings import Settings, environment_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")]


class Source(StrEnum):
    restic = "restic"
    age = "age"


@asynccontextmanager
async def _live(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The live database with the alert dispatcher running, so a failure's alert reaches the channels.
    Logs stay at errors: the command's own output is its one line (the alert is recorded and sent)."""
    from silver_auth.alerts.dispatcher import dispatching  # noqa: PLC0415 - keep `--help` fast
    from silver_auth.core.logging import configure_logging  # noqa: PLC0415

    configure_logging("ERROR", settings.log_format)
    async with database(settings) as sessionmaker, dispatching(sessionmaker, settings):
        yield sessionmaker


def _progress() -> tuple[Any, Callable[[str], None]]:
    status = err.status("starting")

    def step(message: str) -> None:
        status.update(message)

    return status, step


def _finish(outcome: dict[str, Any] | str, as_json: bool, summary: Callable[[dict[str, Any]], str]) -> None:
    """Print the result; a failure (a str) exits 1 with its line (and, with --json, the JSON too)."""
    if isinstance(outcome, str):
        if as_json:
            out.print(json.dumps({"ok": False, "error": outcome}), markup=False)
        raise fail(outcome)
    if as_json:
        out.print(json.dumps({"ok": True, **outcome}, default=str), markup=False)
    else:
        out.print(summary(outcome), markup=False)


def backup(
    local_only: Annotated[
        bool,
        typer.Option("--local-only", help="Make the local copy only, no offsite copy (G22 wants both)."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Dump the database consistently (pg_dump, or SQLite's online backup) with a sealed manifest (row
    counts, per-table checksums, schema revision, audit chain head) into SILVER_BACKUP_DIR, send the
    encrypted offsite copy (restic or age, from env.backup, which must be mode 0600: G23), then delete
    local copies beyond SILVER_BACKUP_KEEP_LOCAL. Recorded in ops_runs; a failure raises an alert."""
    from silver_auth.ops.backup.errors import BackupError  # noqa: PLC0415
    from silver_auth.ops.backup.service import run_backup  # noqa: PLC0415

    async def work(settings: Settings) -> dict[str, Any] | str:
        async with _live(settings) as sessionmaker:
            status, step = _progress()
            with status:
                try:
                    report = await run_backup(sessionmaker, settings, local_only=local_only, step=step)
                except BackupError as exc:
                    return exc.detail
            return {"run_id": report.run_id, "backup_id": report.backup_id, **report.detail()}

    def summary(result: dict[str, Any]) -> str:
        offsite = (
            ", ".join(f"{copy['kind']} {copy['reference']}" for copy in result["offsite"])
            or "none (--local-only)"
        )
        return (
            f"backup {result['backup_id']}: {result['tables']} tables, {result['rows']} rows, "
            f"{result['dump_bytes']} bytes in {result['local_directory']}; offsite: {offsite}"
            + (
                f"; deleted old local copies: {', '.join(result['deleted_local'])}"
                if result["deleted_local"]
                else ""
            )
        )

    _finish(run(work), as_json, summary)


def restore_drill(
    source: Annotated[
        Source | None,
        typer.Option(help="Which offsite copy to drill when env.backup names both (default: restic)."),
    ] = None,
    canary_key_file: Annotated[
        Path | None,
        typer.Option(
            help="A file holding the canary sk_… key (default: SILVER_RESTORE_DRILL_CANARY_KEY_FILE)."
        ),
    ] = None,
    canary_account: Annotated[
        str | None,
        typer.Option(
            help="The canary console account's email (default: SILVER_RESTORE_DRILL_CANARY_ACCOUNT)."
        ),
    ] = None,
    canary_password_file: Annotated[
        Path | None,
        typer.Option(
            help="A file holding the canary account's password "
            "(default: SILVER_RESTORE_DRILL_CANARY_PASSWORD_FILE)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Restore the newest offsite backup into a scratch database and prove it: the manifest's seal and the
    dump's digest, the schema revision, every table's row count and checksum, the audit hash chain, then
    the app started on the copy verifies the canary key and signs the canary account in. Recorded in
    ops_runs; the scratch database is dropped; a failure raises an alert (G24, L4)."""
    from silver_auth.ops.backup.drill import run_drill  # noqa: PLC0415
    from silver_auth.ops.backup.errors import BackupError  # noqa: PLC0415

    async def work(settings: Settings) -> dict[str, Any] | str:
        async with _live(settings) as sessionmaker:
            status, step = _progress()
            with status:
                try:
                    report = await run_drill(
                        sessionmaker,
                        settings,
                        source=source.value if source else None,
                        canary_key_file=canary_key_file,
                        canary_account=canary_account,
                        canary_password_file=canary_password_file,
                        step=step,
                    )
                except BackupError as exc:
                    return exc.detail
            return {"run_id": report.run_id, **report.detail()}

    def summary(result: dict[str, Any]) -> str:
        checks = "; ".join(f"{name}: {value}" for name, value in result["checks"].items())
        return f"restore drill of {result['backup_id']} ({result['source']}) passed: {checks}"

    _finish(run(work), as_json, summary)


def backup_env(
    restic_repository: Annotated[
        str | None, typer.Option(help="A restic repository (any backend); a strong password is generated.")
    ] = None,
    age_recipient: Annotated[
        str | None, typer.Option(help="The age public key (age1…) backups are encrypted to.")
    ] = None,
    age_dir: Annotated[
        Path | None, typer.Option(help="Where the age-encrypted backups go (a mounted remote).")
    ] = None,
    age_new_identity: Annotated[
        Path | None,
        typer.Option(
            help="Generate an age identity into this new file (0600) and encrypt to its public key."
        ),
    ] = None,
    age_identity_file: Annotated[
        Path | None, typer.Option(help="The age identity the restore drill decrypts with (where drills run).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing env.backup.")] = False,
) -> None:
    """Create env.backup (SILVER_BACKUP_ENV_FILE) mode 0600 (G23): a restic repository with a generated
    password, or an age recipient and directory. Prints what it configured, never a secret: keep a copy of
    the file (and of any age identity) offline, or the offsite copies cannot be read after a disaster."""
    from silver_auth.ops.backup.credentials import write_env_backup  # noqa: PLC0415
    from silver_auth.ops.backup.errors import BackupError  # noqa: PLC0415

    try:
        path = environment_settings().backup_env_path  # reads the settings, writes nothing else
    except ValidationError:
        raise fail("invalid settings: `silver-auth backup` names the one at fault") from None
    try:
        done = write_env_backup(
            path,
            restic_repository=restic_repository,
            age_recipient=age_recipient,
            age_dir=age_dir,
            age_new_identity=age_new_identity,
            age_identity_file=age_identity_file,
            replace=force,
        )
    except BackupError as exc:
        raise fail(exc.detail) from None
    out.print(f"wrote {path} (mode 0600): {'; '.join(done)}", markup=False)
    out.print("keep a copy of it offline: without it the offsite copies cannot be read", markup=False)


def register(app: typer.Typer) -> None:
    app.command()(backup)
    app.command("restore-drill")(restore_drill)
    app.command("backup-env")(backup_env)
