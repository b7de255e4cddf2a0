"""The customer's side of the hosted sign-in: exchange the redirect `code`, refresh the session JWT.

Both take the publishable key of the project and environment (header `X-Publishable-Key`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.api.deps import runtime_of
from silver_auth.api.state import Runtime
from silver_auth.core.errors import Unauthorized
from silver_auth.endusers import sessions
from silver_auth.endusers.schemas import ClientSession, CodeExchange, SessionRefresh
from silver_auth.endusers.service import Scope

Req = Request[Any, Any, Any]


async def _publishable_first(request: Req) -> None:
    await _scope(request)


async def _scope(request: Req) -> Scope:
    raw = request.headers.get("x-publishable-key") or ""
    principal = await runtime_of(request).keys.verify(raw, "publishable")
    if principal is None:
        raise Unauthorized("a valid publishable key is required in X-Publishable-Key")
    return Scope(principal.project_id, principal.environment)


def _answer(issued: sessions.IssuedSession) -> ClientSession:
    return ClientSession(
        session_id=issued.session.id,
        user_id=issued.user.id,
        session_token=issued.session_token,
        jwt=issued.jwt,
        jwt_expires_at=issued.jwt_expires_at,
    )


@post(
    "/exchange", status_code=200, summary="Exchange the one-time code for a session token and a session JWT"
)
async def exchange(
    request: Req,
    data: JSONBody[CodeExchange],
    db: NamedDependency[AsyncSession],
    runtime: NamedDependency[Runtime],
) -> ClientSession:
    scope = await _scope(request)
    issued = await sessions.exchange_code(
        db,
        runtime.settings,
        scope,
        data.code,
        redirect_url=data.redirect_url,
        code_verifier=data.code_verifier,
    )
    return _answer(issued)


@post("/refresh", status_code=200, summary="A fresh session JWT for a live session")
async def refresh(
    request: Req,
    data: JSONBody[SessionRefresh],
    db: NamedDependency[AsyncSession],
    runtime: NamedDependency[Runtime],
) -> ClientSession:
    scope = await _scope(request)
    return _answer(await sessions.refresh(db, runtime.settings, scope, data.session_token))


client_router = Router(
    path="/v1/client/sessions",
    tags=["client: end-user sessions"],
    before_request=_publishable_first,
    route_handlers=[exchange, refresh],
)
