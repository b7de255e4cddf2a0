"""Second factors (TOTP and recovery codes) of console accounts and end-users: storage and removal."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.identity.models import RecoveryCode, TotpFactor


async def remove_factors(db: AsyncSession, owner_id: str) -> int:
    """Delete every second factor (and recovery code) of an owner; returns the factors removed."""
    removed = await db.execute(delete(TotpFactor).where(TotpFactor.owner_id == owner_id))
    await db.execute(delete(RecoveryCode).where(RecoveryCode.owner_id == owner_id))
    return int(removed.rowcount)  # type: ignore[attr-defined]
