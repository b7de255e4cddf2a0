"""Orgs, memberships and one-time invitations. Role rules live here; routes only say who may call."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.models import Account
from silver_auth.accounts.sessions import revoke_all_sessions
from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.crypto import token_hash
from silver_auth.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from silver_auth.core.ids import new_id
from silver_auth.core.text import clean_name, has_control_characters
from silver_auth.orgs.models import Invitation, Membership, Org, Role
from silver_auth.plans.service import (
    DEFAULT_PLAN,
    Plan,
    QuotaUse,
    check_quota,
    members_used,
    org_usage,
    pending_invitations,
    plan_for,
    projects_used,
)
from silver_auth.projects.service import ProjectService, list_projects
from silver_auth.webhooks.events import EventType
from silver_auth.webhooks.outbox import emit

INVITATION_LIFETIME = timedelta(days=7)


async def _member_data(db: AsyncSession, org_id: str, account_id: str) -> dict[str, str]:
    """Who the org.member.* events are about: the account's id and email (never more of it, G18)."""
    email = await db.scalar(select(Account.email).where(Account.id == account_id))
    return {"org_id": org_id, "account_id": account_id, "email": email or ""}


async def create_org(db: AsyncSession, name: str, *, owner_id: str, actor: Actor) -> Org:
    org = Org(id=new_id("org"), name=clean_name(name), plan=DEFAULT_PLAN, created_at=clock.now())
    db.add(org)
    await db.flush()  # tables without ORM relationships are flushed in add order: the org goes first
    db.add(Membership(org_id=org.id, account_id=owner_id, role=Role.OWNER, created_at=org.created_at))
    await record(
        db, AuditAction.ORG_CREATED, actor=actor, org_id=org.id, target=org.id, metadata={"name": org.name}
    )
    await record(
        db,
        AuditAction.MEMBER_ADDED,
        actor=actor,
        org_id=org.id,
        target=owner_id,
        metadata={"role": Role.OWNER.value},
    )
    added = {**await _member_data(db, org.id, owner_id), "role": Role.OWNER.value, "via": "org-created"}
    emit(db, EventType.ORG_MEMBER_ADDED, added, org_id=org.id)
    return org


async def orgs_of(db: AsyncSession, account_id: str) -> list[tuple[Org, Role]]:
    rows = await db.execute(
        select(Org, Membership.role)
        .join(Membership, Membership.org_id == Org.id)
        .where(Membership.account_id == account_id)
        .order_by(Org.created_at)
    )
    return [(org, role) for org, role in rows]


async def get_org(db: AsyncSession, org_id: str) -> Org:
    org = await db.get(Org, org_id)
    if org is None:
        raise NotFound("no such org")
    return org


async def usage(db: AsyncSession, org_id: str) -> dict[str, int]:
    return {"projects": await projects_used(db, org_id), "members": await members_used(db, org_id)}


async def plan_usage(db: AsyncSession, org_id: str) -> tuple[Plan, list[QuotaUse]]:
    """The org's plan and its use of every quota (the console's usage view, L7)."""
    plan = plan_for((await get_org(db, org_id)).plan)
    return plan, await org_usage(db, org_id, plan)


async def _locked_plan(db: AsyncSession, org_id: str) -> Plan:
    """The org's plan, its row locked: concurrent invitations and acceptances count one at a time, and
    a plan change waits for them (admin.change_plan locks the same row)."""
    plan_id = await db.scalar(select(Org.plan).where(Org.id == org_id).with_for_update())
    if plan_id is None:
        raise NotFound("no such org")
    return plan_for(plan_id)


async def rename_org(db: AsyncSession, org: Org, name: str, *, actor: Actor) -> Org:
    old, org.name = org.name, clean_name(name)
    await record(
        db,
        AuditAction.ORG_UPDATED,
        actor=actor,
        org_id=org.id,
        target=org.id,
        metadata={"name": {"from": old, "to": org.name}},
    )
    return org


