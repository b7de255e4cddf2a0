"""The `silver-auth` command. Each subcommand exits non-zero with a one-line reason on failure."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from silver_auth.core.errors import ProblemError
from silver_auth.core.redaction import redact_text
from silver_auth.settings import Settings, load_settings

T = TypeVar("T")
app = typer.Typer(
    help="Silver Auth API (SEQN Auth).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
account_app = typer.Typer(help="Console accounts of the builtin identity backend.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(audit_app, name="audit")
# soft_wrap: a line stays one line whatever the terminal width (paths and commands stay copyable)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    # escape: the message may carry user input (an email, a path) that must not be read as rich markup
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


def _settings() -> Settings:
    """load_settings(), with a bad setting reported in one line that names it (never its value)."""
    try:
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


def _run(work: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    settings = _settings()
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


async def _migrate(settings: Settings) -> None:
    from silver_auth.db.engine import create_engine  # noqa: PLC0415 - keep `--help` fast
    from silver_auth.db.migrate import upgrade  # noqa: PLC0415

    engine = create_engine(settings)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    _run(_migrate)
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


def _serve(settings: Settings, workers: int, server: str) -> None:
    _check_production(settings)
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


@app.command()
def serve(
    workers: Annotated[int | None, typer.Option(help="Worker processes (default SILVER_WORKERS).")] = None,
    # granian: about twice uvicorn's throughput on our benchmark (docs/performance.md)
    server: Annotated[str, typer.Option(help="ASGI server: granian or uvicorn.")] = "granian",
) -> None:
    """Serve the API (production: behind Caddy, on a loopback or private address)."""
    settings = _settings()
    if server not in ("uvicorn", "granian"):
        raise fail("--server must be uvicorn or granian")
    _serve(settings, workers or settings.workers, server)


@app.command()
def dev() -> None:
    """The embedded default: migrate the SQLite database, then serve on 127.0.0.1:8000."""
    settings = _settings()
    _run(_migrate)
    out.print(
        f"Silver Auth API (development, {settings.identity} identity) on "
        f"http://{settings.bind_host}:{settings.bind_port}  data: {settings.data_dir.resolve()}",
        markup=False,
    )
    out.print("create a console account:  silver-auth account create you@example.com --password-stdin")
    _serve(settings, 1, "uvicorn")


@account_app.command("create")
def account_create(
    email: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    platform_admin: Annotated[
        bool, typer.Option("--platform-admin", help="Add to the SEQN-A group (G7).")
    ] = False,
) -> None:
    """Create a console account (builtin identity)."""
    if not password_stdin:
        raise fail("pass the password on stdin with --password-stdin (never as an argument: G15)")
    password = sys.stdin.readline().rstrip("\r\n")

    async def work(settings: Settings) -> str:
        from silver_auth.accounts.service import PLATFORM_ADMIN_GROUP, create_account  # noqa: PLC0415
        from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415
        from silver_auth.db.engine import create_engine, create_sessionmaker  # noqa: PLC0415
        from silver_auth.db.session import transaction  # noqa: PLC0415

        # only the database: not the web app (slow to import) nor the key pepper (not needed here)
        engine = create_engine(settings)
        try:
            async with transaction(create_sessionmaker(engine)) as db:
                groups = (PLATFORM_ADMIN_GROUP,) if platform_admin else ()
                account = await create_account(db, email, password, groups=groups, actor=CLI_ACTOR)
                return account.id
        finally:
            await engine.dispose()

    account_id = _run(work)
    out.print(
        f"created {account_id} ({email.strip().lower()}){' in SEQN-A' if platform_admin else ''}",
        markup=False,
    )


# --- account security (G7, G29): each change audited with the CLI actor ----------------------

group_app = typer.Typer(
    help="Identity-backend groups of an account (builtin), e.g. SEQN-A.", no_args_is_help=True
)
account_app.add_typer(group_app, name="group")


def _with_db(work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run `work(db)` in one transaction against the configured database, then exit cleanly."""

    async def run(settings: Settings) -> T:
        from silver_auth.db.engine import create_engine, create_sessionmaker  # noqa: PLC0415
        from silver_auth.db.session import transaction  # noqa: PLC0415

        engine = create_engine(settings)
        try:
            async with transaction(create_sessionmaker(engine)) as db:
                return await work(db)
        finally:
            await engine.dispose()

    return _run(run)


