"""`GET /p/{project_id}/oidc/callback`: Authentik sends the end-user's browser back here
(SILVER_IDENTITY=authentik); the session then starts exactly as after the builtin sign-in form."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.authentik import hosted_sign_in as oidc
from silver_auth.authentik.login_states import STATE_COOKIE
from silver_auth.core.ids import looks_like
from silver_auth.endusers import sessions
from silver_auth.hosted import tokens
from silver_auth.hosted.branding import hosted_branding
from silver_auth.hosted.context import PAGE_HANDLERS, Page, PageError, Req
from silver_auth.hosted.sign_in import _finish
from silver_auth.hosted.tokens import PAGE_OPT, PagePath
from silver_auth.oidc_provider.requests import open_request
from silver_auth.projects.branding import branding_of
from silver_auth.runtime import Runtime
from silver_auth.web.deps import request_ip

Query = Annotated[str | None, QueryParameter(required=False, max_length=4096)]
StateQuery = Annotated[str | None, QueryParameter(name="state", required=False, max_length=4096)]


class HostedOidcCallback(Controller):
    path = "/p/{project_id:str}/oidc"
    tags = ["hosted pages"]
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    @get("/callback", opt={**PAGE_OPT, "rate_limit": "sign-in"})
    async def callback(
        self,
        *,
        request: Req,
        project_id: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
        code: Query = None,
        oauth_state: StateQuery = None,  # `state` is a reserved name in Litestar
        error: Query = None,
    ) -> Response[Any]:
        settings, applications = runtime.settings, runtime.applications
        if not looks_like("prj", project_id) or applications is None:  # builtin identity
            raise PageError(404, "There is no such sign-in page.")
        project, claims, login = await oidc.finish(
            db,
            runtime.sessionmaker,
            applications,
            project_id,
            code=code,
            state=oauth_state,
            error=error,
            cookie=request.cookies.get(STATE_COOKIE),
        )
        redirect_url = login.redirect_url or ""
        if redirect_url and not sessions.redirect_allowed(project, redirect_url, settings.accounts_url):
            # The allowlist changed while the user was at Authentik: the URL is no longer registered.
            raise PageError(400, "The redirect URL is no longer registered for this project.")
        looks = hosted_branding(project, await branding_of(db, project.id))
        sealed = login.client_authorization or ""
        authorization = open_request(settings, project.id, str(login.environment), sealed) if sealed else None
        if sealed and authorization is None:
            raise PageError(400, "This sign-in took too long: go back to the app and sign in again.")
        page = Page(
            settings=settings,
            project_id=project.id,
            project_name=looks.name,
            branding=looks,
            where=PagePath(settings.auth_url, project.id, str(login.environment)),
            form_cookie=tokens.new_csrf_cookie(),
            new_cookie=False,
            redirect_url=redirect_url,
            state=login.client_state or "",
            code_challenge=login.client_challenge or "",
            authorization=authorization,
            authorization_token=sealed if authorization else "",
        )
        user = await oidc.end_user_for(db, page.scope, claims, ip=request_ip(request))
        response = await _finish(db, page, request, user, mfa=oidc.signed_in_with_mfa(claims), via=oidc.VIA)
        response.set_cookie(tokens.oidc_state_cookie(settings, project.id, ""))
        return response
