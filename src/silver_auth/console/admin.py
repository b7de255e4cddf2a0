"""The console's platform-admin area: org plans and support views, console accounts and their
sessions, and the identity backend's allow-listed operations. SEQN-A members whose session passed MFA
only (G6, G7, G26): each page declares the admin API's own rule, which `page_guard` applies, and calls
the service its `/admin/api` route calls.

Support views carry ids, names, display prefixes and times, never a secret (G28).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.admin import service
from silver_auth.admin.guards import PLATFORM_ADMIN_ACCESS
from silver_auth.admin.schemas import DirectoryGroupPublic, DirectoryUserPublic
from silver_auth.console.orgs import QUOTA_LABELS
from silver_auth.console.pages import PAGE_HANDLERS, Frame, PageError, frame, page_opt
from silver_auth.console.render import PAGE_SIZE, PREFIX, Pager, Req, offset_of, page, pager, see_other
from silver_auth.core.errors import ProblemError
from silver_auth.plans.service import PLANS
from silver_auth.runtime import Runtime
from silver_auth.settings import Settings

ADMIN_PREFIX = f"{PREFIX}/admin"
ADMIN_PAGE = page_opt(PLATFORM_ADMIN_ACCESS)


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _search(request: Req) -> str:
    value = request.query_params.get("q")
    return value if isinstance(value, str) else ""


def _area(shown: Frame, title: str, tab: str, **more: Any) -> dict[str, Any]:
    """The context of an admin page: the admin section, and which of its tabs is open."""
    return shown.context(title=title, section="admin", admin_tab=tab, **more)


class AdminPages(Controller):
    path = ADMIN_PREFIX
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    # --- orgs and plans --------------------------------------------------------------------------

    @get("/", opt=ADMIN_PAGE)
    async def list_orgs(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        search = _search(request)
        shown = await frame(db, console)
        try:
            found = await service.list_orgs(db, search=search, limit=PAGE_SIZE, offset=offset_of(request))
        except ProblemError as exc:
            context = _area(shown, "Platform admin: orgs", "orgs", search=search, items=[], pager=None)
            raise PageError(exc.status, exc.detail, "admin_orgs.html", **context) from None
        return page(
            request,
            settings,
            "admin_orgs.html",
            **_area(
                shown,
                "Platform admin: orgs",
                "orgs",
                search=search,
                items=found.items,
                pager=pager(request, found.next_offset),
                plan_names={plan.id: plan.name for plan in PLANS.values()},
            ),
        )

    @get("/orgs/{org_id:str}", opt=ADMIN_PAGE)
    async def org(
        self,
        org_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        return page(request, settings, "admin_org.html", **await self._org_context(db, console, org_id))

    @post("/orgs/{org_id:str}/plan", opt=ADMIN_PAGE)
    async def change_plan(
        self,
        org_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        form = await request.form()
        try:
            changed = await service.change_plan(
                db, org_id, _text(form, "plan"), force=_text(form, "force") == "yes", actor=console.actor
            )
        except ProblemError as exc:
            # Refused before anything was written: the same page again, with the service's reason.
            context = await self._org_context(db, console, org_id)
            raise PageError(exc.status, exc.detail, "admin_org.html", **context) from None
        name = PLANS[changed.plan].name
        if changed.previous == changed.plan:
            flash = f"The org is already on the {name} plan. Nothing changed."
        elif changed.over_quota:
            over = ", ".join(f"{use.quota} {use.used} of {use.limit}" for use in changed.over_quota)
            flash = f"Moved the org to the {name} plan; it keeps what it has over the limits ({over})."
        else:
            flash = f"Moved the org to the {name} plan. Its new quotas apply now."
        return see_other(f"{ADMIN_PREFIX}/orgs/{org_id}", flash=flash, settings=settings)

    async def _org_context(self, db: AsyncSession, console: ConsoleContext, org_id: str) -> dict[str, Any]:
        detail = await service.org_support_view(db, org_id)
        shown = await frame(db, console)
        return _area(
            shown,
            f"Org {detail.name}",
            "orgs",
            detail=detail,
            plan_name=PLANS[detail.plan].name if detail.plan in PLANS else detail.plan,
            plans=list(PLANS.values()),
            quotas=[(QUOTA_LABELS.get(use.quota, use.quota), use) for use in detail.usage],
        )

    # --- accounts and their sessions -------------------------------------------------------------

    @get("/accounts", opt=ADMIN_PAGE)
    async def list_accounts(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        search = _search(request)
        shown = await frame(db, console)
        title = "Platform admin: accounts"
        try:
            found = await service.list_accounts(db, search=search, limit=PAGE_SIZE, offset=offset_of(request))
        except ProblemError as exc:
            context = _area(shown, title, "accounts", search=search, items=[], pager=None)
            raise PageError(exc.status, exc.detail, "admin_accounts.html", **context) from None
        return page(
            request,
            settings,
            "admin_accounts.html",
            **_area(
                shown,
                title,
                "accounts",
                search=search,
                items=found.items,
                pager=pager(request, found.next_offset),
            ),
        )

    @get("/accounts/{account_id:str}", opt=ADMIN_PAGE)
    async def account(
        self,
        account_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        detail = await service.account_support_view(db, account_id, identity=runtime.identity)
        shown = await frame(db, console)
        return page(
            request,
            settings,
            "admin_account.html",
            **_area(
                shown,
                f"Account {detail.email}",
                "accounts",
                detail=detail,
                own=detail.id == console.account.id,
            ),
        )

    @post("/accounts/{account_id:str}/sessions/revoke", opt=ADMIN_PAGE)
    async def revoke_sessions(
        self,
        account_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        revoked = await service.revoke_account_sessions(
            db, account_id, current_session_id=console.session.id, actor=console.actor
        )
        sessions = f"{revoked.revoked} session{'' if revoked.revoked == 1 else 's'}"
        if revoked.kept_current:
            flash = f"Revoked {sessions} of your account; this one stays signed in."
        else:
            flash = f"Revoked {sessions}. The account must sign in again everywhere."
        return see_other(f"{ADMIN_PREFIX}/accounts/{account_id}", flash=flash, settings=settings)

    # --- identity backend (G26) ------------------------------------------------------------------

    @get("/directory", opt=ADMIN_PAGE)
    async def directory(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        context, problem = await self._directory_context(request, db, console, runtime)
        if problem is not None:  # the backend's own answer, as the admin API gives it
            raise PageError(problem.status, problem.detail, "admin_directory.html", **context)
        return page(request, settings, "admin_directory.html", **context)

    @post("/directory/users/{directory_user_id:str}/deactivate", opt=ADMIN_PAGE)
    async def deactivate_user(
        self,
        directory_user_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        try:
            user = await service.deactivate_directory_user(
                db, runtime.identity, directory_user_id, admin=console.account, actor=console.actor
            )
        except ProblemError as exc:
            raise await self._refused(exc, request, db, console, runtime) from None
        flash = f"Deactivated {user.email or user.id}: no more sign-ins, and every session is revoked."
        return see_other(f"{ADMIN_PREFIX}/directory", flash=flash, settings=settings)

    @post("/directory/users/{directory_user_id:str}/reset-mfa", opt=ADMIN_PAGE)
    async def reset_mfa(
        self,
        directory_user_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        try:
            reset = await service.reset_directory_user_mfa(
                db, runtime.identity, directory_user_id, admin=console.account, actor=console.actor
            )
        except ProblemError as exc:
            raise await self._refused(exc, request, db, console, runtime) from None
        devices = f"{reset.removed} second-factor device{'' if reset.removed == 1 else 's'}"
        flash = f"Removed {devices}. The user signs in with a password alone until they enrol again."
        return see_other(f"{ADMIN_PREFIX}/directory", flash=flash, settings=settings)

    async def _refused(
        self, exc: ProblemError, request: Req, db: AsyncSession, console: ConsoleContext, runtime: Runtime
    ) -> PageError:
        """The directory page again with the service's or the backend's reason (nothing is written)."""
        context, _ = await self._directory_context(request, db, console, runtime)
        return PageError(exc.status, exc.detail, "admin_directory.html", **context)

    async def _directory_context(
        self, request: Req, db: AsyncSession, console: ConsoleContext, runtime: Runtime
    ) -> tuple[dict[str, Any], ProblemError | None]:
        """The directory page's lists, or empty lists and the problem when the backend refuses or
        cannot answer (Authentik down, say)."""
        search = _search(request)
        identity = runtime.identity
        shown = await frame(db, console)
        users: list[DirectoryUserPublic] = []
        groups: list[DirectoryGroupPublic] = []
        next_page: Pager | None = None
        problem = None
        try:
            found = await service.list_directory_users(
                db, identity, search=search, limit=PAGE_SIZE, offset=offset_of(request)
            )
            users, next_page = found.items, pager(request, found.next_offset)
            groups = (await service.list_directory_groups(db, identity)).items
        except ProblemError as exc:
            problem = exc
        context = _area(
            shown,
            "Platform admin: identity directory",
            "directory",
            provider=identity.name,
            search=search,
            users=users,
            groups=groups,
            pager=next_page,
        )
        return context, problem