@account_app.command("deactivate")
def account_deactivate(email: str) -> None:
    """Deactivate an account and end all its sessions (offboarding, G29)."""

    async def work(db: Any) -> int:
        from silver_auth.accounts.service import account_by_email, deactivate_account  # noqa: PLC0415
        from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415

        account = await account_by_email(db, email)
        return await deactivate_account(db, account.id, actor=CLI_ACTOR)

    revoked = _with_db(work)
    out.print(f"deactivated {email.strip().lower()}; {revoked} session(s) revoked", markup=False)


@account_app.command("reset-mfa")
def account_reset_mfa(email: str) -> None:
    """Remove an account's TOTP and recovery codes (lost device) and end all its sessions (G29)."""

    async def work(db: Any) -> int:
        from silver_auth.accounts.service import account_by_email, reset_account_mfa  # noqa: PLC0415
        from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415

        account = await account_by_email(db, email)
        return await reset_account_mfa(db, account.id, actor=CLI_ACTOR)

    removed = _with_db(work)
    out.print(
        f"MFA reset for {email.strip().lower()}: {removed} factor(s) removed; every session revoked",
        markup=False,
    )


@account_app.command("revoke-sessions")
def account_revoke_sessions(email: str) -> None:
    """End every console session of an account (lost device, suspicious access: G29)."""

    async def work(db: Any) -> int:
        from silver_auth.accounts.service import account_by_email, revoke_account_sessions  # noqa: PLC0415
        from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415

        account = await account_by_email(db, email)
        return await revoke_account_sessions(db, account.id, actor=CLI_ACTOR)

    revoked = _with_db(work)
    out.print(f"{revoked} session(s) of {email.strip().lower()} revoked", markup=False)


@group_app.command("add")
def account_group_add(email: str, group: str) -> None:
    """Add an account to a group (SEQN-A makes it a platform admin: G7, L6)."""

    async def work(db: Any) -> None:
        from silver_auth.accounts.service import add_group  # noqa: PLC0415
        from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415

        await add_group(db, email, group, actor=CLI_ACTOR)

    _with_db(work)
    out.print(f"{email.strip().lower()} is in {group.strip()}", markup=False)


@group_app.command("remove")
def account_group_remove(email: str, group: str) -> None:
    """Take an account out of a group; leaving SEQN-A also ends its sessions (G7, G29)."""

    async def work(db: Any) -> int:
        from silver_auth.accounts.service import remove_group  # noqa: PLC0415
        from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415

        return await remove_group(db, email, group, actor=CLI_ACTOR)

    revoked = _with_db(work)
    suffix = f"; {revoked} session(s) revoked" if revoked else ""
    out.print(f"{email.strip().lower()} removed from {group.strip()}{suffix}", markup=False)


@audit_app.command("verify")
def audit_verify(
    max_unsealed_age: Annotated[
        int,
        typer.Option(
            help="Fail when an event has waited longer than this many seconds to be sealed (0: never).",
            min=0,
        ),
    ] = 300,
) -> None:
    """Walk the audit hash chain; name the first broken link; count the events not sealed yet."""
    from silver_auth.audit.chain import ChainReport, verify_chain  # noqa: PLC0415
    from silver_auth.core import clock  # noqa: PLC0415

    async def work(settings: Settings) -> ChainReport:
        from silver_auth.db.engine import create_engine, create_sessionmaker  # noqa: PLC0415

        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as db:
                return await verify_chain(db)
        finally:
            await engine.dispose()

    report = _run(work)
    checked, unsealed = report.checked, report.unsealed
    if report.broken:
        raise fail(f"audit chain broken after {checked} good events: {report.broken}")
    pending = ""
    if unsealed and report.oldest_unsealed is not None:
        waited = (clock.now() - report.oldest_unsealed).total_seconds()
        # G27: an unsealed event is not tamper-evident yet; one that waits long means no sealer runs.
        if max_unsealed_age and waited > max_unsealed_age:
            raise fail(
                f"audit chain intact ({checked} events) but {unsealed} event(s) not sealed, "
                f"the oldest for {waited:.0f} s: is a sealer running? (`silver-auth audit seal`)"
            )
        pending = f"; {unsealed} newer event(s) not sealed yet (not tamper-evident until they are)"
    out.print(f"audit chain intact: {checked} events verified{pending}", markup=False)


