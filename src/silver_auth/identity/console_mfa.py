"""TOTP MFA of console accounts: enrolment, recovery codes, disabling, and checking a second factor.

The secret is sealed at rest, bound to its owner (G17); recovery codes are stored as keyed hashes and
are single-use; a TOTP code is accepted once (its time step is stored). Every failed code is throttled
per account and per IP and audited (identity/failures.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.crypto import keyed_hash, seal, unseal
from silver_auth.core.errors import Conflict, InvalidInput, ProblemError
from silver_auth.core.ids import new_id
from silver_auth.identity import failures, mfa, throttle, totp
from silver_auth.identity.models import Account, RecoveryCode, TotpFactor
from silver_auth.identity.passwords import verify_password
from silver_auth.sessions import service as sessions
from silver_auth.sessions.models import ConsoleSession
from silver_auth.settings import Settings

ISSUER = "SEQN Auth"


@dataclass(frozen=True, slots=True)
class MfaStatus:
    enabled: bool
    confirmed_at: datetime | None
    pending: bool
    """An enrolment was started and not yet confirmed."""
    recovery_codes_remaining: int


@dataclass(frozen=True, slots=True)
class Enrolment:
    """Shown once, when enrolment starts: the secret, its otpauth:// URI and the URI as an SVG QR code."""

    secret: str
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True, slots=True)
class Deps:
    """What the MFA operations need besides the request's transaction."""

    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings


def _context(owner_id: str) -> str:
    # AAD: a sealed secret copied onto another owner's row does not open (G17).
    return f"totp:{owner_id}"


def _code_hash(settings: Settings, code: str) -> str:
    return keyed_hash(settings.secret("key_pepper"), "recovery:" + totp.normalize_code(code))


async def _factor(db: AsyncSession, owner_id: str) -> TotpFactor | None:
    factor: TotpFactor | None = await db.scalar(select(TotpFactor).where(TotpFactor.owner_id == owner_id))
    return factor


async def has_confirmed_totp(db: AsyncSession, owner_id: str) -> bool:
    factor = await _factor(db, owner_id)
    return factor is not None and factor.confirmed_at is not None


async def _remaining_codes(db: AsyncSession, owner_id: str) -> int:
    count = await db.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.owner_id == owner_id, RecoveryCode.used_at.is_(None))
    )
    return int(count or 0)


async def status(db: AsyncSession, account_id: str) -> MfaStatus:
    factor = await _factor(db, account_id)
    confirmed = factor.confirmed_at if factor else None
    return MfaStatus(
        enabled=confirmed is not None,
        confirmed_at=confirmed,
        pending=factor is not None and confirmed is None,
        recovery_codes_remaining=await _remaining_codes(db, account_id) if confirmed else 0,
    )


async def start_enrolment(db: AsyncSession, settings: Settings, account_id: str, email: str) -> Enrolment:
    """A new secret, pending until a first code confirms it; replaces an earlier pending enrolment."""
    factor = await _factor(db, account_id)
    if factor is not None and factor.confirmed_at is not None:
        raise Conflict("MFA is already enabled; disable it first to enrol a new authenticator")
    if factor is not None:
        await db.delete(factor)
        await db.flush()
    secret = totp.new_secret()
    db.add(
        TotpFactor(
            id=new_id("totp"),
            owner_id=account_id,
            secret_sealed=seal(settings.sealing_key_ring(), secret, _context(account_id)),
            confirmed_at=None,
            last_used_step=None,
            created_at=clock.now(),
        )
    )
    uri = totp.provisioning_uri(secret, email, ISSUER)
    return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))


async def _use_totp(db: AsyncSession, settings: Settings, factor: TotpFactor, code: str) -> bool:
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


async def _use_recovery_code(db: AsyncSession, settings: Settings, owner_id: str, code: str) -> bool:
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


async def _new_recovery_codes(db: AsyncSession, settings: Settings, owner_id: str) -> list[str]:
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


