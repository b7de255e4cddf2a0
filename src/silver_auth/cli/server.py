"""Serving and migrating: `silver-auth migrate`, `serve` and `dev`."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from silver_auth.cli.base import database, err, fail, out, run, settings_or_exit
from silver_auth.settings import Settings


async def _migrate(settings: Settings) -> None:
    from silver_auth.db.engine import create_engine  # noqa: PLC0415 - keep `--help` fast
    from silver_auth.db.migrate import upgrade  # noqa: PLC0415

    # the engine itself, not `database()`: migrating needs no session
    engine = create_engine(settings)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def migrate() -> None:
    """Apply database migrations up to the newest."""
    run(_migrate, new_database=True)
    out.print("database is at the newest migration")


def _check_production(settings: Settings) -> None:
    from silver_auth.core.production_guard import production_violations  # noqa: PLC0415

    violations = production_violations(settings)
    if violations:
        err.print(
            f"refusing to start in production: {len(violations)} setting(s) break the hardening guide",
            soft_wrap=True,
        )
        for line in violations:  # soft_wrap: one line per violation, whatever the terminal width
            err.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(2)


@contextmanager
def _shared_metrics(settings: Settings, workers: int) -> Iterator[None]:
    """Several workers (or PROMETHEUS_MULTIPROC_DIR set): prometheus-client's multiprocess mode. Each
    worker writes its values into one fresh directory, and this process, which serves no request,
    serves their sum on the metrics listener. One worker serves its own metrics (the app's lifespan)."""
    if not settings.metrics_enabled or (workers == 1 and settings.prometheus_multiproc_dir is None):
        yield
        return
    directory = (settings.prometheus_multiproc_dir or settings.data_dir / "metrics").resolve()
    if directory.exists():  # an earlier run's files would be summed in
        shutil.rmtree(directory)
    directory.mkdir(parents=True, mode=0o700)
    # Before prometheus-client is first imported, here and in every worker (forked or spawned): it
    # picks its value store (memory or these files) once, at import.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    from silver_auth.core.logging import configure_logging  # noqa: PLC0415
    from silver_auth.core.metrics import metrics_listener  # noqa: PLC0415

    configure_logging(settings.log_level, settings.log_format)
    shared = settings.model_copy(update={"prometheus_multiproc_dir": directory})
    with metrics_listener(shared, process="serve"):
        yield


def _serve(settings: Settings, workers: int, server: str) -> None:
    _check_production(settings)
    with _shared_metrics(settings, workers):
        _run_server(settings, workers, server)


def _run_server(settings: Settings, workers: int, server: str) -> None:
    if server == "granian":
        from granian import Granian  # noqa: PLC0415
        from granian.constants import Interfaces  # noqa: PLC0415

        Granian(
            "silver_auth.app:asgi",
            address=settings.bind_host,
            port=settings.bind_port,
            workers=workers,
            interface=Interfaces.ASGI,
            factory=True,
            log_access=False,
        ).serve()
        return
    import uvicorn  # noqa: PLC0415

    uvicorn.run(
        "silver_auth.app:asgi",
        factory=True,
        host=settings.bind_host,
        port=settings.bind_port,
        workers=workers,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_level="warning",
        lifespan="on",
    )


def serve(
    workers: Annotated[int | None, typer.Option(help="Worker processes (default SILVER_WORKERS).")] = None,
    # granian: about twice uvicorn's throughput on our benchmark (docs/performance.md)
    server: Annotated[str, typer.Option(help="ASGI server: granian or uvicorn.")] = "granian",
) -> None:
    """Serve the API (production: behind Caddy, on a loopback or private address)."""
    settings = settings_or_exit(new_database=True)
    if server not in ("uvicorn", "granian"):
        raise fail("--server must be uvicorn or granian")
    _serve(settings, workers or settings.workers, server)


def dev() -> None:
    """The embedded default: migrate the SQLite database, then serve on 127.0.0.1:8000."""
    settings = settings_or_exit(new_database=True)
    accounts = run(_migrate_and_count_accounts, new_database=True)
    out.print(
        f"Silver Auth API (development, {settings.identity} identity) on "
        f"http://{settings.bind_host}:{settings.bind_port}  data: {settings.data_dir.resolve()}",
        markup=False,
    )
    console = f"{settings.accounts_url.rstrip('/')}/console/"
    if not accounts and settings.identity == "builtin":
        out.print(f"no console account yet: open {console}setup to create yours and your org", markup=False)
        out.print(
            f"or create one:  echo 'a long passphrase of yours' | {_command()} "
            "account create you@example.com --password-stdin",
            markup=False,
        )
    else:
        out.print(f"the console: open {console}", markup=False)
    _serve(settings, 1, "uvicorn")


async def _migrate_and_count_accounts(settings: Settings) -> int:
    from sqlalchemy import func, select  # noqa: PLC0415

    from silver_auth.accounts.models import Account  # noqa: PLC0415

    await _migrate(settings)
    async with database(settings) as sessionmaker, sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(Account)) or 0)


def _command() -> str:
    """This `silver-auth` as the user can type it from here: relative to the working directory when it
    lies below it (`.venv/bin/silver-auth`), else absolute."""
    script = Path(sys.argv[0]).resolve()
    if script.name != "silver-auth":
        return "silver-auth"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def register(app: typer.Typer) -> None:
    app.command()(migrate)
    app.command()(serve)
    app.command()(dev)