@audit_app.command("seal")
def audit_seal() -> None:
    """Link every committed, unsealed audit event into the hash chain (the app does this by itself)."""

    async def work(settings: Settings) -> tuple[int, int]:
        from sqlalchemy import select  # noqa: PLC0415

        from silver_auth.audit.chain import HEAD_ID, seal_pending  # noqa: PLC0415
        from silver_auth.audit.models import AuditChainHead  # noqa: PLC0415
        from silver_auth.db.engine import create_engine, create_sessionmaker  # noqa: PLC0415

        engine = create_engine(settings)
        try:
            sessionmaker = create_sessionmaker(engine)
            sealed = await seal_pending(sessionmaker)
            async with sessionmaker() as db:
                head = await db.scalar(select(AuditChainHead.seq).where(AuditChainHead.id == HEAD_ID))
            return sealed, int(head or 0)
        finally:
            await engine.dispose()

    sealed, head = _run(work)
    out.print(f"sealed {sealed} event(s); the chain ends at #{head}", markup=False)


@app.command()
def purge() -> None:
    """Delete expired sessions, codes and login states, and failure records past every throttle window."""

    async def work(db: Any) -> dict[str, int]:
        from silver_auth.ops.housekeeping import purge_expired  # noqa: PLC0415

        return await purge_expired(db)

    counts = _with_db(work)
    out.print("purged: " + ", ".join(f"{name} {count}" for name, count in counts.items()))


# --- Authentik (G8, G9) ------------------------------------------------------------------------------
authentik_app = typer.Typer(help="The Authentik identity engine.", no_args_is_help=True)
app.add_typer(authentik_app, name="authentik")


@authentik_app.command("check-token")
def authentik_check_token() -> None:
    """Print the provisioning token's effective permissions; exit 1 if it holds more than provisioning
    needs (G8), or lacks some of it."""

    async def work(settings: Settings) -> Any:
        from silver_auth.identity.providers.authentik import build_authentik_provider  # noqa: PLC0415

        if not settings.authentik_url or settings.authentik_token is None:
            raise ProblemError("set SILVER_AUTHENTIK_URL and SILVER_AUTHENTIK_TOKEN first")
        provider = build_authentik_provider(settings)
        try:
            return await provider.server_version(), await provider.token_report()
        finally:
            provider.close()

    version, report = _run(work)
    out.print(f"Authentik {version}; token user {report.username}", markup=False)
    out.print(f"roles: {', '.join(report.roles) or '(none)'}", markup=False)
    out.print("global permissions:", markup=False)
    for perm in report.global_permissions or ["(none)"]:
        out.print(f"  {perm}", markup=False)
    out.print("object permissions:", markup=False)
    for item in report.object_permissions:
        out.print(f"  {item.permission} on {item.model} {item.object_pk}", markup=False)
    if not report.object_permissions:
        out.print("  (none)", markup=False)
    for line in report.beyond:
        err.print(f"beyond the needed set: {line}", markup=False, highlight=False)
    for perm in report.missing:
        err.print(f"missing: {perm}", markup=False, highlight=False)
    if report.over_privileged:
        raise fail(
            f"the token is over-privileged ({len(report.beyond)} finding(s)); G8 wants least privilege"
        )
    if report.missing:
        raise fail(f"the token lacks {len(report.missing)} permission(s) provisioning needs")
    out.print("the token holds exactly what provisioning needs (G8)", markup=False)


@authentik_app.command("provision-missing")
def authentik_provision_missing() -> None:
    """Give every project without one its Authentik OAuth2 provider and application."""

    async def work(settings: Settings) -> list[str]:
        from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415
        from silver_auth.authentik.applications import AuthentikApplications, provision_missing  # noqa: PLC0415
        from silver_auth.db.engine import create_engine, create_sessionmaker  # noqa: PLC0415
        from silver_auth.identity.providers.authentik import build_authentik_provider  # noqa: PLC0415

        if settings.identity != "authentik" or not settings.authentik_url or settings.authentik_token is None:
            raise ProblemError(
                "set SILVER_IDENTITY=authentik, SILVER_AUTHENTIK_URL and SILVER_AUTHENTIK_TOKEN"
            )
        provider = build_authentik_provider(settings)
        engine = create_engine(settings)
        try:
            applications = AuthentikApplications(provider, settings)
            return await provision_missing(create_sessionmaker(engine), applications, actor=CLI_ACTOR)
        finally:
            await engine.dispose()
            provider.close()

    done = _run(work)
    for project_id in done:
        out.print(f"provisioned {project_id}", markup=False)
    out.print(f"{len(done)} project(s) provisioned in Authentik", markup=False)


def main() -> None:
    app()
