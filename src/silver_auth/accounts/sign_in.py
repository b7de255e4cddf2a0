"""Console sign-in: the password step, and the second step for accounts with TOTP (API.md:
`{"email","password"}`, then `{"code"}` or `{"recovery_code"}` with the pending cookie)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts import sessions
from silver_auth.accounts.models import Account
from silver_auth.accounts.schemas import SignIn
from silver_auth.accounts.service import check_credentials, email_key
from silver_auth.accounts.sessions import ConsoleSessionCodec, ConsoleSessionIssued
from silver_auth.audit.service import Actor, AuditAction
from silver_auth.core.errors import InvalidInput, Unauthorized
from silver_auth.mfa.console import SIGN_IN_STEP, check_second_factor
from silver_auth.mfa.factors import SecondFactorDeps, has_confirmed_totp
from silver_auth.throttle import policies

METHODS = ["totp", "recovery_code"]


@dataclass(frozen=True, slots=True)
class SignInResult:
    account: Account
    issued: ConsoleSessionIssued
    pending: bool
    """True: the cookie is a pending sign-in that only a second factor can finish."""


async def sign_in(
    db: AsyncSession,
    deps: SecondFactorDeps,
    codec: ConsoleSessionCodec,
    body: SignIn,
    *,
    cookie: str | None,
    ip: str | None,
    user_agent: str | None,
) -> SignInResult:
    """Step one (email, password) signs in, or starts a pending sign-in for an account with TOTP;
    step two (code or recovery code, with the pending cookie) finishes it with a new session."""
    email, password, code, recovery_code = body.email, body.password, body.code, body.recovery_code
    if code is not None or recovery_code is not None:
        if email is not None or password is not None:
            raise InvalidInput("send either email and password, or a code with the pending sign-in")
        return await _second_step(
            db,
            deps,
            codec,
            code=code,
            recovery_code=recovery_code,
            cookie=cookie,
            ip=ip,
            user_agent=user_agent,
        )
    if email is None or password is None:
        missing = [name for name, value in (("email", email), ("password", password)) if value is None]
        raise InvalidInput(
            "send email and password",
            errors=[{"key": name, "message": "required", "source": "body"} for name in missing],
        )
    account = await _password_step(db, deps, email, password, ip)
    pending = await has_confirmed_totp(db, account.id)
    issued = await sessions.start_console_session(
        db, codec, deps.settings, account, ip=ip, user_agent=user_agent, awaiting_mfa=pending
    )
    return SignInResult(account, issued, pending)


async def _password_step(
    db: AsyncSession, deps: SecondFactorDeps, email: str, password: str, ip: str | None
) -> Account:
    """Email and password, throttled (policies.console_sign_in) and audited; the same
    answer and work (one argon2 verification) whether or not the account exists."""
    limits = policies.console_sign_in(deps.settings, deps.throttle.email_subject(email_key(email)), ip)
    async with deps.throttle.attempt(db, limits) as attempt:
        account, ok = await check_credentials(db, email, password)
        if account is None or not ok:
            account_id = account.id if account else None
            await attempt.failed(
                db,
                action=AuditAction.ACCOUNT_SIGN_IN_FAILED,
                actor=Actor(account_id or "anonymous", ip),
                target=account_id,
                # an unknown email is identified by its keyed hash only (never the address or password)
                metadata={} if account_id else {"email_hash": limits[-1].subject},
            )
            raise Unauthorized("email or password is incorrect")
        await attempt.succeeded(db)
    return account


async def _second_step(
    db: AsyncSession,
    deps: SecondFactorDeps,
    codec: ConsoleSessionCodec,
    *,
    code: str | None,
    recovery_code: str | None,
    cookie: str | None,
    ip: str | None,
    user_agent: str | None,
) -> SignInResult:
    resolved = await sessions.resolve_pending(db, codec, cookie)
    if resolved is None:
        raise Unauthorized(
            "no sign-in is waiting for a code (or it expired): sign in with your password again"
        )
    pending, account = resolved
    await check_second_factor(
        db,
        deps,
        account.id,
        SIGN_IN_STEP,
        code=code,
        recovery_code=recovery_code,
        actor=Actor(account.id, ip),
    )
    if not await sessions.finish_pending(db, pending):
        raise Unauthorized("this sign-in was already finished: sign in with your password again")
    issued = await sessions.start_console_session(
        db, codec, deps.settings, account, ip=ip, user_agent=user_agent, mfa=True
    )
    return SignInResult(account, issued, pending=False)