async def delete_org(db: AsyncSession, org: Org, *, actor: Actor, projects: ProjectService) -> None:
    """Delete the org and everything in it; each project goes through the project service, so its
    identity-engine objects and cached keys go too."""
    doomed = await list_projects(db, org.id)
    await projects.delete_many(doomed, actor=actor)
    await record(
        db,
        AuditAction.ORG_DELETED,
        actor=actor,
        org_id=org.id,
        target=org.id,
        metadata={"name": org.name, "projects": [project.id for project in doomed]},
    )
    await db.delete(org)


async def list_members(db: AsyncSession, org_id: str) -> list[tuple[Membership, str]]:
    rows = await db.execute(
        select(Membership, Account.email)
        .join(Account, Account.id == Membership.account_id)
        .where(Membership.org_id == org_id)
        .order_by(Membership.created_at)
    )
    return [(membership, email) for membership, email in rows]


async def _membership(db: AsyncSession, org_id: str, account_id: str) -> Membership:
    membership = await db.get(Membership, (org_id, account_id))
    if membership is None:
        raise NotFound("no such member")
    return membership


async def _owner_count(db: AsyncSession, org_id: str) -> int:
    count = await db.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.org_id == org_id, Membership.role == Role.OWNER)
    )
    return int(count or 0)


async def _guard_owner_change(
    db: AsyncSession, target: Membership, actor_role: Role, new_role: Role | None
) -> None:
    touches_owner = Role.OWNER in {target.role, new_role}
    if touches_owner and actor_role != Role.OWNER:
        raise Forbidden("only an owner can grant, change or remove the owner role")
    if target.role == Role.OWNER and new_role != Role.OWNER and await _owner_count(db, target.org_id) <= 1:
        raise Conflict("an org keeps at least one owner; make someone else owner first")


async def change_role(
    db: AsyncSession, org_id: str, account_id: str, role: Role, *, actor_role: Role, actor: Actor
) -> Membership:
    membership = await _membership(db, org_id, account_id)
    if membership.role == role:
        return membership
    await _guard_owner_change(db, membership, actor_role, role)
    old, membership.role = membership.role, role
    await record(
        db,
        AuditAction.MEMBER_ROLE_CHANGED,
        actor=actor,
        org_id=org_id,
        target=account_id,
        metadata={"from": old.value, "to": role.value},
    )
    changed = {
        **await _member_data(db, org_id, account_id),
        "changed_by": actor.id,
        "old_role": old.value,
        "new_role": role.value,
    }
    emit(db, EventType.ORG_MEMBER_ROLE_CHANGED, changed, org_id=org_id)
    return membership


async def remove_member(
    db: AsyncSession,
    org_id: str,
    account_id: str,
    *,
    actor_role: Role,
    actor: Actor,
    keep_session_id: str | None = None,
) -> int:
    """Remove a member and end their console sessions (offboarding, G29): a session is not scoped to
    one org, so all of them end; `keep_session_id` spares the caller's own when they leave. Returns
    how many sessions were revoked."""
    membership = await _membership(db, org_id, account_id)
    await _guard_owner_change(db, membership, actor_role, None)
    await db.delete(membership)
    revoked = await revoke_all_sessions(db, account_id, keep_session_id=keep_session_id)
    await record(
        db,
        AuditAction.MEMBER_REMOVED,
        actor=actor,
        org_id=org_id,
        target=account_id,
        metadata={"role": membership.role.value, "sessions_revoked": revoked},
    )
    removed = {**await _member_data(db, org_id, account_id), "role": membership.role.value}
    emit(db, EventType.ORG_MEMBER_REMOVED, removed, org_id=org_id)
    return revoked


