"""Platform-admin operations: org plans, support views, session revocation, identity proxy (G26-G29).

Support views are built field by field from ids, names, display prefixes and times; no secret, hash or
token column is ever read into them (G28).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.models import Account, AccountGroup
from silver_auth.accounts.service import account_groups
from silver_auth.accounts.sessions import list_sessions, revoke_all_sessions
from silver_auth.admin.schemas import (
    AccountSessionsRevoked,
    AdminAccountDetail,
    AdminAccountOrg,
    AdminAccountPage,
    AdminAccountSummary,
    AdminKey,
    AdminMember,
    AdminOrgDetail,
    AdminOrgPage,
    AdminOrgSummary,
    AdminProject,
    AdminSession,
    DirectoryGroupPage,
    DirectoryGroupPublic,
    DirectoryUserPage,
    DirectoryUserPublic,
    MfaReset,
    PlanChanged,
    QuotaUse,
)
from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.errors import Conflict, InvalidInput, NotFound
from silver_auth.core.text import has_control_characters
from silver_auth.identity.providers.base import DirectoryUser, IdentityProvider
from silver_auth.identity.providers.builtin import like_escaped
from silver_auth.keys.models import ApiKey
from silver_auth.orgs.models import Membership, Org
from silver_auth.orgs.service import list_members, orgs_of
from silver_auth.plans.service import PLANS, org_usage, plan_for
from silver_auth.projects.models import Project


def clean_search(search: str | None) -> str | None:
    """A search term, or None for none; control characters are refused (Postgres rejects NUL: a 500)."""
    if search is None or not search.strip():
        return None
    if has_control_characters(search):
        raise InvalidInput("q must not contain control characters")
    return search.strip()


def _next_offset(rows: Sequence[object], limit: int, offset: int) -> int | None:
    return offset + limit if len(rows) > limit else None


# --- orgs and plans ------------------------------------------------------------------------------


async def list_orgs(db: AsyncSession, *, search: str | None, limit: int, offset: int) -> AdminOrgPage:
    """Orgs whose name contains `search` (case-insensitive) or whose id is `search`, oldest first."""
    search = clean_search(search)
    members = (
        select(func.count()).select_from(Membership).where(Membership.org_id == Org.id).scalar_subquery()
    )
    projects = select(func.count()).select_from(Project).where(Project.org_id == Org.id).scalar_subquery()
    query = select(Org, members, projects)
    if search:
        query = query.where(
            or_(func.lower(Org.name).like(like_escaped(search), escape="\\"), Org.id == search)
        )
    rows = list(
        (await db.execute(query.order_by(Org.created_at, Org.id).limit(limit + 1).offset(offset))).all()
    )
    return AdminOrgPage(
        items=[
            AdminOrgSummary(
                id=org.id,
                name=org.name,
                plan=org.plan,
                members=int(m),
                projects=int(p),
                created_at=org.created_at,
            )
            for org, m, p in rows[:limit]
        ],
        next_offset=_next_offset(rows, limit, offset),
    )


async def _org(db: AsyncSession, org_id: str, *, lock: bool = False) -> Org:
    query = select(Org).where(Org.id == org_id)
    org = await db.scalar(query.with_for_update() if lock else query)
    if org is None:
        raise NotFound("no such org")
    return org


async def quota_usage(db: AsyncSession, org_id: str, plan_id: str) -> list[QuotaUse]:
    """What the org uses of each quota that counts something, against `plan_id`'s limits; per project
    quotas give the fullest project's count. The console's usage view counts the same way."""
    uses = await org_usage(db, org_id, plan_for(plan_id))
    return [QuotaUse(quota=use.quota, used=use.used, limit=use.limit) for use in uses if use.used is not None]


def _key_status(key: ApiKey) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None:
        return "expired" if key.expires_at <= clock.now() else "expiring"
    return "active"


async def org_support_view(db: AsyncSession, org_id: str) -> AdminOrgDetail:
    org = await _org(db, org_id)
    projects = list(
        (await db.scalars(select(Project).where(Project.org_id == org.id).order_by(Project.created_at))).all()
    )
    keys = (
        await db.scalars(
            select(ApiKey)
            .where(ApiKey.project_id.in_([p.id for p in projects]))
            .order_by(ApiKey.created_at, ApiKey.id)
        )
    ).all()
    by_project: dict[str, list[AdminKey]] = {p.id: [] for p in projects}
    for key in keys:
        by_project[key.project_id].append(
            AdminKey(
                id=key.id,
                kind=key.kind,
                environment=key.environment,
                prefix=key.prefix,  # G28: the display prefix; never lookup_hash, never the key
                status=_key_status(key),
                created_at=key.created_at,
                last_used_at=key.last_used_at,
            )
        )
    return AdminOrgDetail(
        id=org.id,
        name=org.name,
        plan=org.plan,
        created_at=org.created_at,
        usage=await quota_usage(db, org.id, org.plan),
        members=[
            AdminMember(account_id=m.account_id, email=email, role=m.role, joined_at=m.created_at)
            for m, email in await list_members(db, org.id)
        ],
        projects=[
            AdminProject(id=p.id, name=p.name, created_at=p.created_at, keys=by_project[p.id])
            for p in projects
        ],
    )


async def change_plan(
    db: AsyncSession, org_id: str, plan_id: str, *, force: bool, actor: Actor
) -> PlanChanged:
    """Move the org to another plan, audited as a subscription event in the org's log (G27).

    A downgrade below current usage is refused (409, naming each quota) unless `force`: the org then
    keeps what it has, and the quota checks refuse anything new over the limits.
    """
    if plan_id not in PLANS:  # the schema already refuses unknown plans; this guards other callers
        raise InvalidInput(f"plan must be one of {', '.join(PLANS)}")
    org = await _org(db, org_id, lock=True)  # a concurrent project create can't slip past the check
    previous = org.plan
    over = [use for use in await quota_usage(db, org.id, plan_id) if use.used > use.limit]
    if previous == plan_id:
        return PlanChanged(org_id=org.id, previous=previous, plan=plan_id, over_quota=over)
    if over and not force:
        listed = ", ".join(f"{use.quota} {use.used} of {use.limit}" for use in over)
        raise Conflict(
            f"the org uses more than the {PLANS[plan_id].name} plan allows ({listed}); reduce its usage "
            'first, or send "force": true to downgrade anyway',
            over_quota=[{"quota": u.quota, "used": u.used, "limit": u.limit} for u in over],
        )
    org.plan = plan_id
    await record(
        db,
        AuditAction.SUBSCRIPTION_CHANGED,
        actor=actor,
        org_id=org.id,
        target=org.id,
        metadata={
            "from": previous,
            "to": plan_id,
            "forced": bool(over),
            "over_quota": {u.quota: {"used": u.used, "limit": u.limit} for u in over},
        },
    )
    return PlanChanged(org_id=org.id, previous=previous, plan=plan_id, over_quota=over)


# --- accounts and their sessions -----------------------------------------------------------------


async def _groups_of(db: AsyncSession, account_ids: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {account_id: [] for account_id in account_ids}
    rows = await db.execute(
        select(AccountGroup.account_id, AccountGroup.group_name)
        .where(AccountGroup.account_id.in_(account_ids))
        .order_by(AccountGroup.group_name)
    )
    for account_id, group in rows:
        groups[account_id].append(group)
    return groups


async def list_accounts(db: AsyncSession, *, search: str | None, limit: int, offset: int) -> AdminAccountPage:
    """Console accounts whose email contains `search` (case-insensitive), oldest first."""
    search = clean_search(search)
    query = select(Account)
    if search:
        query = query.where(func.lower(Account.email).like(like_escaped(search), escape="\\"))
    rows = list(
        (
            await db.scalars(query.order_by(Account.created_at, Account.id).limit(limit + 1).offset(offset))
        ).all()
    )
    page = rows[:limit]
    groups = await _groups_of(db, [a.id for a in page])
    return AdminAccountPage(
        items=[
            AdminAccountSummary(
                id=a.id, email=a.email, is_active=a.is_active, groups=groups[a.id], created_at=a.created_at
            )
            for a in page
        ],
        next_offset=_next_offset(rows, limit, offset),
    )


async def _account(db: AsyncSession, account_id: str) -> Account:
    account = await db.get(Account, account_id)
    if account is None:
        raise NotFound("no such account")
    return account


async def account_support_view(
    db: AsyncSession, account_id: str, *, identity: IdentityProvider
) -> AdminAccountDetail:
    account = await _account(db, account_id)
    # Builtin: the account is the directory user. Authentik keeps the devices; its users have other ids.
    mfa = await identity.has_confirmed_mfa(db, account.id) if identity.name == "builtin" else None
    return AdminAccountDetail(
        id=account.id,
        email=account.email,
        is_active=account.is_active,
        groups=await account_groups(db, account.id),
        created_at=account.created_at,
        mfa_enabled=mfa,
        orgs=[AdminAccountOrg(org_id=o.id, name=o.name, role=r) for o, r in await orgs_of(db, account.id)],
        sessions=[
            AdminSession(
                id=s.id,
                created_at=s.created_at,
                last_seen_at=s.last_seen_at,
                expires_at=s.expires_at,
                ip=s.ip,
                user_agent=s.user_agent,
                mfa=s.mfa,
            )
            for s in await list_sessions(db, account.id)
        ],
    )


async def revoke_account_sessions(
    db: AsyncSession, account_id: str, *, current_session_id: str, actor: Actor
) -> AccountSessionsRevoked:
    """Revoke every session of an account (G29: lost device, suspicious access). Admins revoking their
    own account keep the session making the call (it just passed MFA); the rest fail on their next
    request on every worker."""
    account = await _account(db, account_id)
    own = account.id == actor.id
    revoked = await revoke_all_sessions(db, account.id, keep_session_id=current_session_id if own else None)
    await record(
        db,
        AuditAction.ADMIN_SESSIONS_REVOKED,
        actor=actor,
        target=account.id,
        metadata={"revoked": revoked, "kept_current": own},
    )
    return AccountSessionsRevoked(account_id=account.id, revoked=revoked, kept_current=own)


# --- identity-backend proxy operations (G26) -----------------------------------------------------


def _directory_user(user: DirectoryUser) -> DirectoryUserPublic:
    return DirectoryUserPublic(
        id=user.id,
        email=user.email,
        name=user.name,
        is_active=user.is_active,
        groups=list(user.groups),
        mfa_devices=user.mfa_devices,
    )


async def list_directory_users(
    db: AsyncSession, identity: IdentityProvider, *, search: str | None, limit: int, offset: int
) -> DirectoryUserPage:
    users = await identity.list_users(db, search=clean_search(search), limit=limit + 1, offset=offset)
    return DirectoryUserPage(
        items=[_directory_user(u) for u in users[:limit]],
        next_offset=_next_offset(users, limit, offset),
    )


async def list_directory_groups(db: AsyncSession, identity: IdentityProvider) -> DirectoryGroupPage:
    groups = await identity.list_groups(db)
    return DirectoryGroupPage(
        items=[DirectoryGroupPublic(id=g.id, name=g.name, member_count=g.member_count) for g in groups]
    )


async def _other_user(
    db: AsyncSession, identity: IdentityProvider, user_id: str, admin: Account
) -> DirectoryUser:
    """The directory user, refused when it is the calling admin (a slip would lock them out)."""
    user = await identity.get_user(db, user_id)
    if user.id == admin.id or (user.email is not None and user.email.lower() == admin.email):
        raise Conflict("not on your own account: another platform admin must do this")
    return user


async def deactivate_directory_user(
    db: AsyncSession, identity: IdentityProvider, user_id: str, *, admin: Account, actor: Actor
) -> DirectoryUserPublic:
    user = await _other_user(db, identity, user_id, admin)
    updated = await identity.deactivate_user(db, user.id)
    await record(
        db,
        AuditAction.IDENTITY_USER_DEACTIVATED,
        actor=actor,
        target=user.id,
        metadata={"provider": identity.name, "email": user.email},
    )
    return _directory_user(updated)


async def reset_directory_user_mfa(
    db: AsyncSession, identity: IdentityProvider, user_id: str, *, admin: Account, actor: Actor
) -> MfaReset:
    user = await _other_user(db, identity, user_id, admin)
    removed = await identity.reset_mfa(db, user.id)
    await record(
        db,
        AuditAction.IDENTITY_MFA_RESET,
        actor=actor,
        target=user.id,
        metadata={"provider": identity.name, "email": user.email, "removed": removed},
    )
    return MfaReset(user_id=user.id, removed=removed)
