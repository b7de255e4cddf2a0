"""`silver-auth secrets …`: the sealed secrets in the database (G17)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from silver_auth.cli.base import database, out, run
from silver_auth.settings import Settings

if TYPE_CHECKING:
    from silver_auth.ops.reseal import ResealReport

secrets_app = typer.Typer(help="Sealed secrets in the database.", no_args_is_help=True)


@secrets_app.command("reseal")
def secrets_reseal() -> None:
    """Seal every sealed value again under the first key of SILVER_SEALING_KEYS (after putting a new key
    first; the old one stays after it until this has run). Idempotent; prints counts, never a secret."""
    from silver_auth.core.crypto import Sealer  # noqa: PLC0415 - keep `--help` fast
    from silver_auth.core.errors import ProblemError  # noqa: PLC0415
    from silver_auth.ops.reseal import reseal_all  # noqa: PLC0415

    async def work(settings: Settings) -> ResealReport:
        ring = settings.sealing_key_ring()
        if not ring:
            raise ProblemError("SILVER_SEALING_KEYS holds no key")
        async with database(settings) as sessionmaker:
            return await reseal_all(sessionmaker, Sealer(ring))

    report = run(work)
    for kind, count in report.counts.items():
        line = f"{kind}: {count.resealed} resealed, {count.current} already under `{report.sealing_kid}`"
        if count.changed_meanwhile:
            line += f", {count.changed_meanwhile} changed meanwhile"
        out.print(line, markup=False)
