"""Second factors (TOTP and recovery codes) of any owner, console account (acc_…) or end-user (usr_…).

The secret is sealed at rest, bound to its owner (G17); recovery codes are stored as keyed hashes and
are single-use; a TOTP code is accepted once (its time step is stored). Throttling, audit events and
wording belong to the callers (identity/console_mfa.py, endusers/mfa.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core import clock
from silver_auth.core.crypto import keyed_hash, seal, unseal
from silver_auth.core.errors import Conflict
from silver_auth.core.ids import new_id
from silver_auth.mfa import totp
from silver_auth.mfa.models import RecoveryCode, TotpFactor
from silver_auth.settings import Settings


@dataclass(frozen=True, slots=True)
class Enrolment:
    """Shown once, when enrolment starts: the secret, its otpauth:// URI and the URI as an SVG QR code."""

    secret: str
    otpauth_uri: str
    qr_svg: str


def _context(owner_id: str) -> str:
    # AAD: a sealed secret copied onto another owner's row does not open (G17).
    return f"totp:{owner_id}"


def _code_hash(settings: Settings, code: str) -> str:
    return keyed_hash(settings.secret("key_pepper"), "recovery:" + totp.normalize_code(code))


async def factor_of(db: AsyncSession, owner_id: str) -> TotpFactor | None:
    factor: TotpFactor | None = await db.scalar(select(TotpFactor).where(TotpFactor.owner_id == owner_id))
    return factor


async def has_confirmed_totp(db: AsyncSession, owner_id: str) -> bool:
    factor = await factor_of(db, owner_id)
    return factor is not None and factor.confirmed_at is not None


async def confirmed_owners(db: AsyncSession, owner_ids: list[str]) -> set[str]:
    """Which of these owners have a confirmed factor (one query for a page of them)."""
    if not owner_ids:
        return set()
    rows = await db.scalars(
        select(TotpFactor.owner_id).where(
            TotpFactor.owner_id.in_(owner_ids), TotpFactor.confirmed_at.is_not(None)
        )
    )
    return set(rows.all())


async def start_enrolment(
    db: AsyncSession, settings: Settings, owner_id: str, *, label: str, issuer: str, already_on: str
) -> Enrolment:
    """A new secret, pending until a first code confirms it; replaces an earlier pending enrolment.
    Refused (409, `already_on`) while a confirmed factor exists."""
    factor = await factor_of(db, owner_id)
    if factor is not None and factor.confirmed_at is not None:
        raise Conflict(already_on)
    if factor is not None:
        await db.delete(factor)
        await db.flush()
    secret = totp.new_secret()
    db.add(
        TotpFactor(
            id=new_id("totp"),
            owner_id=owner_id,
            secret_sealed=seal(settings.sealing_key_ring(), secret, _context(owner_id)),
            confirmed_at=None,
            last_used_step=None,
            created_at=clock.now(),
        )
    )
    uri = totp.provisioning_uri(secret, label, issuer)
    return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))


async def use_totp(db: AsyncSession, settings: Settings, factor: TotpFactor, code: str) -> bool:
    """Accept a code once: the stored step only moves forward, in one conditional update (no replay,
    even by two workers at the same time)."""
    secret = unseal(settings.sealing_key_ring(), factor.secret_sealed, _context(factor.owner_id))
    match = totp.verify(secret, code, last_used_step=factor.last_used_step, at=clock.now().timestamp())
    if match is None:
        return False
    moved = await db.execute(
        update(TotpFactor)
        .where(
            TotpFactor.id == factor.id,
            or_(TotpFactor.last_used_step.is_(None), TotpFactor.last_used_step < match.step),
        )
        .values(last_used_step=match.step)
        .execution_options(synchronize_session=False)
    )
    return bool(moved.rowcount)  # type: ignore[attr-defined]


async def use_recovery_code(db: AsyncSession, settings: Settings, owner_id: str, code: str) -> bool:
    """Spend an unused recovery code of the owner (one conditional update: single-use)."""
    used = await db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.owner_id == owner_id,
            RecoveryCode.code_hash == _code_hash(settings, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=clock.now())
    )
    return bool(used.rowcount)  # type: ignore[attr-defined]


async def use_code(
    db: AsyncSession,
    settings: Settings,
    factor: TotpFactor | None,
    *,
    totp_code: str | None,
    recovery_code: str | None,
) -> bool:
    """A TOTP code, else a recovery code, of the factor's owner; False without a factor."""
    if factor is None:
        return False
    if totp_code is not None and await use_totp(db, settings, factor, totp_code):
        return True
    if recovery_code is None:
        return False
    return await use_recovery_code(db, settings, factor.owner_id, recovery_code)


async def new_recovery_codes(db: AsyncSession, settings: Settings, owner_id: str) -> list[str]:
    """Replace every recovery code of the owner with 10 new ones, returned in clear this once."""
    await db.execute(delete(RecoveryCode).where(RecoveryCode.owner_id == owner_id))
    codes = totp.new_recovery_codes()
    now = clock.now()
    for code in codes:
        db.add(
            RecoveryCode(
                id=new_id("rc"),
                owner_id=owner_id,
                code_hash=_code_hash(settings, code),
                used_at=None,
                created_at=now,
            )
        )
    return codes


async def confirm(db: AsyncSession, settings: Settings, factor: TotpFactor) -> list[str]:
    """Mark a pending factor confirmed (after its first code was accepted); answers new recovery codes."""
    factor.confirmed_at = clock.now()
    return await new_recovery_codes(db, settings, factor.owner_id)


async def remaining_recovery_codes(db: AsyncSession, owner_id: str) -> int:
    count = await db.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.owner_id == owner_id, RecoveryCode.used_at.is_(None))
    )
    return int(count or 0)


async def remove_factors(db: AsyncSession, owner_id: str) -> int:
    """Delete every second factor (and recovery code) of an owner; returns the factors removed."""
    removed = await db.execute(delete(TotpFactor).where(TotpFactor.owner_id == owner_id))
    await db.execute(delete(RecoveryCode).where(RecoveryCode.owner_id == owner_id))
    return int(removed.rowcount)  # type: ignore[attr-defined]
