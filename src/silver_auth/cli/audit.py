"""`silver-auth audit …`: verify and seal the audit hash chain (G27)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from silver_auth.cli.base import database, fail, out, run
from silver_auth.settings import Settings

if TYPE_CHECKING:
    from silver_auth.audit.chain import ChainReport

audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


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
    from silver_auth.audit.chain import verify_chain  # noqa: PLC0415
    from silver_auth.core import clock  # noqa: PLC0415

    async def work(settings: Settings) -> ChainReport:
        async with database(settings) as sessionmaker, sessionmaker() as db:
            return await verify_chain(db)

    report = run(work)
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
    # L7: positions whose events the retention purge removed are walked across by their links.
    purged = f", {report.purged} older purged by retention" if report.purged else ""
    out.print(f"audit chain intact: {checked} events verified{purged}{pending}", markup=False)


@audit_app.command("seal")
def audit_seal() -> None:
    """Link every committed, unsealed audit event into the hash chain (the app does this by itself)."""

    async def work(settings: Settings) -> tuple[int, int]:
        from sqlalchemy import select  # noqa: PLC0415

        from silver_auth.audit.chain import HEAD_ID, seal_pending  # noqa: PLC0415
        from silver_auth.audit.models import AuditChainHead  # noqa: PLC0415

        async with database(settings) as sessionmaker:
            sealed = await seal_pending(sessionmaker)
            async with sessionmaker() as db:
                head = await db.scalar(select(AuditChainHead.seq).where(AuditChainHead.id == HEAD_ID))
            return sealed, int(head or 0)

    sealed, head = run(work)
    out.print(f"sealed {sealed} event(s); the chain ends at #{head}", markup=False)
