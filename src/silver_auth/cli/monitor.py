"""`silver-auth monitor`: the launch checks (L1) against the live service, once (cron, a systemd timer)
or `--every` interval, with failures and recoveries sent to the alert channels (L2)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from silver_auth.cli.base import ResolveOption, database, err, fail, out, settings_or_exit
from silver_auth.core.redaction import redact_text
from silver_auth.settings import Settings

if TYPE_CHECKING:
    import ssl

    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from silver_auth.ops.monitor import MonitorReport, MonitorTarget

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def monitor(
    base_url: Annotated[
        str,
        typer.Argument(metavar="BASE_URL", help="The auth host's public URL, such as https://auth.seqn.in."),
    ],
    *,
    accounts_url: Annotated[
        str | None,
        typer.Option(
            "--accounts-url",
            metavar="URL",
            help="The console host, when it differs (https://accounts.seqn.in): the console checks go there, "
            "and the base URL's console routes must be refused too.",
        ),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            metavar="INTERVAL",
            help="Run again every interval (30s, 5m, 1h) until SIGTERM or SIGINT.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per run (a line each with --every).")
    ] = False,
    publishable_key: Annotated[
        str | None,
        typer.Option(
            "--publishable-key",
            help="The pk_… key client-config is read with (default: SILVER_MONITOR_PUBLISHABLE_KEY).",
        ),
    ] = None,
    secret_key_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-key-file",
            metavar="FILE",
            help="A file holding the canary sk_… key of the backend-key check, never printed "
            "(default: SILVER_MONITOR_SECRET_KEY_FILE).",
        ),
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            "--ca-file",
            help="Trust this CA bundle alone (a private CA); else the system store (or SSL_CERT_FILE).",
        ),
    ] = None,
    resolve: ResolveOption = None,
) -> None:
    """Check health, config, client-config, backend-key and the console boundary (L1); exit 0 when every
    check passes (or warns), 1 when any fails, 2 on bad arguments. Failures and recoveries go to
    SILVER_ALERT_URLS once per transition (L2); runs are recorded for `doctor` when a database is
    configured (without one, alerts go to the log only)."""
    from silver_auth.ops.monitor import MonitorTarget, TargetError, interval_seconds  # noqa: PLC0415
    from silver_auth.ops.probing import tls_context  # noqa: PLC0415

    settings = settings_or_exit(new_database=True, generate=False)
    try:
        target = MonitorTarget.parse(
            base_url,
            accounts_url=accounts_url,
            publishable_key=publishable_key or settings.monitor_publishable_key,
            secret_key_file=secret_key_file or settings.monitor_secret_key_file,
            resolve=resolve or (),
        )
        interval = interval_seconds(every) if every is not None else None
    except TargetError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    try:
        verify = tls_context(ca_file)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise fail(f"--ca-file {ca_file}: cannot load it as a CA bundle ({why})", EXIT_USAGE) from None
    try:
        code = asyncio.run(_watch(settings, target, verify, interval, as_json=as_json))
    except KeyboardInterrupt:
        raise fail("interrupted", EXIT_INTERRUPTED) from None
    except Exception as exc:  # one line, redacted, never a stack trace
        text = redact_text(str(exc)).strip()
        raise fail(f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}") from None
    raise typer.Exit(code)


async def _watch(
    settings: Settings, target: MonitorTarget, verify: ssl.SSLContext, interval: int | None, *, as_json: bool
) -> int:
    from silver_auth.core.logging import configure_logging  # noqa: PLC0415 - keep `--help` fast
    from silver_auth.ops.monitor import monitoring  # noqa: PLC0415

    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the migration check's chatter
    stop = asyncio.Event()
    if interval is not None:
        loop = asyncio.get_running_loop()
        for name in (signal.SIGTERM, signal.SIGINT):  # the run in progress ends, then the watch does
            loop.add_signal_handler(name, stop.set)
    async with _database_if_any(settings) as sessionmaker:
        if not settings.alert_channel_urls():
            err.print(
                "note: no alert channel (SILVER_ALERT_URLS): alerts go to the log only (L2)", markup=False
            )
        async with monitoring(target, settings, sessionmaker, verify) as watch:
            while True:
                report = await watch.run()
                _print(report, as_json=as_json)
                if interval is None:
                    return EXIT_FAILED if report.failed else 0
                with suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await stop.wait()
                if stop.is_set():
                    return 0


@asynccontextmanager
async def _database_if_any(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession] | None]:
    """The configured database, or None (said on stderr) when there is none or it cannot be used."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    if settings.is_sqlite:
        path = make_url(settings.sqlalchemy_url).database
        if not path or not await asyncio.to_thread(Path(path).exists):  # opening would create it
            _without_database(f"no database at {path}")
            yield None
            return
    async with AsyncExitStack() as stack:
        try:
            sessionmaker = await stack.enter_async_context(database(settings))
        except Exception as exc:
            text = redact_text(str(getattr(exc, "detail", "") or exc)).strip()
            _without_database(
                f"database unusable ({type(exc).__name__}: {text.splitlines()[0] if text else ''})"
            )
            yield None
            return
        yield sessionmaker


def _without_database(why: str) -> None:
    err.print(f"note: {why}: runs are not recorded, and alerts go to the log only", markup=False)


def _print(report: MonitorReport, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(report.as_json()) + "\n")
        sys.stdout.flush()
        return
    width = max(len(check.name) for check in report.checks)
    colours = {"pass": "green", "warn": "yellow", "fail": "red"}
    for check in report.checks:
        out.print(
            f"[{colours[check.outcome]}]{check.outcome.upper():4}[/] {check.name:{width}}  "
            f"{escape(check.reason)}  ({check.duration_ms} ms)"
        )
    failed = len(report.failed)
    summary = f"{report.target.base_url}: {report.overall}"
    summary += f", {failed} of {len(report.checks)} checks failed" if failed else ""
    summary += f"; recorded as {report.run_id}" if report.run_id else ""
    for verb, subjects in (("raised", report.raised), ("cleared", report.cleared)):
        if subjects:
            summary += f"; alert {verb}: {', '.join(subjects)}"
    out.print(summary, markup=False)


def register(app: typer.Typer) -> None:
    app.command()(monitor)
