"""Refusals of console second factors and re-authentication: throttled per account and per IP, audited.

Every attempt is reserved before its secret is checked (throttle.attempt); a refused one writes
exactly one thing: its failure record and audit event (Attempt.failed rolls the request's transaction
back, then commits the audit event in its own).
"""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.passwords import verify_password
from silver_auth.audit.service import Actor, AuditAction
from silver_auth.core.errors import ProblemError
from silver_auth.throttle.service import Attempt


class SecondFactorRefused(ProblemError):
    """A wrong, reused or replayed code at sign-in."""

    status, slug, title = 401, "mfa-failed", "Second factor not accepted"


class CodeRefused(ProblemError):
    """A wrong, reused or replayed code while managing MFA (the caller stays signed in)."""

    status, slug, title = 403, "code-refused", "The code was not accepted"


class ReauthenticationFailed(ProblemError):
    status, slug, title = 403, "reauthentication-failed", "Re-authentication failed"


async def refuse(
    db: AsyncSession,
    attempt: Attempt,
    error: ProblemError,
    *,
    action: AuditAction,
    actor: Actor,
    target: str,
    metadata: dict[str, Any],
) -> NoReturn:
    """Roll the request back, keep the attempt as a failure (and audit it), raise `error`."""
    await attempt.failed(db, action=action, actor=actor, target=target, metadata=metadata)
    raise error


async def check_password(
    db: AsyncSession,
    attempt: Attempt,
    account_id: str,
    password_hash: str | None,
    password: str,
    *,
    detail: str,
    purpose: str,
    actor: Actor,
) -> None:
    """Re-authentication with the account's password (its stored hash), inside a reserved attempt: a
    wrong one is counted and audited, and refused (403 ReauthenticationFailed with `detail`)."""
    if not await verify_password(password_hash, password, release=db):
        await refuse(
            db,
            attempt,
            ReauthenticationFailed(detail),
            action=AuditAction.ACCOUNT_REAUTH_FAILED,
            actor=actor,
            target=account_id,
            metadata={"purpose": purpose},
        )
