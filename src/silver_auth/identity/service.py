"""Console accounts of the builtin identity backend: creation, groups, password sign-in."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from silver_auth.core.ids import new_id
from silver_auth.core.text import has_control_characters
from silver_auth.identity.mfa import remove_factors
from silver_auth.identity.models import Account, AccountGroup
from silver_auth.identity.passwords import hash_password, verify_password
from silver_auth.sessions.service import revoke_all_sessions

PLATFORM_ADMIN_GROUP = "SEQN-A"
MAX_EMAIL = 320


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    malformed = not at or not local or "." not in domain or len(email) > MAX_EMAIL
    if malformed or any(c.isspace() for c in email) or has_control_characters(email):
        raise InvalidInput("email is not a valid address")
    return email


async def create_account(
    db: AsyncSession, email: str, password: str, *, groups: tuple[str, ...] = (), actor: Actor
) -> Account:
    account = Account(
        id=new_id("acc"),
        email=normalize_email(email),
        password_hash=hash_password(password),
        is_active=True,
        created_at=clock.now(),
    )
    db.add(account)
    try:
        await db.flush()
    except IntegrityError:
        raise Conflict("an account with this email already exists") from None
    for group in groups:
        db.add(AccountGroup(account_id=account.id, group_name=group))
    await record(
        db, AuditAction.ACCOUNT_CREATED, actor=actor, target=account.id, metadata={"groups": list(groups)}
    )
    return account


async def add_group(db: AsyncSession, email: str, group: str, *, actor: Actor) -> Account:
    account = await db.scalar(select(Account).where(Account.email == normalize_email(email)))
    if account is None:
        raise NotFound("no account with this email")
    if await db.get(AccountGroup, (account.id, group)) is None:
        db.add(AccountGroup(account_id=account.id, group_name=group))
        await record(
            db, AuditAction.ACCOUNT_GROUP_ADDED, actor=actor, target=account.id, metadata={"group": group}
        )
    return account


async def account_groups(db: AsyncSession, account_id: str) -> list[str]:
    rows = await db.scalars(select(AccountGroup.group_name).where(AccountGroup.account_id == account_id))
    return sorted(rows.all())


async def authenticate(db: AsyncSession, email: str, password: str) -> Account:
    """The same answer, in about the same time, whether or not the account exists."""
    try:
        normalized = normalize_email(email)
    except InvalidInput:
        normalized = ""
    account = await db.scalar(select(Account).where(Account.email == normalized)) if normalized else None
    valid = verify_password(account.password_hash if account else None, password)
    if account is None or not valid or not account.is_active:
        raise Unauthorized("email or password is incorrect")
    return account


# --- Account deactivation and MFA reset (issue 3; also written by the MFA work: keep one version) ---


async def deactivate_account(db: AsyncSession, account_id: str, *, actor: Actor) -> int:
    """Refuse the account's sign-ins from now on and revoke every session it has (G29); returns how
    many sessions were revoked."""
    account = await db.get(Account, account_id)
    if account is None:
        raise NotFound("no such account")
    account.is_active = False
    revoked = await revoke_all_sessions(db, account.id)
    await record(
        db,
        AuditAction.ACCOUNT_DEACTIVATED,
        actor=actor,
        target=account.id,
        metadata={"sessions_revoked": revoked},
    )
    return revoked


async def reset_account_mfa(db: AsyncSession, account_id: str, *, actor: Actor) -> int:
    """Remove the account's second factors and recovery codes and revoke its sessions (the MFA they
    proved is gone); returns how many factors were removed."""
    account = await db.get(Account, account_id)
    if account is None:
        raise NotFound("no such account")
    removed = await remove_factors(db, account.id)
    revoked = await revoke_all_sessions(db, account.id)
    await record(
        db,
        AuditAction.ACCOUNT_MFA_RESET,
        actor=actor,
        target=account.id,
        metadata={"factors_removed": removed, "sessions_revoked": revoked},
    )
    return removed
