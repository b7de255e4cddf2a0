"""Refusals of console second factors and re-authentication: throttled per account and per IP, audited.

Every attempt is reserved before its secret is checked (throttle.attempt); a refused one writes
exactly one thing: its failure record and audit event (Attempt.failed rolls the request's transaction
back, then commits the audit event in its own).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, NoReturn

from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.passwords import verify_password
from silver_auth.audit.service import Actor, AuditAction
from silver_auth.core.crypto import keyed_hash
from silver_auth.core.errors import ProblemError
from silver_auth.settings import Settings
from silver_auth.throttle import service as throttle
from silver_auth.throttle.service import Attempt, Limit

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


def sign_in_limits(settings: Settings, email: str, ip: str | None) -> list[Limit]:
    """Password sign-in failures (see throttle.per_pair_ip_and_subject), counted against a
    keyed hash of the normalized email ("" when malformed) so unknown emails count the same way."""
    return throttle.per_pair_ip_and_subject(
        "console_signin",
        email_subject(settings, email),
        ip,
        max_per_pair=settings.console_sign_in_max_failures,
        max_per_ip=settings.console_sign_in_ip_max_failures,
        max_per_subject=settings.console_sign_in_email_max_failures,
        window=timedelta(minutes=settings.console_mfa_failure_window_minutes),
    )


def email_subject(settings: Settings, email: str) -> str:
    """A keyed hash of an email: failures and audit events of unknown emails never store the address."""
    return keyed_hash(settings.secret("key_pepper"), email)[:32]


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
    if not verify_password(password_hash, password):
        await refuse(
            db,
            attempt,
            ReauthenticationFailed(detail),
            action=AuditAction.ACCOUNT_REAUTH_FAILED,
            actor=actor,
            target=account_id,
            metadata={"purpose": purpose},
        )
