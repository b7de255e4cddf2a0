"""What every `silver-auth` command shares: output, one-line failures, settings and the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from silver_auth.core.errors import ProblemError
from silver_auth.core.redaction import redact_text
from silver_auth.settings import DEV_SECRETS_FILE, Settings, environment_settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

T = TypeVar("T")
# soft_wrap: a line stays one line whatever the terminal width (paths and commands stay copyable)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    # escape: the message may carry user input (an email, a path) that must not be read as rich markup
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def settings_or_exit(*, new_database: bool = False, generate: bool = True) -> Settings:
    """load_settings(), with a bad setting reported in one line that names it (never its value).

    Unless `generate`, development's secrets are read from the data dir when they are there and never
    created (a command that only looks, like doctor, writes nothing).

    Unless `new_database` (migrate, dev, serve), the embedded default's database must exist already: a
    command run from another directory would otherwise make a new, empty data dir there and fail on
    it (the data dir is `.silver` in the working directory unless SILVER_DATA_DIR says otherwise)."""
    try:
        if not new_database:
            _embedded_database_exists(environment_settings())
        if not generate:
            settings = environment_settings()
            if settings.is_production or not (settings.data_dir / DEV_SECRETS_FILE).exists():
                return settings
        return load_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        raise fail(f"invalid setting {problems}") from None
    except (OSError, ValueError) as exc:  # e.g. an unreadable or corrupt data dir / secrets.json
        raise fail(
            f"cannot load settings: {type(exc).__name__}: {redact_text(str(exc)).splitlines()[0]}"
        ) from None


def _embedded_database_exists(settings: Settings) -> None:
    if settings.is_sqlite and settings.database_url is None:
        database = (settings.data_dir / "silver.db").resolve()
        if not database.exists():
            raise fail(
                f"no database at {database}: run this where you run the service (make run), set "
                "SILVER_DATA_DIR to its data directory, or create one with `silver-auth migrate`"
            )


def run(
    work: Callable[[Settings], Coroutine[Any, Any, T]],
    *,
    new_database: bool = False,
    settings: Settings | None = None,
) -> T:
    """Run `work(settings)`; any failure exits non-zero with one redacted line, never a stack trace."""
    settings = settings or settings_or_exit(new_database=new_database)
    try:
        return asyncio.run(work(settings))
    except ProblemError as exc:
        raise fail(exc.detail) from None
    except OSError as exc:
        raise fail(f"database unreachable: {exc.strerror or type(exc).__name__}") from None
    except Exception as exc:  # one line, redacted: a CLI failure must not print secrets or a stack trace
        raise fail(
            f"{type(exc).__name__}: {redact_text(str(exc)).splitlines()[0] if str(exc) else ''}"
        ) from None


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The configured database for one command, disposed of when it ends; a database not migrated to
    this version is refused in one line that says what to run. Only the database: not the web app,
    which is slow to import, nor secrets a command does not need."""
    from silver_auth.db.engine import create_engine, create_sessionmaker  # noqa: PLC0415 - keep `--help` fast
    from silver_auth.db.migrate import is_current  # noqa: PLC0415

    engine = create_engine(settings)
    try:
        if not await is_current(engine):
            raise ProblemError(
                f"the database ({engine.url.render_as_string(hide_password=True)}) is not migrated to "
                "this version: run `silver-auth migrate` first"
            )
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


def in_transaction(work: Callable[[AsyncSession], Coroutine[Any, Any, T]]) -> T:
    """Run `work(db)` in one transaction of the configured database: committed if it returns."""
    from silver_auth.db.session import transaction  # noqa: PLC0415

    async def with_db(settings: Settings) -> T:
        async with database(settings) as sessionmaker, transaction(sessionmaker) as db:
            return await work(db)

    return run(with_db)


ResolveOption = Annotated[
    list[str] | None,
    typer.Option(
        "--resolve",
        metavar="HOST:PORT:ADDRESS",
        help="Reach HOST:PORT at ADDRESS, keeping the name for TLS and the Host header (as curl's "
        "--resolve): check an edge before DNS points at it. Repeatable: one per host and port.",
    ),
]
"""`--resolve`, as `monitor` and `doctor` take it (silver_auth.ops.probing reads the entries)."""
