"""Console pages of a signed-in account: its orgs (the switcher, creating one) and an org's overview
with its plan, usage against the quotas, and a getting-started checklist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.console.pages import PAGE_HANDLERS, PageError, frame, page_opt
from silver_auth.console.render import PREFIX, Req, page, see_other
from silver_auth.core.errors import ProblemError
from silver_auth.mfa.factors import has_confirmed_totp
from silver_auth.orgs import service as orgs
from silver_auth.orgs.guards import OrgAccess
from silver_auth.orgs.models import Role
from silver_auth.plans.service import QuotaUse
from silver_auth.settings import Settings

QUOTA_LABELS = {
    "projects": "Projects",
    "members": "Members",
    "end_users": "End-users (fullest project)",
    "webhook_endpoints": "Webhook endpoints (fullest project)",
    "api_keys_per_project": "API keys (fullest project)",
    "requests_per_minute": "Requests per minute, per key",
}


@dataclass(frozen=True, slots=True)
class Step:
    label: str
    done: bool
    hint: str


def _used(uses: list[QuotaUse], quota: str) -> int:
    return next((use.used or 0 for use in uses if use.quota == quota), 0)


def checklist(uses: list[QuotaUse], mfa: bool) -> list[Step]:
    members = next((use for use in uses if use.quota == "members"), None)
    invited = members is not None and ((members.used or 0) > 1 or members.pending > 0)
    return [
        Step("Create a project", _used(uses, "projects") > 0, "A project holds your app's users and keys."),
        Step(
            "Create an API key",
            _used(uses, "api_keys_per_project") > 0,
            "Your backend calls the API with a secret key.",
        ),
        Step("Invite a teammate", invited, "Admins invite members with a one-time link."),
        Step("Turn on MFA for your account", mfa, "A TOTP app protects your console sign-in."),
    ]


class OrgPages(Controller):
    path = PREFIX
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    @get("/orgs", opt=page_opt("account"))
    async def list_orgs(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        shown = await frame(db, console)
        return page(request, settings, "orgs.html", **shown.context(title="Your orgs"))

    @post("/orgs", opt=page_opt("account"))
    async def create_org(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        name = (await request.form()).get("name")
        try:
            org = await orgs.create_org(
                db, name if isinstance(name, str) else "", owner_id=console.account.id, actor=console.actor
            )
        except ProblemError as exc:
            shown = await frame(db, console)
            raise PageError(exc.status, exc.detail, "orgs.html", **shown.context(title="Your orgs")) from None
        return see_other(f"{PREFIX}/orgs/{org.id}", flash=f"Created {org.name}.", settings=settings)

    @get("/orgs/{org_id:str}", opt=page_opt(Role.VIEWER.value))
    async def overview(
        self,
        org_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        org = await orgs.get_org(db, org_id)
        plan, uses = await orgs.plan_usage(db, org_id)  # the same numbers as GET /console/api/orgs/{id}/usage
        shown = await frame(db, console)
        return page(
            request,
            settings,
            "overview.html",
            **shown.context(
                org,
                title=org.name,
                section="overview",
                plan=plan,
                quotas=[(QUOTA_LABELS.get(use.quota, use.quota), use) for use in uses],
                steps=checklist(uses, await has_confirmed_totp(db, console.account.id)),
                role=org_access.role.value,
                can_create_project=org_access.role.at_least(Role.ADMIN),
            ),
        )
