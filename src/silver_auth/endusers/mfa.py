"""Two-step verification (TOTP and recovery codes) of end-users: the end-user throttle, audit events and
wording around the shared second-factor service (identity/mfa.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.passwords import verify_password
from silver_auth.audit.service import Actor, AuditAction
from silver_auth.core.errors import Unauthorized
from silver_auth.endusers.models import EndUser
from silver_auth.endusers.service import record_user_event
from silver_auth.mfa import factors as mfa
from silver_auth.mfa.factors import Enrolment, SecondFactorDeps, SecondFactors
from silver_auth.projects.service import org_of_project
from silver_auth.throttle import policies
from silver_auth.throttle.service import Attempt

has_mfa = mfa.has_confirmed_totp


async def start_totp(db: AsyncSession, factors: SecondFactors, user: EndUser, issuer: str) -> Enrolment:
    """A pending (unconfirmed) factor; replaces an earlier pending one. Refused when one is confirmed."""
    return await factors.start_enrolment(
        db,
        user.id,
        label=user.email,
        issuer=issuer,
        already_on="two-step verification is already on",
    )


async def check_second_factor(
    db: AsyncSession,
    deps: SecondFactorDeps,
    user: EndUser,
    code: str,
    *,
    ip: str | None,
    confirming: bool = False,
) -> None:
    """Accept a TOTP code (or, when not confirming, an unused recovery code); throttled and audited."""
    limits = policies.end_user_second_factor(deps.settings, "mfa", user.id, ip)
    async with deps.throttle.attempt(db, limits) as attempt:
        factor = await mfa.factor_of(db, user.id)
        if factor is not None and (factor.confirmed_at is not None) == confirming:
            factor = None  # confirming needs a pending factor; signing in, a confirmed one
        recovery = None if confirming else code
        if not await deps.factors.use_code(db, factor, totp_code=code, recovery_code=recovery):
            await _refused(db, attempt, user, AuditAction.END_USER_MFA_FAILED, ip)
            raise Unauthorized("the code is not correct")
        await attempt.succeeded(db)


async def _refused(
    db: AsyncSession, attempt: Attempt, user: EndUser, action: AuditAction, ip: str | None
) -> None:
    """Keep the attempt as a failure and audit it (the request's transaction rolls back)."""
    await attempt.failed(
        db,
        action=action,
        actor=Actor(user.id, ip),
        target=user.id,
        org_id=await org_of_project(db, user.project_id),
        project_id=user.project_id,
        metadata={"environment": user.environment},
    )


async def confirm_totp(
    db: AsyncSession,
    deps: SecondFactorDeps,
    user: EndUser,
    code: str,
    *,
    ip: str | None,
) -> list[str]:
    """Confirm the pending factor with a first code; answers the recovery codes, shown once."""
    await check_second_factor(db, deps, user, code, ip=ip, confirming=True)
    factor = await mfa.factor_of(db, user.id)
    assert factor is not None
    codes = await deps.factors.confirm(db, factor)
    await record_user_event(db, AuditAction.END_USER_MFA_ENABLED, user, actor=Actor(user.id, ip))
    return codes


async def disable_totp(
    db: AsyncSession,
    deps: SecondFactorDeps,
    user: EndUser,
    password: str,
    code: str,
    *,
    ip: str | None,
) -> None:
    """Turn two-step verification off: needs the password and a current code (re-authentication)."""
    # Re-authentication is throttled and audited like the console's; a right password and
    # a wrong code count against the second-factor limits instead.
    async with deps.throttle.attempt(
        db, policies.end_user_second_factor(deps.settings, "reauth", user.id, ip)
    ) as attempt:
        if not await verify_password(user.password_hash, password, release=db):
            await _refused(db, attempt, user, AuditAction.END_USER_REAUTH_FAILED, ip)
            raise Unauthorized("the password is not correct")
        await check_second_factor(db, deps, user, code, ip=ip)
        await attempt.succeeded(db)
    await mfa.remove_factors(db, user.id)
    await record_user_event(db, AuditAction.END_USER_MFA_DISABLED, user, actor=Actor(user.id, ip))
