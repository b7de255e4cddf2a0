"""TOTP MFA of console accounts: enrolment, recovery codes, disabling, and checking a second factor.

Storage and code checks are the shared second-factor service (identity/mfa.py: sealed secret, G17;
single-use recovery codes; replay-proof TOTP). Here: console wording, sessions marked as having passed
MFA, audit events, and the throttle per account and per IP (identity/failures.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts import failures, sessions
from silver_auth.accounts.models import Account
from silver_auth.accounts.sessions import ConsoleSession
from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core.errors import Conflict, InvalidInput, ProblemError
from silver_auth.mfa import factors as mfa
from silver_auth.mfa.factors import Enrolment, SecondFactorDeps
from silver_auth.mfa.models import TotpFactor
from silver_auth.throttle import policies

ISSUER = "SEQN Auth"


@dataclass(frozen=True, slots=True)
class MfaStatus:
    enabled: bool
    confirmed_at: datetime | None
    pending: bool
    """An enrolment was started and not yet confirmed."""
    recovery_codes_remaining: int


async def status(db: AsyncSession, account_id: str) -> MfaStatus:
    factor = await mfa.factor_of(db, account_id)
    confirmed = factor.confirmed_at if factor else None
    return MfaStatus(
        enabled=confirmed is not None,
        confirmed_at=confirmed,
        pending=factor is not None and confirmed is None,
        recovery_codes_remaining=await mfa.remaining_recovery_codes(db, account_id) if confirmed else 0,
    )


@asynccontextmanager
async def _reauthenticated(
    db: AsyncSession, deps: SecondFactorDeps, account_id: str, password: str, *, purpose: str, actor: Actor
) -> AsyncIterator[None]:
    """The account's password again, throttled and audited like every other re-authentication; the
    body runs once it is right (an error there releases the attempt: the password was right)."""
    limits = policies.console_second_factor(deps.settings, "reauth", account_id, actor.ip)
    async with deps.throttle.attempt(db, limits) as attempt:
        account = await db.get(Account, account_id)
        await failures.check_password(
            db,
            attempt,
            account_id,
            account.password_hash if account else None,
            password,
            detail="the password is incorrect",
            purpose=purpose,
            actor=actor,
        )
        yield
        await attempt.succeeded(db)


async def start_enrolment(
    db: AsyncSession, deps: SecondFactorDeps, account_id: str, email: str, password: str, *, actor: Actor
) -> Enrolment:
    """A new secret, pending until a first code confirms it; replaces an earlier pending enrolment.
    Needs the password (ASVS V6.4): a stolen cookie alone must not bind the thief's authenticator."""
    async with _reauthenticated(db, deps, account_id, password, purpose="mfa_enrol", actor=actor):
        return await deps.factors.start_enrolment(
            db,
            account_id,
            label=email,
            issuer=ISSUER,
            already_on="MFA is already enabled; disable it first to enrol a new authenticator",
        )


@dataclass(frozen=True, slots=True)
class SecondFactorStep:
    """Where a code is checked: the audit `stage`, the refusal raised, and whether a recovery code may
    stand in for the TOTP code."""

    stage: str
    refusal: type[ProblemError]
    allow_recovery: bool


SIGN_IN_STEP = SecondFactorStep("sign_in", failures.SecondFactorRefused, allow_recovery=True)
DISABLE_STEP = SecondFactorStep("disable", failures.CodeRefused, allow_recovery=True)


