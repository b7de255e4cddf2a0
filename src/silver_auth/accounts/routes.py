"""Console sign-in, sign-out, the current account, and the account's own sessions."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts import sessions as service
from silver_auth.accounts import sign_in as console_sign_in
from silver_auth.accounts.devices import device_label
from silver_auth.accounts.guards import (
    ACCOUNT,
    PUBLIC,
    SSO_REQUIRED,
    ConsoleContext,
    builtin_identity_only,
    check_origin,
)
from silver_auth.accounts.models import Account
from silver_auth.accounts.schemas import (
    AccountPublic,
    Me,
    MfaChallenge,
    SessionPage,
    SessionPublic,
    SignIn,
)
from silver_auth.accounts.service import account_groups
from silver_auth.accounts.sessions import ConsoleSession, ConsoleSessionCodec
from silver_auth.core.schemas import RevokedCount
from silver_auth.mfa.factors import SecondFactorDeps
from silver_auth.settings import Settings
from silver_auth.web.deps import request_ip
from silver_auth.web.openapi import THROTTLED, problem


def _me(account: Account, session: ConsoleSession, groups: list[str], csrf_token: str) -> Me:
    return Me(
        account=AccountPublic(
            id=account.id, email=account.email, groups=groups, created_at=account.created_at
        ),
        session_id=session.id,
        mfa=session.mfa,
        csrf_token=csrf_token,
    )


def session_cookie(settings: Settings, value: str, max_age: int | None) -> Cookie:
    return Cookie(
        key=settings.session_cookie_name,
        value=value,
        path="/",
        httponly=True,
        secure=settings.console_cookie_secure,
        samesite=settings.session_cookie_samesite.lower(),  # type: ignore[arg-type]
        max_age=max_age,
    )


class SessionController(Controller):
    path = "/console/api"
    tags = ["console: sessions"]

    @post(
        "/sign-in",
        opt={**PUBLIC, "rate_limit": "sign-in"},
        guards=[builtin_identity_only],  # SILVER_IDENTITY=authentik: passwords live in Authentik
        status_code=200,
        summary="Sign in: email and password, then a TOTP or recovery code when MFA is enabled",
        responses={
            401: problem(
                "a wrong email or password (`unauthorized`), a code not accepted (`mfa-failed`), or no "
                "sign-in waiting for a code (`unauthorized`)"
            ),
            403: problem(f"a foreign `Origin` (`csrf-failed`); or {SSO_REQUIRED}"),
            429: THROTTLED,
        },
    )
    async def sign_in(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SignIn],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        second_factors: NamedDependency[SecondFactorDeps],
        console_sessions: NamedDependency[ConsoleSessionCodec],
    ) -> Response[Me | MfaChallenge]:
        check_origin(request)
        result = await console_sign_in.sign_in(
            db,
            second_factors,
            console_sessions,
            data,
            cookie=request.cookies.get(settings.session_cookie_name),
            ip=request_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
        if result.pending:  # the cookie finishes this sign-in and nothing else
            max_age = settings.console_mfa_pending_minutes * 60
            challenge = MfaChallenge(mfa_required=True, methods=console_sign_in.METHODS, expires_in=max_age)
            return Response(
                challenge, cookies=[session_cookie(settings, result.issued.cookie_value, max_age)]
            )
        me = _me(
            result.account,
            result.issued.session,
            await account_groups(db, result.account.id),
            console_sessions.csrf_token(result.issued.session.id),
        )
        max_age = settings.session_absolute_hours * 3600
        return Response(me, cookies=[session_cookie(settings, result.issued.cookie_value, max_age)])

    @post("/sign-out", opt=ACCOUNT, status_code=204, summary="Sign out (revokes this session)")
    async def sign_out(
        self,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[None]:
        await service.revoke_session(db, console.session.id, actor=console.actor, signing_out=True)
        return Response(None, status_code=204, cookies=[session_cookie(settings, "", 0)])

    @get("/me", opt=ACCOUNT, summary="The signed-in account, with the CSRF token")
    async def me(self, console: NamedDependency[ConsoleContext], db: NamedDependency[AsyncSession]) -> Me:
        return _me(
            console.account, console.session, await account_groups(db, console.account.id), console.csrf_token
        )

    @get("/sessions", opt=ACCOUNT, summary="The signed-in account's active sessions")
    async def list_sessions(
        self, console: NamedDependency[ConsoleContext], db: NamedDependency[AsyncSession]
    ) -> SessionPage:
        rows = await service.list_sessions(db, console.account.id)
        return SessionPage(
            items=[
                SessionPublic(
                    id=s.id,
                    current=s.id == console.session.id,
                    created_at=s.created_at,
                    last_seen_at=s.last_seen_at,
                    expires_at=s.expires_at,
                    ip=s.ip,
                    user_agent=s.user_agent,
                    device=device_label(s.user_agent),
                    mfa=s.mfa,
                )
                for s in rows
            ]
        )

    @delete("/sessions/{session_id:str}", opt=ACCOUNT, summary="Revoke one of your sessions")
    async def revoke_session(
        self,
        session_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
    ) -> None:
        await service.revoke_session(db, session_id, actor=console.actor)

    @post("/sessions/revoke-others", opt=ACCOUNT, status_code=200, summary="Sign out everywhere else")
    async def revoke_others(
        self, console: NamedDependency[ConsoleContext], db: NamedDependency[AsyncSession]
    ) -> RevokedCount:
        return RevokedCount(
            revoked=await service.revoke_other_sessions(db, console.session.id, actor=console.actor)
        )
