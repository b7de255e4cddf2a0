"""Two-step verification (TOTP and recovery codes) of end-users, on the shared identity primitives."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.crypto import keyed_hash, seal, unseal
from silver_auth.core.errors import Conflict, Unauthorized
from silver_auth.core.ids import new_id
from silver_auth.endusers.models import EndUser
from silver_auth.endusers.service import MFA_PER_IP, MFA_PER_USER, WINDOW, note_failure, org_of
from silver_auth.identity import throttle, totp
from silver_auth.identity.mfa import remove_factors
from silver_auth.identity.models import RecoveryCode, TotpFactor
from silver_auth.identity.passwords import verify_password
from silver_auth.settings import Settings


def _totp_context(user_id: str) -> str:
    return f"totp:{user_id}"


async def totp_factor(db: AsyncSession, user_id: str) -> TotpFactor | None:
    return await db.scalar(select(TotpFactor).where(TotpFactor.owner_id == user_id))


async def has_mfa(db: AsyncSession, user_id: str) -> bool:
    factor = await totp_factor(db, user_id)
    return factor is not None and factor.confirmed_at is not None


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str
    uri: str
    qr_svg: str


async def start_totp(db: AsyncSession, settings: Settings, user: EndUser, issuer: str) -> Enrolment:
    """A pending (unconfirmed) factor; replaces an earlier pending one. Refused when one is confirmed."""
    factor = await totp_factor(db, user.id)
    if factor is not None and factor.confirmed_at is not None:
        raise Conflict("two-step verification is already on")
    if factor is not None:
        await db.delete(factor)
        await db.flush()
    secret = totp.new_secret()
    db.add(
        TotpFactor(
            id=new_id("totp"),
            owner_id=user.id,
            secret_sealed=seal(settings.sealing_key_ring(), secret, _totp_context(user.id)),
            confirmed_at=None,
            last_used_step=None,
            created_at=clock.now(),
        )
    )
    uri = totp.provisioning_uri(secret, user.email, issuer)
    return Enrolment(secret, uri, totp.qr_svg(uri))


def _mfa_limits(user_id: str, ip: str | None) -> list[throttle.Limit]:
    limits = [throttle.Limit("enduser_mfa_user", user_id, MFA_PER_USER, WINDOW)]
    if ip:
        limits.append(throttle.Limit("enduser_mfa_ip", ip, MFA_PER_IP, WINDOW))
    return limits


async def check_second_factor(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    user: EndUser,
    code: str,
    *,
    ip: str | None,
    confirming: bool = False,
) -> None:
    """Accept a TOTP code (or, when not confirming, an unused recovery code); throttled and audited."""
    limits = _mfa_limits(user.id, ip)
    await throttle.check(db, limits)
    factor = await totp_factor(db, user.id)
    ok = False
    if factor is not None and (factor.confirmed_at is not None) != confirming:
        secret = unseal(settings.sealing_key_ring(), factor.secret_sealed, _totp_context(user.id))
        match = totp.verify(secret, code, last_used_step=factor.last_used_step)
        if match is not None:
            factor.last_used_step = match.step
            ok = True
        elif not confirming:
            ok = await _use_recovery_code(db, settings, user.id, code)
    if not ok:
        await note_failure(
            db,
            sessionmaker,
            limits,
            action=AuditAction.END_USER_MFA_FAILED,
            actor=Actor(user.id, ip),
            target=user.id,
            org_id=await org_of(db, user.project_id),
            project_id=user.project_id,
            metadata={"environment": user.environment},
        )
        raise Unauthorized("the code is not correct")
    await throttle.clear(db, limits[0].scope, limits[0].subject)


async def _use_recovery_code(db: AsyncSession, settings: Settings, user_id: str, code: str) -> bool:
    digest = keyed_hash(settings.secret("key_pepper"), totp.normalize_code(code))
    result = await db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.owner_id == user_id, RecoveryCode.code_hash == digest, RecoveryCode.used_at.is_(None)
        )
        .values(used_at=clock.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def confirm_totp(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    user: EndUser,
    code: str,
    *,
    ip: str | None,
) -> list[str]:
    """Confirm the pending factor with a first code; answers the recovery codes, shown once."""
    await check_second_factor(db, sessionmaker, settings, user, code, ip=ip, confirming=True)
    factor = await totp_factor(db, user.id)
    assert factor is not None
    now = clock.now()
    factor.confirmed_at = now
    await db.execute(delete(RecoveryCode).where(RecoveryCode.owner_id == user.id))
    codes = totp.new_recovery_codes()
    pepper = settings.secret("key_pepper")
    for raw in codes:
        db.add(
            RecoveryCode(
                id=new_id("rc"),
                owner_id=user.id,
                code_hash=keyed_hash(pepper, totp.normalize_code(raw)),
                used_at=None,
                created_at=now,
            )
        )
    await record(
        db,
        AuditAction.END_USER_MFA_ENABLED,
        actor=Actor(user.id, ip),
        org_id=await org_of(db, user.project_id),
        project_id=user.project_id,
        target=user.id,
    )
    return codes


async def disable_totp(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    user: EndUser,
    password: str,
    code: str,
    *,
    ip: str | None,
) -> None:
    """Turn two-step verification off: needs the password and a current code (re-authentication)."""
    if not verify_password(user.password_hash, password):
        raise Unauthorized("the password is not correct")
    await check_second_factor(db, sessionmaker, settings, user, code, ip=ip)
    await remove_factors(db, user.id)
    await record(
        db,
        AuditAction.END_USER_MFA_DISABLED,
        actor=Actor(user.id, ip),
        org_id=await org_of(db, user.project_id),
        project_id=user.project_id,
        target=user.id,
    )
