"""Orgs, members and invitations in the console."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ACCOUNT, ConsoleContext
from silver_auth.orgs import service
from silver_auth.orgs.guards import ADMIN, OWNER, VIEWER, OrgAccess
from silver_auth.orgs.models import Invitation, Org, Role
from silver_auth.orgs.schemas import (
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationPage,
    InvitationPublic,
    MemberPage,
    MemberPublic,
    MemberUpdate,
    OrgCreate,
    OrgDetail,
    OrgPage,
    OrgPublic,
    OrgUpdate,
    Usage,
)
from silver_auth.plans.schemas import OrgUsage, org_usage_public
from silver_auth.plans.service import plan_for
from silver_auth.projects.service import ProjectService
from silver_auth.settings import Settings
from silver_auth.web.openapi import OVER_QUOTA, OVER_QUOTA_DESCRIPTION, problem

LAST_OWNER = problem("the org would be left without an owner (`conflict`)")
OWNERS_ONLY = problem("only an owner can grant, change or remove the owner role (`forbidden`)")


def _org(org: Org, role: Role) -> OrgPublic:
    return OrgPublic(id=org.id, name=org.name, plan=org.plan, role=role, created_at=org.created_at)


async def _detail(db: NamedDependency[AsyncSession], org: Org, role: Role) -> OrgDetail:
    plan = plan_for(org.plan)
    counts = await service.usage(db, org.id)
    return OrgDetail(
        id=org.id,
        name=org.name,
        plan=org.plan,
        role=role,
        created_at=org.created_at,
        usage=Usage(**counts),
        limits={"projects": plan.projects, "members": plan.members},
    )


def _invitation(invitation: Invitation) -> InvitationPublic:
    return InvitationPublic(
        id=invitation.id,
        org_id=invitation.org_id,
        role=invitation.role,
        email=invitation.email_hint,
        status=service.invitation_status(invitation),
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
    )


class OrgController(Controller):
    path = "/console/api"
    tags = ["console: orgs"]

    @get("/orgs", opt=ACCOUNT, summary="Orgs you belong to")
    async def list_orgs(
        self, console: NamedDependency[ConsoleContext], db: NamedDependency[AsyncSession]
    ) -> OrgPage:
        return OrgPage(items=[_org(org, role) for org, role in await service.orgs_of(db, console.account.id)])

    @post("/orgs", opt=ACCOUNT, summary="Create an org (you become its owner)")
    async def create_org(
        self,
        data: JSONBody[OrgCreate],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
    ) -> OrgDetail:
        org = await service.create_org(db, data.name, owner_id=console.account.id, actor=console.actor)
        return await _detail(db, org, Role.OWNER)

    @get("/orgs/{org_id:str}", opt=VIEWER, summary="An org with its plan, usage and limits")
    async def get_org(
        self,
        org_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
    ) -> OrgDetail:
        return await _detail(db, await service.get_org(db, org_id), org_access.role)

    @get(
        "/orgs/{org_id:str}/usage",
        opt=VIEWER,
        summary="The org's use of each quota against its plan's limits, and its retention (L7)",
    )
    async def usage(self, org_id: FromPath[str], db: NamedDependency[AsyncSession]) -> OrgUsage:
        plan, uses = await service.plan_usage(db, org_id)
        return org_usage_public(org_id, plan, uses)

    @patch("/orgs/{org_id:str}", opt=ADMIN, summary="Rename an org")
    async def update_org(
        self,
        org_id: FromPath[str],
        data: JSONBody[OrgUpdate],
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
    ) -> OrgDetail:
        org = await service.rename_org(db, await service.get_org(db, org_id), data.name, actor=console.actor)
        return await _detail(db, org, org_access.role)

    @delete("/orgs/{org_id:str}", opt=OWNER, summary="Delete an org with its projects and keys")
    async def delete_org(
        self,
        org_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        projects: NamedDependency[ProjectService],
    ) -> None:
        await service.delete_org(
            db, await service.get_org(db, org_id), actor=console.actor, projects=projects
        )

    @get("/orgs/{org_id:str}/members", opt=VIEWER, summary="Members and their roles")
    async def list_members(self, org_id: FromPath[str], db: NamedDependency[AsyncSession]) -> MemberPage:
        return MemberPage(
            items=[
                MemberPublic(account_id=m.account_id, email=email, role=m.role, joined_at=m.created_at)
                for m, email in await service.list_members(db, org_id)
            ]
        )

    @patch(
        "/orgs/{org_id:str}/members/{account_id:str}",
        opt=ADMIN,
        summary="Change a member's role",
        responses={403: OWNERS_ONLY, 409: LAST_OWNER},
    )
    async def change_role(
        self,
        *,
        org_id: FromPath[str],
        account_id: FromPath[str],
        data: JSONBody[MemberUpdate],
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
    ) -> MemberPublic:
        membership = await service.change_role(
            db, org_id, account_id, data.role, actor_role=org_access.role, actor=console.actor
        )
        email = next(e for m, e in await service.list_members(db, org_id) if m.account_id == account_id)
        return MemberPublic(
            account_id=account_id, email=email, role=membership.role, joined_at=membership.created_at
        )

    @delete(
        "/orgs/{org_id:str}/members/{account_id:str}",
        opt=ADMIN,
        summary="Remove a member",
        responses={403: OWNERS_ONLY, 409: LAST_OWNER},
    )
    async def remove_member(
        self,
        org_id: FromPath[str],
        account_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
    ) -> None:
        await service.remove_member(db, org_id, account_id, actor_role=org_access.role, actor=console.actor)

    @post(
        "/orgs/{org_id:str}/leave",
        opt=VIEWER,
        status_code=204,
        summary="Leave an org",
        responses={409: LAST_OWNER},
    )
    async def leave(
        self,
        org_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
    ) -> None:
        await service.remove_member(
            db,
            org_id,
            console.account.id,
            actor_role=org_access.role,
            actor=console.actor,
            keep_session_id=console.session.id,
        )

    @get("/orgs/{org_id:str}/invitations", opt=ADMIN, summary="Invitations of an org")
    async def list_invitations(
        self, org_id: FromPath[str], db: NamedDependency[AsyncSession]
    ) -> InvitationPage:
        return InvitationPage(items=[_invitation(i) for i in await service.list_invitations(db, org_id)])

    @post(
        "/orgs/{org_id:str}/invitations",
        opt=ADMIN,
        summary="Create a one-time invitation link",
        responses={
            403: problem(f"only an owner can invite an owner (`forbidden`); or {OVER_QUOTA_DESCRIPTION}")
        },
    )
    async def invite(
        self,
        *,
        org_id: FromPath[str],
        data: JSONBody[InvitationCreate],
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> InvitationCreated:
        invitation, token = await service.create_invitation(
            db,
            await service.get_org(db, org_id),
            data.role,
            data.email,
            actor_role=org_access.role,
            actor=console.actor,
        )
        public = _invitation(invitation)
        url = f"{settings.accounts_url.rstrip('/')}/console/invitations/{token}"
        return InvitationCreated(
            **{f: getattr(public, f) for f in public.__struct_fields__}, token=token, url=url
        )

    @delete(
        "/invitations/{invitation_id:str}",
        opt=ADMIN,
        summary="Revoke an invitation",
        responses={409: problem("the invitation was already accepted (`conflict`)")},
    )
    async def revoke_invitation(
        self,
        invitation_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
    ) -> None:
        await service.revoke_invitation(db, invitation_id, actor=console.actor)

    @post(
        "/invitations/accept",
        opt={**ACCOUNT, "rate_limit": "invitation"},
        status_code=200,
        summary="Accept an invitation link",
        responses={
            403: OVER_QUOTA,
            404: problem("the link is unknown, revoked, expired or already used (`not-found`)"),
            409: problem("you are already a member of this org (`conflict`)"),
        },
    )
    async def accept(
        self,
        data: JSONBody[InvitationAccept],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
    ) -> OrgPublic:
        membership = await service.accept_invitation(db, data.token, console.account.id, actor=console.actor)
        return _org(await service.get_org(db, membership.org_id), membership.role)
