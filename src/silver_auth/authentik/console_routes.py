"""Console sign-in through Authentik's OIDC: start (redirect to Authentik) and callback (session cookie)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import PUBLIC
from silver_auth.authentik.console_sign_in import STATE_COOKIE_PATH, ConsoleSso, SsoNotEnabled
from silver_auth.authentik.login_states import LOGIN_TTL, STATE_COOKIE
from silver_auth.authentik.routes import AUTHENTIK_DOWN
from silver_auth.runtime import Runtime
from silver_auth.web.deps import request_ip
from silver_auth.web.openapi import problem

NO_SSO = problem("single sign-on is not enabled: the service runs the builtin identity backend (`not-found`)")

Query = Annotated[str | None, QueryParameter(required=False, max_length=4096)]
StateQuery = Annotated[str | None, QueryParameter(name="state", required=False, max_length=4096)]


def _sso(runtime: Runtime) -> ConsoleSso:
    if runtime.sso is None:
        raise SsoNotEnabled("single sign-on is not enabled: this service uses the builtin identity backend")
    return runtime.sso


def _cookie(runtime: Runtime, key: str, value: str, max_age: int, path: str, samesite: str = "lax") -> Cookie:
    # Lax by default: the callback is a top-level navigation from Authentik, so the state cookie comes.
    return Cookie(
        key=key,
        value=value,
        path=path,
        httponly=True,
        secure=runtime.settings.console_cookie_secure,
        samesite=samesite,  # type: ignore[arg-type]
        max_age=max_age,
    )


class OidcController(Controller):
    path = "/console/api/oidc"
    tags = ["console: sessions"]

    @get(
        "/start",
        opt=PUBLIC,
        summary="Sign in through Authentik (redirects there)",
        status_code=303,
        responses={404: NO_SSO, 503: AUTHENTIK_DOWN},
    )
    async def start(
        self, db: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime], next: Query = None
    ) -> Redirect:
        started = await _sso(runtime).start(db, next)
        cookie = _cookie(
            runtime, STATE_COOKIE, started.cookie_value, int(LOGIN_TTL.total_seconds()), STATE_COOKIE_PATH
        )
        return Redirect(started.authorization_url, status_code=303, cookies=[cookie])

    @get(
        "/callback",
        opt={**PUBLIC, "rate_limit": "sign-in"},
        summary="Authentik sends the browser back here",
        status_code=303,
        responses={
            400: problem("the sign-in state is missing, unknown, used or expired (`sso-state-invalid`)"),
            401: problem("Authentik refused the sign-in, or its answer did not verify (`sso-failed`)"),
            404: NO_SSO,
            503: AUTHENTIK_DOWN,
        },
    )
    async def callback(
        self,
        *,
        request: Request[Any, Any, Any],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
        code: Query = None,
        oauth_state: StateQuery = None,  # `state` is a reserved name in Litestar
        error: Query = None,
    ) -> Redirect:
        sso = _sso(runtime)
        claims, next_path = await sso.finish(
            runtime.sessionmaker,
            code=code,
            state=oauth_state,
            error=error,
            cookie=request.cookies.get(STATE_COOKIE),
        )
        issued = await sso.sign_in(
            db, runtime.sessions, claims, ip=request_ip(request), user_agent=request.headers.get("user-agent")
        )
        max_age = runtime.settings.session_absolute_hours * 3600
        cookies = [
            _cookie(
                runtime,
                runtime.settings.session_cookie_name,
                issued.cookie_value,
                max_age,
                "/",
                runtime.settings.session_cookie_samesite.lower(),
            ),
            _cookie(runtime, STATE_COOKIE, "", 0, STATE_COOKIE_PATH),
        ]
        target = runtime.settings.accounts_url.rstrip("/") + next_path
        return Redirect(target, status_code=303, cookies=cookies)