async def create_invitation(
    db: AsyncSession, org: Org, role: Role, email_hint: str | None, *, actor_role: Role, actor: Actor
) -> tuple[Invitation, str]:
    """A one-time link token, returned once; only its hash is kept."""
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise Forbidden("only an owner can invite an owner")
    if email_hint is not None and has_control_characters(email_hint):
        raise InvalidInput("email must not contain control characters")
    plan = await _locked_plan(db, org.id)
    # Each pending invitation would add a member: they count too, so every link handed out can be used.
    used = await members_used(db, org.id) + await pending_invitations(db, org.id)
    check_quota(plan, "members", used, advice="pending invitations count; revoke unused ones")
    token = secrets.token_urlsafe(32)
    now = clock.now()
    invitation = Invitation(
        id=new_id("inv"),
        org_id=org.id,
        role=role,
        token_hash=token_hash(token),
        email_hint=email_hint.strip().lower() if email_hint else None,
        created_by=actor.id,
        created_at=now,
        expires_at=now + INVITATION_LIFETIME,
        accepted_at=None,
        accepted_by=None,
        revoked_at=None,
    )
    db.add(invitation)
    await record(
        db,
        AuditAction.INVITATION_CREATED,
        actor=actor,
        org_id=org.id,
        target=invitation.id,
        metadata={"role": role.value, "email_hint": invitation.email_hint},
    )
    return invitation, token


async def list_invitations(db: AsyncSession, org_id: str) -> list[Invitation]:
    rows = await db.scalars(
        select(Invitation).where(Invitation.org_id == org_id).order_by(Invitation.created_at.desc())
    )
    return list(rows.all())


def invitation_status(invitation: Invitation) -> str:
    """pending, accepted, revoked or expired."""
    if invitation.accepted_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    return "expired" if invitation.expires_at <= clock.now() else "pending"


async def invitation_by_link(db: AsyncSession, token: str) -> Invitation | None:
    """The invitation a link's token opens (looked up by its hash, as on acceptance), in any status."""
    found: Invitation | None = await db.scalar(
        select(Invitation).where(Invitation.token_hash == token_hash(token))
    )
    return found


async def revoke_invitation(db: AsyncSession, invitation_id: str, *, actor: Actor) -> Invitation:
    invitation = await db.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound("no such invitation")
    if invitation.accepted_at is not None:
        raise Conflict("the invitation was already accepted")
    if invitation.revoked_at is None:
        invitation.revoked_at = clock.now()
        await record(
            db, AuditAction.INVITATION_REVOKED, actor=actor, org_id=invitation.org_id, target=invitation.id
        )
    return invitation


async def accept_invitation(db: AsyncSession, token: str, account_id: str, *, actor: Actor) -> Membership:
    invitation = await db.scalar(
        select(Invitation).where(Invitation.token_hash == token_hash(token)).with_for_update()
    )
    now = clock.now()
    if invitation is None or invitation.revoked_at is not None or invitation.expires_at <= now:
        raise NotFound("this invitation link is not valid (unknown, revoked or expired)")
    if invitation.accepted_at is not None:
        raise NotFound("this invitation link was already used")
    if await db.get(Membership, (invitation.org_id, account_id)) is not None:
        raise Conflict("you are already a member of this org")
    # Checked again here: the plan may have been lowered, or members added, since the link was made.
    plan = await _locked_plan(db, invitation.org_id)
    check_quota(plan, "members", await members_used(db, invitation.org_id))
    invitation.accepted_at, invitation.accepted_by = now, account_id
    membership = Membership(
        org_id=invitation.org_id, account_id=account_id, role=invitation.role, created_at=now
    )
    db.add(membership)
    await record(
        db, AuditAction.INVITATION_ACCEPTED, actor=actor, org_id=invitation.org_id, target=invitation.id
    )
    await record(
        db,
        AuditAction.MEMBER_ADDED,
        actor=actor,
        org_id=invitation.org_id,
        target=account_id,
        metadata={"role": invitation.role.value, "invitation": invitation.id},
    )
    added = {
        **await _member_data(db, invitation.org_id, account_id),
        "role": invitation.role.value,
        "via": "invitation",
    }
    emit(db, EventType.ORG_MEMBER_ADDED, added, org_id=invitation.org_id)
    return membership
