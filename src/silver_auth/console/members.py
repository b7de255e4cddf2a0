"""Console pages of an org's members, their roles and its invitation links, and the page an invitation
link opens. Each calls the services `orgs/routes.py` calls, so the owner and last-owner rules, the
member quota and the one-time link are the API's own."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext, console_context
from silver_auth.console.pages import PAGE_HANDLERS, PageError, frame, page_opt
from silver_auth.console.render import PREFIX, Req, html, page, see_other
from silver_auth.core.errors import NotFound, ProblemError, QuotaExceeded, Unauthorized
from silver_auth.orgs import service as orgs
from silver_auth.orgs.guards import OrgAccess
from silver_auth.orgs.models import Invitation, Org, Role
from silver_auth.settings import Settings
from silver_auth.web.deps import request_db

MEMBERS = "members.html"
LINK_GONE = {
    "accepted": "This invitation link was already used: each link lets one person join.",
    "revoked": "This invitation link was revoked by an admin of the org.",
    "expired": "This invitation link has expired.",
}


def _members_path(org_id: str) -> str:
    return f"{PREFIX}/orgs/{org_id}/members"


def _assignable(caller: Role) -> list[Role]:
    """The roles the caller may hand out: only an owner grants the owner role (the service's rule)."""
    return [role for role in Role if caller == Role.OWNER or role != Role.OWNER]


def _field(form: Any, name: str, limit: int = 320) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _role(form: Any) -> Role | None:
    try:
        return Role(_field(form, "role", 20))
    except ValueError:
        return None


async def _members_context(db: AsyncSession, console: ConsoleContext, access: OrgAccess) -> dict[str, Any]:
    """What the members page shows; a refused form shows it again with the reason."""
    org = await orgs.get_org(db, access.org_id)
    can_manage = access.role.at_least(Role.ADMIN)
    invitations = (
        [i for i in await orgs.list_invitations(db, org.id) if orgs.invitation_status(i) == "pending"]
        if can_manage
        else []
    )
    shown = await frame(db, console)
    return shown.context(
        org,
        title="Members",
        section="members",
        members=await orgs.list_members(db, org.id),
        invitations=invitations,
        role=access.role,
        can_manage=can_manage,
        roles=_assignable(access.role),
    )


async def _refused(
    db: AsyncSession, console: ConsoleContext, access: OrgAccess, status: int, reason: str
) -> PageError:
    """The members page again with the reason (the transaction rolls back: nothing is written)."""
    context = await _members_context(db, console, access)
    return PageError(status, _sentence(reason), MEMBERS, **context)


NO_ROLE = "Choose one of the roles in the list."


class MemberPages(Controller):
    path = PREFIX
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    @get("/orgs/{org_id:str}/members", opt=page_opt(Role.VIEWER.value))
    async def members(
        self,
        org_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        return page(request, settings, MEMBERS, **await _members_context(db, console, org_access))

    @post("/orgs/{org_id:str}/members/{account_id:str}/role", opt=page_opt(Role.ADMIN.value))
    async def change_role(
        self,
        *,
        org_id: FromPath[str],
        account_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        role = _role(await request.form())
        if role is None:
            raise await _refused(db, console, org_access, 400, NO_ROLE)
        try:
            membership = await orgs.change_role(
                db, org_id, account_id, role, actor_role=org_access.role, actor=console.actor
            )
        except ProblemError as exc:
            raise await _refused(db, console, org_access, exc.status, exc.detail) from None
        email = next((e for m, e in await orgs.list_members(db, org_id) if m.account_id == account_id), "")
        return see_other(
            _members_path(org_id), flash=f"{email} is now {membership.role.value}.", settings=settings
        )

    @post("/orgs/{org_id:str}/members/{account_id:str}/remove", opt=page_opt(Role.ADMIN.value))
    async def remove_member(
        self,
        org_id: FromPath[str],
        account_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        email = next((e for m, e in await orgs.list_members(db, org_id) if m.account_id == account_id), "")
        try:
            await orgs.remove_member(db, org_id, account_id, actor_role=org_access.role, actor=console.actor)
        except ProblemError as exc:
            raise await _refused(db, console, org_access, exc.status, exc.detail) from None
        flash = f"Removed {email} from the org and signed them out of the console."
        return see_other(_members_path(org_id), flash=flash, settings=settings)

    @post("/orgs/{org_id:str}/leave", opt=page_opt(Role.VIEWER.value))
    async def leave(
        self,
        org_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        org = await orgs.get_org(db, org_id)
        try:
            await orgs.remove_member(
                db,
                org_id,
                console.account.id,
                actor_role=org_access.role,
                actor=console.actor,
                keep_session_id=console.session.id,
            )
        except ProblemError as exc:
            raise await _refused(db, console, org_access, exc.status, exc.detail) from None
        flash = f"You left {org.name}. An admin of it can invite you again."
        return see_other(f"{PREFIX}/orgs", flash=flash, settings=settings)

    @post("/orgs/{org_id:str}/invitations", opt=page_opt(Role.ADMIN.value))
    async def invite(
        self,
        org_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        form = await request.form()
        role = _role(form)
        if role is None:
            raise await _refused(db, console, org_access, 400, NO_ROLE)
        email = _field(form, "email") or None
        org = await orgs.get_org(db, org_id)
        try:
            invitation, token = await orgs.create_invitation(
                db, org, role, email, actor_role=org_access.role, actor=console.actor
            )
        except ProblemError as exc:
            raise await _refused(db, console, org_access, exc.status, exc.detail) from None
        # The link is in this answer only: the service keeps the token's hash, never the token.
        shown = await frame(db, console)
        return html(
            "invitation_created.html",
            201,
            **shown.context(
                org,
                title="Invitation link",
                section="members",
                invitation=invitation,
                link=f"{settings.accounts_url.rstrip('/')}{PREFIX}/invitations/{token}",
            ),
        )

    @post("/invitations/{invitation_id:str}/revoke", opt=page_opt(Role.ADMIN.value))
    async def revoke_invitation(
        self,
        invitation_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        try:
            await orgs.revoke_invitation(db, invitation_id, actor=console.actor)
        except ProblemError as exc:
            raise await _refused(db, console, org_access, exc.status, exc.detail) from None
        flash = "Revoked the invitation: its link no longer works. Invite again to send a new one."
        return see_other(_members_path(org_access.org_id), flash=flash, settings=settings)


def _sentence(detail: str) -> str:
    return detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".")


def _quota_refusal(org: Org, exc: QuotaExceeded) -> str:
    return (
        f"{org.name} has no room for another member: {exc.detail}. Ask an admin of {org.name} to "
        "remove a member or move to a larger plan, then open this link again."
    )


async def _open_invitation(db: AsyncSession, token: str) -> tuple[Invitation, Org]:
    """The pending invitation behind a link and its org; an unknown link answers 404, a used, revoked
    or expired one 410 (the link's holder learns which, nobody else can ask)."""
    invitation = await orgs.invitation_by_link(db, token)
    if invitation is None:
        raise PageError(
            404,
            "This invitation link is not valid.",
            "message.html",
            title="Invitation not found",
            message="Check that you copied the whole link, or ask an admin of the org for a new one.",
        )
    status = orgs.invitation_status(invitation)
    if status != "pending":
        raise PageError(
            410,
            LINK_GONE[status],
            "message.html",
            title="Invitation no longer valid",
            message="Ask an admin of the org for a new invitation link.",
        )
    return invitation, await orgs.get_org(db, invitation.org_id)


class InvitationPages(Controller):
    """The page an invitation link opens (public: its token is the credential) and its Accept button
    (for a signed-in account). The page never accepts on GET: a link preview or prefetch must not join
    anyone to an org."""

    path = PREFIX
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    @get("/invitations/{token:str}", opt=page_opt("public"))
    async def invitation(
        self,
        token: FromPath[str],
        request: Req,
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        invitation, org = await _open_invitation(db, token)
        try:
            console: ConsoleContext | None = await console_context(request, request_db(request))
        except Unauthorized:
            console = None
        context: dict[str, Any] = {
            "title": f"Join {org.name}",
            "org_name": org.name,
            "invitation": invitation,
            "token": token,
            "sign_up": settings.console_sign_up_mode != "closed",
        }
        if console is None:
            return html("invitation.html", **context)
        shown = await frame(db, console)
        member = any(mine.id == org.id for mine, _ in shown.orgs)
        return page(
            request, settings, "invitation.html", **shown.context(**context, member=member, org_id=org.id)
        )

    @post("/invitations/{token:str}", opt={**page_opt("account"), "rate_limit": "invitation"})
    async def accept(
        self,
        token: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        invitation, org = await _open_invitation(db, token)
        try:
            membership = await orgs.accept_invitation(db, token, console.account.id, actor=console.actor)
        except QuotaExceeded as exc:
            raise _accept_refused(exc.status, _quota_refusal(org, exc)) from None
        except NotFound as exc:  # used or revoked between the page and the click
            raise _accept_refused(410, _sentence(exc.detail)) from None
        except ProblemError as exc:
            raise _accept_refused(exc.status, _sentence(exc.detail)) from None
        flash = f"You joined {org.name} as {membership.role.value}."
        return see_other(f"{PREFIX}/orgs/{invitation.org_id}", flash=flash, settings=settings)


def _accept_refused(status: int, reason: str) -> PageError:
    return PageError(
        status,
        reason,
        "message.html",
        title="You did not join",
        message="Nothing changed. Ask an admin of the org if you need a new invitation link.",
    )