async def check_second_factor(
    db: AsyncSession,
    deps: SecondFactorDeps,
    owner_id: str,
    step: SecondFactorStep,
    *,
    code: str | None,
    recovery_code: str | None,
    actor: Actor,
    factor: TotpFactor | None = None,
) -> str:
    """Check a TOTP code (or a recovery code where allowed), throttled and audited; returns the method
    used. Any failure rolls the request back and raises `refusal`."""
    stage, refusal, allow_recovery = step.stage, step.refusal, step.allow_recovery
    if (code is None) == (recovery_code is None) or (recovery_code is not None and not allow_recovery):
        raise InvalidInput("send `code`" + (" or `recovery_code`" if allow_recovery else ""))
    limits = policies.console_second_factor(deps.settings, "mfa", owner_id, actor.ip)
    async with deps.throttle.attempt(db, limits) as attempt:
        factor = factor or await mfa.factor_of(db, owner_id)
        method = "totp" if code is not None else "recovery_code"
        if not await deps.factors.use_code(db, factor, totp_code=code, recovery_code=recovery_code):
            await failures.refuse(
                db,
                attempt,
                refusal(f"the {'code' if code is not None else 'recovery code'} was not accepted"),
                action=AuditAction.MFA_FAILED,
                actor=actor,
                target=owner_id,
                metadata={"stage": stage, "method": method},
            )
        await attempt.succeeded(db)
    if method == "recovery_code":
        await record(
            db,
            AuditAction.MFA_RECOVERY_CODE_USED,
            actor=actor,
            target=owner_id,
            metadata={"stage": stage, "remaining": await mfa.remaining_recovery_codes(db, owner_id)},
        )
    return method


async def _check_totp(
    db: AsyncSession, deps: SecondFactorDeps, factor: TotpFactor, code: str, *, stage: str, actor: Actor
) -> None:
    """A current TOTP code while managing MFA (no recovery code; a refusal keeps the caller signed in)."""
    step = SecondFactorStep(stage, failures.CodeRefused, allow_recovery=False)
    await check_second_factor(
        db, deps, factor.owner_id, step, code=code, recovery_code=None, actor=actor, factor=factor
    )


async def confirm_enrolment(
    db: AsyncSession, deps: SecondFactorDeps, account_id: str, session_id: str, code: str, *, actor: Actor
) -> list[str]:
    """The first correct code enables MFA and answers the recovery codes (once). The current session
    stays as it signed in: a device bound mid-session proves nothing about that sign-in, so an MFA
    session (G6) needs a new sign-in with a code."""
    factor = await mfa.factor_of(db, account_id)
    if factor is None or factor.confirmed_at is not None:
        raise Conflict("no enrolment is pending: start one first")
    await _check_totp(db, deps, factor, code, stage="enrolment", actor=actor)
    codes = await deps.factors.confirm(db, factor)
    await record(db, AuditAction.MFA_ENROLLED, actor=actor, target=account_id, metadata={"method": "totp"})
    return codes


async def _enabled_factor(db: AsyncSession, account_id: str) -> TotpFactor:
    factor = await mfa.factor_of(db, account_id)
    if factor is None or factor.confirmed_at is None:
        raise Conflict("MFA is not enabled")
    return factor


async def regenerate_recovery_codes(
    db: AsyncSession, deps: SecondFactorDeps, account_id: str, code: str, *, actor: Actor
) -> list[str]:
    """New recovery codes (the old ones stop working) for a current TOTP code."""
    factor = await _enabled_factor(db, account_id)
    await _check_totp(db, deps, factor, code, stage="regenerate_recovery_codes", actor=actor)
    codes = await deps.factors.new_recovery_codes(db, account_id)
    await record(db, AuditAction.MFA_RECOVERY_CODES_REGENERATED, actor=actor, target=account_id)
    return codes


async def disable(
    db: AsyncSession,
    deps: SecondFactorDeps,
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
    # A wrong code releases the password's attempt (it was right) and counts against the code limits.
    async with _reauthenticated(db, deps, account_id, password, purpose="mfa_disable", actor=actor):
        await check_second_factor(
            db,
            deps,
            account_id,
            DISABLE_STEP,
            code=code,
            recovery_code=recovery_code,
            actor=actor,
            factor=factor,
        )
    await mfa.remove_factors(db, account_id)
    revoked = await sessions.revoke_all_sessions(db, account_id, keep_session_id=session_id)
    # The kept session no longer stands on a factor the account has (G6: no admin access from it).
    await db.execute(update(ConsoleSession).where(ConsoleSession.id == session_id).values(mfa=False))
    await record(
        db, AuditAction.MFA_DISABLED, actor=actor, target=account_id, metadata={"sessions_revoked": revoked}
    )
    return revoked