async def check_second_factor(
    db: AsyncSession,
    deps: Deps,
    owner_id: str,
    *,
    code: str | None,
    recovery_code: str | None,
    allow_recovery: bool,
    stage: str,
    actor: Actor,
    refusal: type[ProblemError],
    factor: TotpFactor | None = None,
) -> str:
    """Check a TOTP code (or a recovery code where allowed), throttled and audited; returns the method
    used. Any failure rolls the request back and raises `refusal`."""
    if (code is None) == (recovery_code is None) or (recovery_code is not None and not allow_recovery):
        raise InvalidInput("send `code`" + (" or `recovery_code`" if allow_recovery else ""))
    limits = failures.limits_for(deps.settings, "mfa", owner_id, actor.ip)
    await throttle.check(db, limits)
    factor = factor or await _factor(db, owner_id)
    method = "totp" if code is not None else "recovery_code"
    if factor is None:
        accepted = False
    elif code is not None:
        accepted = await _use_totp(db, deps.settings, factor, code)
    else:
        accepted = await _use_recovery_code(db, deps.settings, owner_id, recovery_code or "")
    if not accepted:
        await failures.refuse(
            db,
            deps.sessionmaker,
            limits,
            refusal(f"the {'code' if code is not None else 'recovery code'} was not accepted"),
            action=AuditAction.MFA_FAILED,
            actor=actor,
            target=owner_id,
            metadata={"stage": stage, "method": method},
        )
    await failures.succeeded(db, limits)
    if method == "recovery_code":
        await record(
            db,
            AuditAction.MFA_RECOVERY_CODE_USED,
            actor=actor,
            target=owner_id,
            metadata={"stage": stage, "remaining": await _remaining_codes(db, owner_id)},
        )
    return method


async def confirm_enrolment(
    db: AsyncSession, deps: Deps, account_id: str, session_id: str, code: str, *, actor: Actor
) -> list[str]:
    """The first correct code enables MFA; answers the recovery codes (once) and marks the current
    session as having passed a second factor."""
    factor = await _factor(db, account_id)
    if factor is None or factor.confirmed_at is not None:
        raise Conflict("no enrolment is pending: start one first")
    await check_second_factor(
        db,
        deps,
        account_id,
        code=code,
        recovery_code=None,
        allow_recovery=False,
        stage="enrolment",
        actor=actor,
        refusal=failures.CodeRefused,
        factor=factor,
    )
    factor.confirmed_at = clock.now()
    codes = await _new_recovery_codes(db, deps.settings, account_id)
    await db.execute(update(ConsoleSession).where(ConsoleSession.id == session_id).values(mfa=True))
    await record(db, AuditAction.MFA_ENROLLED, actor=actor, target=account_id, metadata={"method": "totp"})
    return codes


async def _enabled_factor(db: AsyncSession, account_id: str) -> TotpFactor:
    factor = await _factor(db, account_id)
    if factor is None or factor.confirmed_at is None:
        raise Conflict("MFA is not enabled")
    return factor


async def regenerate_recovery_codes(
    db: AsyncSession, deps: Deps, account_id: str, code: str, *, actor: Actor
) -> list[str]:
    """New recovery codes (the old ones stop working) for a current TOTP code."""
    factor = await _enabled_factor(db, account_id)
    await check_second_factor(
        db,
        deps,
        account_id,
        code=code,
        recovery_code=None,
        allow_recovery=False,
        stage="regenerate_recovery_codes",
        actor=actor,
        refusal=failures.CodeRefused,
        factor=factor,
    )
    codes = await _new_recovery_codes(db, deps.settings, account_id)
    await record(db, AuditAction.MFA_RECOVERY_CODES_REGENERATED, actor=actor, target=account_id)
    return codes


async def disable(
    db: AsyncSession,
    deps: Deps,
    account_id: str,
    session_id: str,
    *,
    password: str,
    code: str | None,
    recovery_code: str | None,
    actor: Actor,
) -> int:
    """Turn MFA off after the password AND a code (or recovery code); removes the factor and codes and
    ends every other session (G29). Returns how many sessions were revoked."""
    factor = await _enabled_factor(db, account_id)
    limits = failures.limits_for(deps.settings, "reauth", account_id, actor.ip)
    await throttle.check(db, limits)
    account = await db.get(Account, account_id)
    if account is None or not verify_password(account.password_hash, password):
        await failures.refuse(
            db,
            deps.sessionmaker,
            limits,
            failures.ReauthenticationFailed("the password is incorrect"),
            action=AuditAction.ACCOUNT_REAUTH_FAILED,
            actor=actor,
            target=account_id,
            metadata={"purpose": "mfa_disable"},
        )
    await check_second_factor(
        db,
        deps,
        account_id,
        code=code,
        recovery_code=recovery_code,
        allow_recovery=True,
        stage="disable",
        actor=actor,
        refusal=failures.CodeRefused,
        factor=factor,
    )
    await failures.succeeded(db, limits)
    await mfa.remove_factors(db, account_id)
    revoked = await sessions.revoke_all_sessions(db, account_id, keep_session_id=session_id)
    await record(
        db, AuditAction.MFA_DISABLED, actor=actor, target=account_id, metadata={"sessions_revoked": revoked}
    )
    return revoked
