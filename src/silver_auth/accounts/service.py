"""Console accounts of the builtin identity backend: creation, groups, password sign-in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts import failures
from silver_auth.accounts.models import Account, AccountGroup
from silver_auth.accounts.passwords import check_policy, hash_password, verify_password
from silver_auth.accounts.sessions import revoke_all_sessions
from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.errors import Conflict, InvalidInput, NotFound
from silver_auth.core.ids import new_id
from silver_auth.core.text import MAX_EMAIL, has_control_characters
from silver_auth.db.session import write_lock
from silver_auth.mfa import factors as mfa
from silver_auth.settings import Settings
from silver_auth.throttle import policies
from silver_auth.throttle.service import Throttle

PLATFORM_ADMIN_GROUP = "SEQN-A"
MAX_GROUP = 100


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
        password_hash=await hash_password(password, release=db),
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


def clean_group(group: str) -> str:
    group = group.strip()
    if not group or len(group) > MAX_GROUP or not group.isprintable():
        raise InvalidInput(f"a group name is 1 to {MAX_GROUP} printable characters")
    return group


async def account_by_email(db: AsyncSession, email: str) -> Account:
    account = await db.scalar(select(Account).where(Account.email == normalize_email(email)))
    if account is None:
        raise NotFound("no account with this email")
    return account


async def _account(db: AsyncSession, account_id: str) -> Account:
    account = await db.get(Account, account_id)
    if account is None:
        raise NotFound("no such account")
    return account


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One console account, as `silver-auth account list` shows it."""

    id: str
    email: str
    groups: list[str]
    mfa: bool
    active: bool
    created_at: datetime


async def any_account(db: AsyncSession) -> bool:
    """Whether any console account exists (before the first one, the console offers its first-run setup)."""
    return await db.scalar(select(Account.id).limit(1)) is not None


FIRST_ACCOUNT_LOCK = 0x5E7_0F1A  # pg_advisory_xact_lock key: one first-run setup at a time


async def no_account_yet_locked(db: AsyncSession) -> bool:
    """Whether no console account exists, asked under a lock held to the end of the transaction: two
    first-run setups at once create one first account, never two (the second sees the first)."""
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(select(func.pg_advisory_xact_lock(literal(FIRST_ACCOUNT_LOCK))))
    else:
        await write_lock(db)
    return not await any_account(db)


async def list_accounts(db: AsyncSession) -> list[AccountRow]:
    """Every console account, oldest first (three queries, whatever the count)."""
    accounts = list((await db.scalars(select(Account).order_by(Account.created_at, Account.id))).all())
    memberships: dict[str, list[str]] = {}
    for account_id, group in (
        await db.execute(select(AccountGroup.account_id, AccountGroup.group_name))
    ).all():
        memberships.setdefault(account_id, []).append(group)
    with_mfa = await mfa.confirmed_owners(db, [account.id for account in accounts])
    return [
        AccountRow(
            id=account.id,
            email=account.email,
            groups=sorted(memberships.get(account.id, [])),
            mfa=account.id in with_mfa,
            active=account.is_active,
            created_at=account.created_at,
        )
        for account in accounts
    ]


async def known_groups(db: AsyncSession) -> set[str]:
    """SEQN-A and every group some account is in."""
    rows = await db.scalars(select(AccountGroup.group_name).distinct())
    return {PLATFORM_ADMIN_GROUP, *rows.all()}


async def add_group(
    db: AsyncSession, email: str, group: str, *, actor: Actor, create: bool = False
) -> Account:
    """Put an account in a group. Group names are case-sensitive, and a mistyped one would silently
    grant nothing: a name that differs from a known group only in case is refused, and so is a name no
    account has yet unless `create`."""
    group = clean_group(group)
    known = await known_groups(db)
    if group not in known:
        near = sorted(name for name in known if name.casefold() == group.casefold())
        if near:
            raise InvalidInput(
                f"there is no group {group}; group names are case-sensitive: did you mean {near[0]}?"
            )
        if not create:
            raise NotFound(f"there is no group {group} yet; pass --create to make it")
    account = await account_by_email(db, email)
    if await db.get(AccountGroup, (account.id, group)) is None:
        db.add(AccountGroup(account_id=account.id, group_name=group))
        await record(
            db, AuditAction.ACCOUNT_GROUP_ADDED, actor=actor, target=account.id, metadata={"group": group}
        )
    return account


async def is_platform_admin(db: AsyncSession, account_id: str) -> bool:
    """Whether the account is in SEQN-A: one primary-key lookup, answered from the session's identity
    map when the request already made it (MFA and Authentik's word are the admin guard's to check)."""
    return await db.get(AccountGroup, (account_id, PLATFORM_ADMIN_GROUP)) is not None


