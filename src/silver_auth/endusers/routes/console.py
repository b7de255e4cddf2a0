"""A read-only console view of a project's end-users, for org members (viewer and up)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core.text import MAX_EMAIL
from silver_auth.endusers import service
from silver_auth.endusers.presenters import user_public
from silver_auth.endusers.schemas import EndUserPage
from silver_auth.endusers.service import ProjectEnvironment
from silver_auth.orgs.guards import VIEWER


class EndUserConsoleController(Controller):
    path = "/console/api/projects/{project_id:str}/users"
    tags = ["console: end-users"]

    @get("/", opt=VIEWER, summary="End-users of one environment of a project (read-only)")
    async def list_users(
        self,
        *,
        project_id: FromPath[str],
        db: NamedDependency[AsyncSession],
        environment: Annotated[Literal["test", "live"], QueryParameter()] = "live",
        email: Annotated[str | None, QueryParameter(required=False, max_length=MAX_EMAIL)] = None,
        after: Annotated[str | None, QueryParameter(required=False, max_length=40)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    ) -> EndUserPage:
        page = await service.user_page(
            db, ProjectEnvironment(project_id, environment), email=email, after=after, limit=limit
        )
        return EndUserPage(
            items=[user_public(u, mfa=u.id in page.with_mfa) for u in page.users], next=page.next
        )
