"""The customer's side of the hosted sign-in: exchange the redirect `code`, refresh the session JWT,
sign out.

Either key of the project environment authenticates: the publishable key (`X-Publishable-Key`, public
by design, so a code needs its PKCE verifier), or the secret key (`Authorization: Bearer sk_…`, a
customer server; a code started without PKCE is accepted). A Bearer header, when sent, is the one used.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core.errors import Forbidden, Unauthorized
from silver_auth.endusers import grants, sessions
from silver_auth.endusers.schemas import ClientSession, CodeExchange, SessionRefresh, SessionSignOut
from silver_auth.endusers.service import ProjectEnvironment
from silver_auth.keys.guards import require_secret_key
from silver_auth.runtime import Runtime, runtime_of
from silver_auth.web.cors import allow_origins
from silver_auth.web.deps import bearer_token, request_ip, set_actor
from silver_auth.web.openapi import BEARER_SCHEME, PUBLISHABLE_SCHEME, AccessRule, documents_access, problem

Req = Request[Any, Any, Any]

CLIENT_KEY_ACCESS = "publishable-or-secret-key"
documents_access(
    CLIENT_KEY_ACCESS,
    AccessRule(
        security=((PUBLISHABLE_SCHEME,), (BEARER_SCHEME,)),
        errors=(
            (401, "no valid publishable or secret key of a project (`unauthorized`)"),
            (403, "a browser `Origin` that is not one of the project's allowed origins (`forbidden`)"),
        ),
    ),
)


async def _key_first(request: Req) -> None:
    """Runs before the body is parsed: without a valid key the answer is 401, whatever the body."""
    await _caller(request)


async def _caller(request: Req) -> tuple[ProjectEnvironment, bool]:
    """The key's project environment, and whether it is the secret key (a confidential client). A
    browser's Origin must be one of the project's allowed origins, else 403 before anything is read or
    rotated: CORS only hides the answer from the page, the request itself would still act."""
    if bearer_token(request.scope) is not None:
        principal = await require_secret_key(request)
        confidential = True
    else:
        raw = request.headers.get("x-publishable-key") or ""
        found = await runtime_of(request).keys.verify(raw, "publishable")
        if found is None:
            raise Unauthorized(
                "a valid publishable key (X-Publishable-Key) or secret key (Authorization: Bearer sk_…) "
                "is required"
            )
        principal, confidential = found, False
        set_actor(request.scope, principal.key_id)
    origin = request.headers.get("origin")
    if origin is not None and origin not in principal.allowed_origins:
        raise Forbidden("this page's origin is not one of the project's allowed origins")
    if not confidential:  # pages may read what the publishable key answers, never the secret key's
        allow_origins(request.scope, principal.allowed_origins)
    return ProjectEnvironment(principal.project_id, principal.environment), confidential


INVALID_GRANT = problem(
    "the code or session token was refused (`invalid-grant`): `error` is `invalid_grant`, `reason` the check"
)


def _answer(issued: grants.EndUserSessionIssued) -> ClientSession:
    return ClientSession(
        session_id=issued.session.id,
        user_id=issued.user.id,
        session_token=issued.session_token,
        jwt=issued.jwt,
        jwt_expires_at=issued.jwt_expires_at,
    )


@post(
    "/exchange",
    opt={"rate_limit": "code-exchange"},
    status_code=200,
    summary="Exchange the one-time code for a session token and a session JWT",
    description="A refused exchange is a 400 `invalid-grant` problem with `error: invalid_grant` and the "
    "failed check in `reason`: " + ", ".join(f"`{reason}`" for reason in grants.GRANT_REFUSALS) + ". "
    "A code redeemed a second time revokes the session its first exchange started (RFC 6749 4.1.2).",
    responses={400: INVALID_GRANT},
)
async def exchange(
    request: Req,
    data: JSONBody[CodeExchange],
    db: NamedDependency[AsyncSession],
    runtime: NamedDependency[Runtime],
) -> ClientSession:
    scope, confidential = await _caller(request)
    presented = grants.CodeRedemption(data.code, data.redirect_url, data.code_verifier, confidential)
    issued = await grants.exchange_code(
        db, runtime.sessionmaker, runtime.settings, scope, presented, ip=request_ip(request)
    )
    return _answer(issued)


@post(
    "/refresh",
    opt={"rate_limit": "refresh"},
    status_code=200,
    summary="A fresh session JWT and the next session token (rotation)",
    responses={
        400: INVALID_GRANT,
        401: problem(
            "the session token is unknown, or its session has ended (`unauthorized`, with `reason`)"
        ),
    },
)
async def refresh(
    request: Req,
    data: JSONBody[SessionRefresh],
    db: NamedDependency[AsyncSession],
    runtime: NamedDependency[Runtime],
) -> ClientSession:
    scope, _ = await _caller(request)
    issued = await grants.refresh(
        db, runtime.sessionmaker, runtime.settings, scope, data.session_token, ip=request_ip(request)
    )
    return _answer(issued)


@post(
    "/sign-out",
    opt={"rate_limit": "refresh"},
    status_code=204,
    summary="End the session of a session token (sign-out)",
    description="Ends the session whose current session token is sent, at once: its session JWTs verify "
    "as not valid (`revoked`) and its session token refreshes nothing. The session is also the hosted "
    "pages' session of the browser it was signed in on. The answer is 204 whatever the token: an "
    "unknown, replaced (already used for a refresh), expired or foreign one changes nothing and is "
    "answered the same (as RFC 7009 2.2), and a replaced one revokes nothing, unlike at the refresh.",
)
async def sign_out(
    request: Req,
    data: JSONBody[SessionSignOut],
    db: NamedDependency[AsyncSession],
) -> Response[None]:
    scope, _ = await _caller(request)
    await sessions.sign_out_with_token(db, scope, data.session_token)
    return Response(None, status_code=204)


client_router = Router(
    path="/v1/client/sessions",
    tags=["client: end-user sessions"],
    before_request=_key_first,
    opt={"access": CLIENT_KEY_ACCESS},
    route_handlers=[exchange, refresh, sign_out],
)
