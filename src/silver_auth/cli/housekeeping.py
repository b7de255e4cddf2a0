"""`silver-auth purge`: housekeeping of expired rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from silver_auth.cli.base import in_transaction, out

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def purge() -> None:
    """Delete expired sessions, codes and login states, and failure records past every throttle window."""

    async def work(db: AsyncSession) -> dict[str, int]:
        from silver_auth.ops.housekeeping import purge_expired  # noqa: PLC0415

        return await purge_expired(db)

    counts = in_transaction(work)
    out.print("purged: " + ", ".join(f"{name} {count}" for name, count in counts.items()))


def register(app: typer.Typer) -> None:
    app.command()(purge)
