"""Platform-admin routes under /admin/api: thin, each behind platform_admin_guard (G6, G7, G26)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.admin import service
from silver_auth.admin.guards import PLATFORM_ADMIN
from silver_auth.admin.schemas import (
    AccountSessionsRevoked,
    AdminAccountDetail,
    AdminAccountPage,
    AdminOrgDetail,
    AdminOrgPage,
    DirectoryGroupPage,
    DirectoryUserPage,
    DirectoryUserPublic,
    MfaReset,
    PlanChange,
    PlanChanged,
)
from silver_auth.alerts import service as alerts
from silver_auth.alerts.schemas import AlertPage
from silver_auth.runtime import Runtime
from silver_auth.web.openapi import problem

NOT_YOURSELF = problem("not on your own account: another platform admin must do this (`conflict`)")

Search = Annotated[str | None, QueryParameter(max_length=200, description="Case-insensitive substring")]
Limit = Annotated[int, QueryParameter(ge=1, le=200)]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000)]
AlertState = Annotated[
    Literal["standing", "raised", "held", "cleared"] | None,
    QueryParameter(name="state", description="`standing` is raised or held"),
]
AlertKind = Annotated[str | None, QueryParameter(max_length=60, description="e.g. `webhook_backlog`")]


class AdminOrgController(Controller):
    path = "/admin/api/orgs"
    tags = ["platform admin: orgs and plans"]

    @get("/", opt=PLATFORM_ADMIN, summary="Search orgs (name or id), with plan and member/project counts")
    async def list_orgs(
        self, db: NamedDependency[AsyncSession], q: Search = None, limit: Limit = 50, offset: Offset = 0
    ) -> AdminOrgPage:
        return await service.list_orgs(db, search=q, limit=limit, offset=offset)

    @get(
        "/{org_id:str}",
        opt=PLATFORM_ADMIN,
        summary="Support view of an org: members, projects, key prefixes, plan and quota usage (G28)",
    )
    async def get_org(self, org_id: FromPath[str], db: NamedDependency[AsyncSession]) -> AdminOrgDetail:
        return await service.org_support_view(db, org_id)

    @put(
        "/{org_id:str}/plan",
        opt=PLATFORM_ADMIN,
        summary="Change the org's plan (audited as subscription.changed, G27)",
        description="A downgrade below current usage answers 409 naming each quota, unless `force` is true.",
        responses={
            409: problem("the org uses more than the plan allows, each quota in `over_quota` (`conflict`)")
        },
    )
    async def change_plan(
        self,
        org_id: FromPath[str],
        data: JSONBody[PlanChange],
        db: NamedDependency[AsyncSession],
        console: NamedDependency[ConsoleContext],
    ) -> PlanChanged:
        return await service.change_plan(db, org_id, data.plan, force=data.force, actor=console.actor)


class AdminAccountController(Controller):
    path = "/admin/api/accounts"
    tags = ["platform admin: accounts and sessions"]

    @get("/", opt=PLATFORM_ADMIN, summary="Search console accounts by email")
    async def list_accounts(
        self, db: NamedDependency[AsyncSession], q: Search = None, limit: Limit = 50, offset: Offset = 0
    ) -> AdminAccountPage:
        return await service.list_accounts(db, search=q, limit=limit, offset=offset)

    @get(
        "/{account_id:str}",
        opt=PLATFORM_ADMIN,
        summary="Support view of an account: orgs and roles, groups, MFA, active sessions (G28)",
    )
    async def get_account(
        self, account_id: FromPath[str], db: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]
    ) -> AdminAccountDetail:
        return await service.account_support_view(db, account_id, identity=runtime.identity)

    @post(
        "/{account_id:str}/sessions/revoke",
        opt=PLATFORM_ADMIN,
        status_code=200,
        summary="Revoke every session of an account: lost device, suspicious access (G29)",
        description="On your own account the session making the call is kept (`kept_current`).",
    )
    async def revoke_sessions(
        self,
        account_id: FromPath[str],
        db: NamedDependency[AsyncSession],
        console: NamedDependency[ConsoleContext],
    ) -> AccountSessionsRevoked:
        return await service.revoke_account_sessions(
            db, account_id, current_session_id=console.session.id, actor=console.actor
        )


class AdminIdentityController(Controller):
    """Allow-listed operations on the identity backend (builtin or Authentik), each audited (G26)."""

    path = "/admin/api/identity"
    tags = ["platform admin: identity backend"]

    @get("/users", opt=PLATFORM_ADMIN, summary="Search the identity backend's users")
    async def list_users(
        self,
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
        q: Search = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> DirectoryUserPage:
        return await service.list_directory_users(db, runtime.identity, search=q, limit=limit, offset=offset)

    @get("/groups", opt=PLATFORM_ADMIN, summary="The identity backend's groups, with member counts")
    async def list_groups(
        self, db: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]
    ) -> DirectoryGroupPage:
        return await service.list_directory_groups(db, runtime.identity)

    @post(
        "/users/{user_id:str}/deactivate",
        opt=PLATFORM_ADMIN,
        status_code=200,
        summary="Deactivate a user: no more sign-ins, sessions revoked (audited)",
        responses={409: NOT_YOURSELF},
    )
    async def deactivate_user(
        self,
        user_id: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
        console: NamedDependency[ConsoleContext],
    ) -> DirectoryUserPublic:
        return await service.deactivate_directory_user(
            db, runtime.identity, user_id, admin=console.account, actor=console.actor
        )

    @post(
        "/users/{user_id:str}/reset-mfa",
        opt=PLATFORM_ADMIN,
        status_code=200,
        summary="Remove a user's second-factor devices, e.g. after a lost phone (audited)",
        responses={409: NOT_YOURSELF},
    )
    async def reset_mfa(
        self,
        user_id: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
        console: NamedDependency[ConsoleContext],
    ) -> MfaReset:
        return await service.reset_directory_user_mfa(
            db, runtime.identity, user_id, admin=console.account, actor=console.actor
        )


class AdminAlertController(Controller):
    path = "/admin/api/alerts"
    tags = ["platform admin: alerts"]

    @get(
        "/",
        opt=PLATFORM_ADMIN,
        summary="Recorded alerts, newest first, with each channel's delivery status (L2, G28)",
        description="Redacted when recorded; a channel is named by `scheme://host` only, never its URL.",
    )
    async def list_alerts(
        self,
        db: NamedDependency[AsyncSession],
        alert_state: AlertState = None,  # `state` is a name Litestar keeps for itself
        kind: AlertKind = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> AlertPage:
        return await alerts.list_alerts(db, limit=limit, offset=offset, state=alert_state, kind=kind)


ADMIN_CONTROLLERS = [
    AdminOrgController,
    AdminAccountController,
    AdminIdentityController,
    AdminAlertController,
]