async def account_groups(db: AsyncSession, account_id: str) -> list[str]:
    rows = await db.scalars(select(AccountGroup.group_name).where(AccountGroup.account_id == account_id))
    return sorted(rows.all())


def email_key(email: str) -> str:
    """The normalized email, or "" when it is malformed (no account has it)."""
    try:
        return normalize_email(email)
    except InvalidInput:
        return ""


async def check_credentials(db: AsyncSession, email: str, password: str) -> tuple[Account | None, bool]:
    """The account behind `email` (None if unknown) and whether the password is right and the account
    active: one argon2 verification whether or not the account exists (same work, ASVS V6.3.8)."""
    normalized = email_key(email)
    account = await db.scalar(select(Account).where(Account.email == normalized)) if normalized else None
    valid = await verify_password(account.password_hash if account else None, password, release=db)
    return account, account is not None and valid and account.is_active


async def remove_group(db: AsyncSession, email: str, group: str, *, actor: Actor) -> int:
    """Take an account out of a group; leaving `SEQN-A` also ends its sessions (G7, G29), whose
    count is returned (0 for other groups)."""
    group = clean_group(group)
    account = await account_by_email(db, email)
    removed = await db.execute(
        delete(AccountGroup).where(AccountGroup.account_id == account.id, AccountGroup.group_name == group)
    )
    if removed.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"the account is not in the group {group}")
    revoked = await revoke_all_sessions(db, account.id) if group == PLATFORM_ADMIN_GROUP else 0
    await record(
        db,
        AuditAction.ACCOUNT_GROUP_REMOVED,
        actor=actor,
        target=account.id,
        metadata={"group": group, "sessions_revoked": revoked},
    )
    return revoked


async def change_password(
    db: AsyncSession,
    throttle: Throttle,
    settings: Settings,
    account_id: str,
    *,
    keep_session_id: str,
    current_password: str,
    new_password: str,
    actor: Actor,
) -> int:
    """Re-authenticate, apply the policy, store the new hash and end every other session (ASVS V6.2.3,
    G29); returns how many were revoked. A wrong current password is throttled and audited."""
    check_policy(new_password)  # before the attempt: a refused new password is not a failed guess
    limits = policies.console_second_factor(settings, "reauth", account_id, actor.ip)
    async with throttle.attempt(db, limits) as attempt:
        account = await _account(db, account_id)
        await failures.check_password(
            db,
            attempt,
            account_id,
            account.password_hash,
            current_password,
            detail="the current password is incorrect",
            purpose="password_change",
            actor=actor,
        )
        account.password_hash = await hash_password(new_password, release=db)
        revoked = await revoke_all_sessions(db, account.id, keep_session_id=keep_session_id)
        await attempt.succeeded(db)
    await record(
        db,
        AuditAction.ACCOUNT_PASSWORD_CHANGED,
        actor=actor,
        target=account.id,
        metadata={"sessions_revoked": revoked},
    )
    return revoked


async def deactivate_account(db: AsyncSession, account_id: str, *, actor: Actor) -> int:
    """Deactivate an account and end all its sessions at once (G29); returns the sessions revoked."""
    account = await _account(db, account_id)
    account.is_active = False
    return await _end_sessions(db, account, AuditAction.ACCOUNT_DEACTIVATED, actor=actor)


async def reset_account_mfa(db: AsyncSession, account_id: str, *, actor: Actor) -> int:
    """Remove an account's second factors and recovery codes (lost device) and end all its sessions
    (G29); returns the factors removed. The account enrols again after its next sign-in."""
    account = await _account(db, account_id)
    removed = await mfa.remove_factors(db, account.id)
    await _end_sessions(db, account, AuditAction.ACCOUNT_MFA_RESET, actor=actor, factors_removed=removed)
    return removed


async def revoke_account_sessions(db: AsyncSession, account_id: str, *, actor: Actor) -> int:
    """End every session of an account (lost device, suspicious access: G29); returns the count."""
    return await _end_sessions(
        db, await _account(db, account_id), AuditAction.ACCOUNT_SESSIONS_REVOKED, actor=actor
    )


async def _end_sessions(
    db: AsyncSession, account: Account, action: AuditAction, *, actor: Actor, **metadata: int
) -> int:
    """Revoke every session of the account and audit `action` with the count (G29); returns it."""
    revoked = await revoke_all_sessions(db, account.id)
    await record(
        db, action, actor=actor, target=account.id, metadata={**metadata, "sessions_revoked": revoked}
    )
    return revoked
