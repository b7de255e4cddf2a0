"""The backend API for a customer's server (`Authorization: Bearer sk_…`): its end-users and sessions.

Every handler calls require_secret_key first and works inside the key's project and environment only;
ids of other projects or environments answer 404, exactly like unknown ids.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor
from silver_auth.core.schemas import RevokedCount
from silver_auth.core.text import MAX_EMAIL
from silver_auth.endusers import mfa, service, sessions
from silver_auth.endusers.presenters import session_public, user_public
from silver_auth.endusers.schemas import (
    EndUserCreate,
    EndUserPage,
    EndUserPublic,
    EndUserSessionPage,
    EndUserSessionPublic,
    EndUserUpdate,
    VerifyAnswer,
    VerifyRequest,
)
from silver_auth.endusers.service import ProjectEnvironment
from silver_auth.keys.guards import SECRET_KEY_ACCESS, require_secret_key
from silver_auth.settings import Settings
from silver_auth.web.deps import request_ip
from silver_auth.web.openapi import OVER_QUOTA, problem

EMAIL_TAKEN = problem("an end-user with this email already exists (`conflict`)")

Req = Request[Any, Any, Any]


async def _caller(request: Req) -> tuple[ProjectEnvironment, Actor]:
    principal = await require_secret_key(request)
    return ProjectEnvironment(principal.project_id, principal.environment), Actor(
        principal.key_id, request_ip(request)
    )


async def _key_first(request: Req) -> None:
    """Runs before the body is parsed: without a valid key the answer is 401, whatever the body."""
    await require_secret_key(request)


async def _public(db: AsyncSession, user: Any) -> EndUserPublic:
    return user_public(user, mfa=await mfa.has_mfa(db, user.id))


@get("/users", summary="List end-users (paginated; `email` filters by substring)")
async def list_users(
    request: Req,
    db: NamedDependency[AsyncSession],
    email: Annotated[str | None, QueryParameter(required=False, max_length=MAX_EMAIL)] = None,
    after: Annotated[str | None, QueryParameter(required=False, max_length=40)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
) -> EndUserPage:
    scope, _ = await _caller(request)
    page = await service.user_page(db, scope, email=email, after=after, limit=limit)
    return EndUserPage(items=[user_public(u, mfa=u.id in page.with_mfa) for u in page.users], next=page.next)


@post(
    "/users",
    summary="Create an end-user (password optional; within the plan's end-user quota)",
    responses={403: OVER_QUOTA, 409: EMAIL_TAKEN},
)
async def create_user(
    request: Req, data: JSONBody[EndUserCreate], db: NamedDependency[AsyncSession]
) -> EndUserPublic:
    scope, actor = await _caller(request)
    user = await service.create_user(db, scope, data.email, data.password, actor=actor, via="backend-api")
    return user_public(user, mfa=False)


@get("/users/{user_id:str}", summary="An end-user")
async def get_user(request: Req, user_id: FromPath[str], db: NamedDependency[AsyncSession]) -> EndUserPublic:
    scope, _ = await _caller(request)
    return await _public(db, await service.get_user(db, scope, user_id))


@patch(
    "/users/{user_id:str}",
    summary="Change an end-user's email or password (a new password ends its sessions)",
    responses={409: EMAIL_TAKEN},
)
async def update_user(
    request: Req, user_id: FromPath[str], data: JSONBody[EndUserUpdate], db: NamedDependency[AsyncSession]
) -> EndUserPublic:
    scope, actor = await _caller(request)
    user = await service.get_user(db, scope, user_id)
    await service.update_user(db, user, email=data.email, password=data.password, actor=actor)
    return await _public(db, user)


@delete("/users/{user_id:str}", status_code=204, summary="Delete an end-user, its sessions and factors")
async def delete_user(request: Req, user_id: FromPath[str], db: NamedDependency[AsyncSession]) -> None:
    scope, actor = await _caller(request)
    await service.delete_user(db, await service.get_user(db, scope, user_id), actor=actor)


@post(
    "/users/{user_id:str}/ban", status_code=200, summary="Ban an end-user: sign-in refused, sessions revoked"
)
async def ban_user(request: Req, user_id: FromPath[str], db: NamedDependency[AsyncSession]) -> EndUserPublic:
    scope, actor = await _caller(request)
    user = await service.set_banned(db, await service.get_user(db, scope, user_id), True, actor=actor)
    return await _public(db, user)


@post("/users/{user_id:str}/unban", status_code=200, summary="Lift a ban")
async def unban_user(
    request: Req, user_id: FromPath[str], db: NamedDependency[AsyncSession]
) -> EndUserPublic:
    scope, actor = await _caller(request)
    user = await service.set_banned(db, await service.get_user(db, scope, user_id), False, actor=actor)
    return await _public(db, user)


@get("/users/{user_id:str}/sessions", summary="An end-user's sessions")
async def user_sessions(
    request: Req, user_id: FromPath[str], db: NamedDependency[AsyncSession]
) -> EndUserSessionPage:
    scope, _ = await _caller(request)
    user = await service.get_user(db, scope, user_id)
    return EndUserSessionPage(items=[session_public(s, user) for s in await sessions.list_sessions(db, user)])


@post(
    "/users/{user_id:str}/sessions/revoke",
    status_code=200,
    summary="Revoke every session of an end-user (G29)",
)
async def revoke_user_sessions(
    request: Req, user_id: FromPath[str], db: NamedDependency[AsyncSession]
) -> RevokedCount:
    scope, actor = await _caller(request)
    user = await service.get_user(db, scope, user_id)
    return RevokedCount(revoked=await sessions.revoke_all(db, user, actor=actor))


@post(
    "/sessions/verify", status_code=200, summary="Verify a session JWT, including a live check of its session"
)
async def verify_session(
    request: Req,
    data: JSONBody[VerifyRequest],
    db: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
) -> VerifyAnswer:
    scope, _ = await _caller(request)
    verdict = await sessions.verify_token(db, settings, scope, data.token)
    user = await _public(db, verdict.user) if verdict.user is not None else None
    session = session_public(verdict.session, verdict.user) if verdict.session and verdict.user else None
    return VerifyAnswer(valid=verdict.valid, reason=verdict.reason, session=session, user=user)


@get("/sessions/{session_id:str}", summary="A session")
async def get_session(
    request: Req, session_id: FromPath[str], db: NamedDependency[AsyncSession]
) -> EndUserSessionPublic:
    scope, _ = await _caller(request)
    return session_public(*await sessions.get_session(db, scope, session_id))


@post("/sessions/{session_id:str}/revoke", status_code=200, summary="Revoke one session (G29)")
async def revoke_session(
    request: Req, session_id: FromPath[str], db: NamedDependency[AsyncSession]
) -> EndUserSessionPublic:
    scope, actor = await _caller(request)
    session, user = await sessions.get_session(db, scope, session_id)
    await sessions.revoke_one(db, session, user, actor=actor)
    return session_public(session, user)


backend_router = Router(
    path="/v1/backend",
    tags=["backend: end-users"],
    before_request=_key_first,
    opt=SECRET_KEY_ACCESS,
    route_handlers=[
        list_users,
        create_user,
        get_user,
        update_user,
        delete_user,
        ban_user,
        unban_user,
        user_sessions,
        revoke_user_sessions,
        verify_session,
        get_session,
        revoke_session,
    ],
)
