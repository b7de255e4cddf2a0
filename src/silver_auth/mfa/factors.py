"""Second factors (TOTP and recovery codes) of any owner, console account (acc_…) or end-user (usr_…).

The secret is sealed at rest, bound to its owner (G17); recovery codes are stored as keyed hashes and
are single-use; a TOTP code is accepted once (its time step is stored). Throttling, audit events and
wording belong to the callers (mfa/console.py, endusers/mfa.py). `SecondFactors` holds what the
secret-bearing operations use (a sealer, a keyed hasher); reads that need no secret are functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core import clock
from silver_auth.core.crypto import Hasher, Sealer
from silver_auth.core.errors import Conflict
from silver_auth.core.ids import new_id
from silver_auth.mfa import totp
from silver_auth.mfa.models import RecoveryCode, TotpFactor
from silver_auth.settings import Settings
from silver_auth.throttle.service import Throttle


@dataclass(frozen=True, slots=True)
class Enrolment:
    """Shown once, when enrolment starts: the secret, its otpauth:// URI and the URI as an SVG QR code."""

    secret: str
    otpauth_uri: str
    qr_svg: str


def totp_secret_context(owner_id: str) -> str:
    # AAD: a sealed secret copied onto another owner's row does not open (G17).
    return f"totp:{owner_id}"


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


class SecondFactors:
    """The operations that seal, open or hash a second factor's secrets."""

    def __init__(self, sealer: Sealer, code_hasher: Hasher) -> None:
        self._sealer = sealer
        self._code_hasher = code_hasher
        """Keyed hash (under the server pepper) of a recovery code: stored, and looked up."""

    def _code_hash(self, code: str) -> str:
        return self._code_hasher("recovery:" + totp.normalize_code(code))

    async def start_enrolment(
        self, db: AsyncSession, owner_id: str, *, label: str, issuer: str, already_on: str
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
                secret_sealed=self._sealer.seal(secret, totp_secret_context(owner_id)),
                confirmed_at=None,
                last_used_step=None,
                created_at=clock.now(),
            )
        )
        uri = totp.provisioning_uri(secret, label, issuer)
        return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))

    async def pending_enrolment(
        self, db: AsyncSession, owner_id: str, *, label: str, issuer: str
    ) -> Enrolment | None:
        """The enrolment started and not confirmed yet, shown again (a mistyped first code must not
        make the user scan a new secret); None when there is none."""
        factor = await factor_of(db, owner_id)
        if factor is None or factor.confirmed_at is not None:
            return None
        secret = self._sealer.unseal(factor.secret_sealed, totp_secret_context(owner_id))
        uri = totp.provisioning_uri(secret, label, issuer)
        return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))

    async def _use_totp(self, db: AsyncSession, factor: TotpFactor, code: str) -> bool:
        """Accept a code once: the stored step only moves forward, in one conditional update (no replay,
        even by two workers at the same time)."""
        secret = self._sealer.unseal(factor.secret_sealed, totp_secret_context(factor.owner_id))
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

    async def _use_recovery_code(self, db: AsyncSession, owner_id: str, code: str) -> bool:
        """Spend an unused recovery code of the owner (one conditional update: single-use)."""
        used = await db.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.owner_id == owner_id,
                RecoveryCode.code_hash == self._code_hash(code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=clock.now())
        )
        return bool(used.rowcount)  # type: ignore[attr-defined]

    async def use_code(
        self,
        db: AsyncSession,
        factor: TotpFactor | None,
        *,
        totp_code: str | None,
        recovery_code: str | None,
    ) -> bool:
        """A TOTP code, else a recovery code, of the factor's owner; False without a factor."""
        if factor is None:
            return False
        if totp_code is not None and await self._use_totp(db, factor, totp_code):
            return True
        if recovery_code is None:
            return False
        return await self._use_recovery_code(db, factor.owner_id, recovery_code)

    async def new_recovery_codes(self, db: AsyncSession, owner_id: str) -> list[str]:
        """Replace every recovery code of the owner with 10 new ones, returned in clear this once."""
        await db.execute(delete(RecoveryCode).where(RecoveryCode.owner_id == owner_id))
        codes = totp.new_recovery_codes()
        now = clock.now()
        for code in codes:
            db.add(
                RecoveryCode(
                    id=new_id("rc"),
                    owner_id=owner_id,
                    code_hash=self._code_hash(code),
                    used_at=None,
                    created_at=now,
                )
            )
        return codes

    async def confirm(self, db: AsyncSession, factor: TotpFactor) -> list[str]:
        """Mark a pending factor confirmed (after its first code was accepted); answers new recovery
        codes."""
        factor.confirmed_at = clock.now()
        return await self.new_recovery_codes(db, factor.owner_id)


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


@dataclass(frozen=True, slots=True)
class SecondFactorDeps:
    """What a throttled second-factor check needs besides the request's transaction; the same for the
    app's lifetime (the `second_factor_deps` dependency)."""

    throttle: Throttle
    settings: Settings
    """For the throttle's limits (`throttle.policies`)."""
    factors: SecondFactors
