"""Console pages of a project's end-users: the list (search by email, one environment at a time) and
one user's details and sessions, read by viewers as `GET /console/api/projects/{id}/users` is.

The console API has no end-user mutations yet, so ban, unban and session revocation call the services
the backend API (`/v1/backend`) calls, with the developer role as their access rule: the role that
holds the project's secret keys, and so could do the same through the backend API already.

An end-user lives in one environment; its pages carry `?environment=` (live unless told) like the list,
and a user or session outside the path's project and environment is a 404, as for an unknown id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.console.pages import PAGE_HANDLERS, PageError, frame, page_opt
from silver_auth.console.render import PAGE_SIZE, PREFIX, Req, page, pager, see_other
from silver_auth.core.errors import NotFound, ProblemError
from silver_auth.core.text import MAX_EMAIL
from silver_auth.endusers import mfa, service, sessions
from silver_auth.endusers.models import EndUser
from silver_auth.endusers.service import ProjectEnvironment
from silver_auth.orgs import service as orgs
from silver_auth.orgs.guards import OrgAccess
from silver_auth.orgs.models import Role
from silver_auth.projects.service import get_project
from silver_auth.settings import Settings

Environment = Annotated[Literal["test", "live"], QueryParameter()]


@dataclass(frozen=True, slots=True)
class UserSearch:
    """The list's query: one environment, an email substring, the page's cursor."""

    environment: str
    email: str | None
    after: str | None


def provide_search(
    environment: Environment = "live",
    email: Annotated[str | None, QueryParameter(required=False, max_length=MAX_EMAIL)] = None,
    after: Annotated[str | None, QueryParameter(required=False, max_length=40)] = None,
) -> UserSearch:
    return UserSearch(environment, email, after)


def user_path(project_id: str, user_id: str, environment: str, action: str = "") -> str:
    """A user's page, or one of its forms' actions (`/ban`, `/sessions/revoke`, …)."""
    return f"{PREFIX}/projects/{project_id}/users/{user_id}{action}?environment={environment}"


class EndUserPages(Controller):
    path = PREFIX
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    async def _context(
        self, db: AsyncSession, console: ConsoleContext, org_access: OrgAccess, project_id: str, **more: Any
    ) -> dict[str, Any]:
        shown = await frame(db, console)
        return shown.context(
            await orgs.get_org(db, org_access.org_id),
            section="users",
            current_project=await get_project(db, project_id),
            can_manage=org_access.role.at_least(Role.DEVELOPER),
            **more,
        )

    @get(
        "/projects/{project_id:str}/users",
        opt=page_opt(Role.VIEWER.value),
        dependencies={"search": Provide(provide_search, sync_to_thread=False)},
    )
    async def list_users(
        self,
        *,
        project_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        search: NamedDependency[UserSearch],
    ) -> Response[Any]:
        context = await self._context(
            db,
            console,
            org_access,
            project_id,
            title="End-users",
            environment=search.environment,
            email=search.email or "",
        )
        scope = ProjectEnvironment(project_id, search.environment)
        try:
            found = await service.user_page(
                db, scope, email=search.email, after=search.after, limit=PAGE_SIZE
            )
        except ProblemError as exc:  # a cursor or filter the list refuses: say why, list nothing
            raise PageError(
                exc.status, exc.detail, "endusers.html", **context, users=[], pager=pager(request, None)
            ) from None
        users = [(user, user.id in found.with_mfa) for user in found.users]
        return page(
            request, settings, "endusers.html", **context, users=users, pager=pager(request, found.next)
        )

    @get("/projects/{project_id:str}/users/{user_id:str}", opt=page_opt(Role.VIEWER.value))
    async def show_user(
        self,
        *,
        project_id: FromPath[str],
        user_id: FromPath[str],
        request: Req,
        console: NamedDependency[ConsoleContext],
        org_access: NamedDependency[OrgAccess],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        environment: Environment = "live",
    ) -> Response[Any]:
        user = await _user(db, project_id, environment, user_id)
        listed = [(s, sessions.session_status(s, user)) for s in await sessions.list_sessions(db, user)]
        return page(
            request,
            settings,
            "enduser.html",
            **await self._context(
                db,
                console,
                org_access,
                project_id,
                title=user.email,
                environment=environment,
                user=user,
                mfa=await mfa.has_mfa(db, user.id),
                sessions=listed,
                active=sum(1 for _, status in listed if status == "active"),
                user_path=user_path,
            ),
        )

    @post("/projects/{project_id:str}/users/{user_id:str}/ban", opt=page_opt(Role.DEVELOPER.value))
    async def ban(
        self,
        *,
        project_id: FromPath[str],
        user_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        environment: Environment = "live",
    ) -> Response[Any]:
        user = await _user(db, project_id, environment, user_id)
        await service.set_banned(db, user, True, actor=console.actor)
        return see_other(
            user_path(project_id, user_id, environment),
            flash=f"Banned {user.email}: their sign-in is refused and their sessions ended. "
            "Unban them to let them back.",
            settings=settings,
        )

    @post("/projects/{project_id:str}/users/{user_id:str}/unban", opt=page_opt(Role.DEVELOPER.value))
    async def unban(
        self,
        *,
        project_id: FromPath[str],
        user_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        environment: Environment = "live",
    ) -> Response[Any]:
        user = await _user(db, project_id, environment, user_id)
        await service.set_banned(db, user, False, actor=console.actor)
        return see_other(
            user_path(project_id, user_id, environment),
            flash=f"Lifted the ban on {user.email}. They can sign in again.",
            settings=settings,
        )

    @post(
        "/projects/{project_id:str}/users/{user_id:str}/sessions/revoke", opt=page_opt(Role.DEVELOPER.value)
    )
    async def revoke_all(
        self,
        *,
        project_id: FromPath[str],
        user_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        environment: Environment = "live",
    ) -> Response[Any]:
        user = await _user(db, project_id, environment, user_id)
        count = await sessions.revoke_all(db, user, actor=console.actor)
        return see_other(
            user_path(project_id, user_id, environment),
            flash=f"Ended {count} session{'' if count == 1 else 's'} of {user.email}. "
            "They sign in again to get a new one.",
            settings=settings,
        )

    @post(
        "/projects/{project_id:str}/users/{user_id:str}/sessions/{end_user_session_id:str}/revoke",
        opt=page_opt(Role.DEVELOPER.value),
    )
    async def revoke_one(
        self,
        *,
        project_id: FromPath[str],
        user_id: FromPath[str],
        end_user_session_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        environment: Environment = "live",
    ) -> Response[Any]:
        session, user = await sessions.get_session(
            db, ProjectEnvironment(project_id, environment), end_user_session_id
        )
        if user.id != user_id:  # the path names the user: another user's session is not found here
            raise NotFound("no such session")
        await sessions.revoke_one(db, session, user, actor=console.actor)
        return see_other(
            user_path(project_id, user_id, environment),
            flash=f"Ended the session {session.id}: it cannot be refreshed, and a live check refuses it.",
            settings=settings,
        )


async def _user(db: AsyncSession, project_id: str, environment: str, user_id: str) -> EndUser:
    return await service.get_user(db, ProjectEnvironment(project_id, environment), user_id)
