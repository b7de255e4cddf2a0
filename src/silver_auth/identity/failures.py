"""Refusals of console second factors and re-authentication: throttled per account and per IP, audited.

A refused attempt writes exactly one thing: its failure record and audit event (throttle.note_failure
rolls the request's transaction back, then commits them in its own).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, NoReturn

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.audit.service import Actor, AuditAction
from silver_auth.core.errors import ProblemError
from silver_auth.identity import throttle
from silver_auth.identity.passwords import verify_password
from silver_auth.identity.throttle import Limit
from silver_auth.settings import Settings

Kind = Literal["mfa", "reauth"]


class SecondFactorRefused(ProblemError):
    """A wrong, reused or replayed code at sign-in."""

    status, slug, title = 401, "mfa-failed", "Second factor not accepted"


class CodeRefused(ProblemError):
    """A wrong, reused or replayed code while managing MFA (the caller stays signed in)."""

    status, slug, title = 403, "code-refused", "The code was not accepted"


class ReauthenticationFailed(ProblemError):
    status, slug, title = 403, "reauthentication-failed", "Re-authentication failed"


def limits_for(settings: Settings, kind: Kind, account_id: str, ip: str | None) -> list[Limit]:
    """Failures of one kind counted per account and, when the address is known, per client IP."""
    return throttle.per_subject_and_ip(
        f"console_{kind}",
        ("account", account_id),
        ip,
        max_per_subject=settings.console_mfa_max_failures,
        max_per_ip=settings.console_mfa_ip_max_failures,
        window=timedelta(minutes=settings.console_mfa_failure_window_minutes),
    )


async def refuse(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    limits: list[Limit],
    error: ProblemError,
    *,
    action: AuditAction,
    actor: Actor,
    target: str,
    metadata: dict[str, Any],
) -> NoReturn:
    """Roll the request back, record the failure (and its audit event), raise `error`."""
    await throttle.note_failure(
        db, sessionmaker, limits, action=action, actor=actor, target=target, metadata=metadata
    )
    raise error


async def check_password(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    limits: list[Limit],
    account_id: str,
    password_hash: str | None,
    password: str,
    *,
    detail: str,
    purpose: str,
    actor: Actor,
) -> None:
    """Re-authentication with the account's password (its stored hash): a wrong one is counted and
    audited, and refused (403 ReauthenticationFailed with `detail`)."""
    if not verify_password(password_hash, password):
        await refuse(
            db,
            sessionmaker,
            limits,
            ReauthenticationFailed(detail),
            action=AuditAction.ACCOUNT_REAUTH_FAILED,
            actor=actor,
            target=account_id,
            metadata={"purpose": purpose},
        )


async def succeeded(db: AsyncSession, limits: list[Limit]) -> None:
    """Forget the account's failures after a success (the IP's count stays: it may span accounts)."""
    await throttle.forget_subject(db, limits)
