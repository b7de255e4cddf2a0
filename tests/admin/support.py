"""Helpers for the platform-admin tests: MFA sessions, platform admins, audit reads, planted factors."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from silver_auth.audit.models import AuditEvent
from silver_auth.core import clock
from silver_auth.core.crypto import Sealer, keyed_hash
from silver_auth.core.ids import new_id
from silver_auth.db.session import transaction
from silver_auth.mfa import totp
from silver_auth.mfa.models import RecoveryCode, TotpFactor
from tests.accounts.support import Mfa, enable_mfa, mfa_sign_in
from tests.factories import ConsoleUser, Harness
from tests.orgs.support import problem

__all__ = [
    "ADMIN",
    "admin_events",
    "make_mfa_session",
    "plant_totp",
    "platform_admin",
    "problem",
    "rows",
    "session_id",
]

ADMIN = "/admin/api"


def session_id(user: ConsoleUser) -> str:
    return str(user.ok("GET", "/console/api/me")["session_id"])


MFA_SECRETS: dict[str, Mfa] = {}
"""The TOTP secret and recovery codes of every account enrolled by make_mfa_session, by account id."""


def make_mfa_session(harness: Harness, user: ConsoleUser) -> ConsoleUser:
    """Enrol TOTP through the console API, then sign in again with a code: the new session passed MFA,
    the state the admin guard looks for (G6). Enrolling does not upgrade the session it happens in."""
    MFA_SECRETS[user.account_id] = enable_mfa(user)
    upgraded = mfa_sign_in(harness, user.email, MFA_SECRETS[user.account_id].secret)
    user.ok("POST", "/console/api/sign-out", 204)  # the password-only session is done with
    return upgraded


def platform_admin(harness: Harness, *, mfa: bool = True) -> ConsoleUser:
    """A signed-in member of SEQN-A, by default with an MFA session."""
    user = harness.user(platform_admin=True)
    return make_mfa_session(harness, user) if mfa else user


def plant_totp(harness: Harness, account_id: str, *, confirmed: bool = True) -> tuple[str, list[str]]:
    """Give an account a TOTP factor and recovery codes as enrolment would store them; returns the
    plain secret and codes (canaries: they must never come back out)."""
    secret = totp.new_secret()
    codes = totp.new_recovery_codes()
    ring = harness.settings.sealing_key_ring()
    pepper = harness.settings.secret("key_pepper")

    async def work() -> None:
        now = clock.now()
        async with transaction(harness.runtime.sessionmaker) as db:
            db.add(
                TotpFactor(
                    id=new_id("totp"),
                    owner_id=account_id,
                    secret_sealed=Sealer(ring).seal(secret, "totp:" + account_id),
                    confirmed_at=now if confirmed else None,
                    last_used_step=None,
                    created_at=now,
                )
            )
            for code in codes:
                db.add(
                    RecoveryCode(
                        id=new_id("rc"),
                        owner_id=account_id,
                        code_hash=keyed_hash(pepper, code),
                        created_at=now,
                    )
                )

    harness.run(work)
    return secret, codes


def admin_events(harness: Harness, action: str | None = None) -> list[AuditEvent]:
    """Audit events, oldest first (platform-level ones have no org, so no console route shows them)."""

    async def work() -> list[AuditEvent]:
        async with harness.runtime.sessionmaker() as db:
            query = select(AuditEvent).order_by(AuditEvent.row_id)
            if action is not None:
                query = query.where(AuditEvent.action == action)
            return list((await db.scalars(query)).all())

    return harness.run(work)


def rows(harness: Harness, model: Any, **where: Any) -> list[Any]:
    async def work() -> list[Any]:
        async with harness.runtime.sessionmaker() as db:
            query = select(model).filter_by(**where)
            return list((await db.scalars(query)).all())

    return harness.run(work)
