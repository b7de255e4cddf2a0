"""Hosted end-user pages on the auth host, per project and environment: `/p/{project_id}/{environment}/…`.

Plain HTML forms (no JavaScript), every form protected by a signed token tied to a cookie, errors shown
on the page. The browser comes back to the project's redirect URL (exact match only) with a single-use
`code` and the caller's `state`.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core import urls
from silver_auth.core.errors import Unauthorized
from silver_auth.core.text import MAX_EMAIL
from silver_auth.endusers import mfa, service, sessions
from silver_auth.endusers.events import HOSTED_PAGE
from silver_auth.endusers.models import EndUser, EndUserSession
from silver_auth.hosted import tokens
from silver_auth.hosted.context import (
    PAGE_HANDLERS,
    SIGN_IN_PAGES,
    Page,
    PostedForm,
    Req,
    identity_handover,
    signed_in,
)
from silver_auth.hosted.tokens import PAGE_OPT
from silver_auth.mfa.factors import SecondFactorDeps
from silver_auth.oidc_provider import service as provider
from silver_auth.settings import Settings
from silver_auth.throttle.service import Throttle
from silver_auth.web.deps import request_ip


async def _finish(
    db: AsyncSession, page: Page, request: Req, user: EndUser, *, mfa: bool, via: str = HOSTED_PAGE
) -> Response[Any]:
    """Start the session, set its cookie, and send the browser back with a one-time code."""
    settings = page.settings
    started = await sessions.start_end_user_session(
        db,
        settings,
        user,
        mfa=mfa,
        ip=request_ip(request),
        user_agent=request.headers.get("user-agent"),
        via=via,
    )
    session_cookie = tokens.cookie(
        settings,
        page.where,
        settings.end_user_cookie_name,
        started.cookie,
        settings.end_user_session_hours * 3600,
    )
    response = await _signed_in(db, page, started.session, user)
    response.set_cookie(session_cookie)
    return response


async def _signed_in(db: AsyncSession, page: Page, session: EndUserSession, user: EndUser) -> Response[Any]:
    """Back to the redirect URL with a one-time code for `session` (an OpenID Provider authorization
    response when the page was opened by its authorize endpoint), or the "signed in" page."""
    if page.authorization is not None:
        target = await provider.code_redirect(db, page.settings, session, page.authorization)
    elif page.redirect_url:
        code = await sessions.issue_code(
            db, page.settings, session, page.redirect_url, page.code_challenge or None
        )
        target = urls.with_query(page.redirect_url, code=code, state=page.state)
    else:
        return page.show("done.html", "Signed in", email=user.email)
    return Redirect(target, status_code=303, headers={"Cache-Control": "no-store"})


def _can_continue(page: Page, session: EndUserSession) -> bool:
    """Whether the browser's session may answer the page (`prompt=login` and `max_age` may ask for a
    new sign-in)."""
    return page.authorization is None or provider.fresh_enough(session, page.authorization)


class HostedPages(Controller):
    path = "/p/{project_id:str}/{environment:str}"
    tags = ["hosted pages"]
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS
    before_request = staticmethod(identity_handover)
    dependencies = SIGN_IN_PAGES

    @get("/sign-up", opt=PAGE_OPT)
    async def sign_up_page(self, page: NamedDependency[Page]) -> Response[Any]:
        return page.show("sign_up.html", "Create your account", email="")

    @post("/sign-up", opt={**PAGE_OPT, "rate_limit": "sign-up"})
    async def sign_up(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        form: NamedDependency[PostedForm],
        throttle: NamedDependency[Throttle],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        page = form.page
        email, password = form.field("email", MAX_EMAIL), form.field("password", 1024)
        with page.refusing("sign_up.html", "Create your account", email=email):
            user = await service.sign_up(
                db,
                throttle,
                settings,
                page.scope,
                email,
                password,
                ip=request_ip(request),
            )
        return await _finish(db, page, request, user, mfa=False)

    @get("/sign-in", opt=PAGE_OPT)
    async def sign_in_page(
        self, request: Req, db: NamedDependency[AsyncSession], page: NamedDependency[Page]
    ) -> Response[Any]:
        current = await signed_in(db, page, request)
        # Already signed in here: offer to continue as that user (or to sign out) before a new sign-in.
        signed_in_as = current[1].email if current and _can_continue(page, current[0]) else None
        return page.show("sign_in.html", "Sign in", email="", signed_in_as=signed_in_as)

    @post("/sign-in/continue", opt={**PAGE_OPT, "rate_limit": "sign-in"})
    async def continue_signed_in(
        self, request: Req, db: NamedDependency[AsyncSession], form: NamedDependency[PostedForm]
    ) -> Response[Any]:
        """Go on with the session this browser already has: a new code for it, no new session."""
        page = form.page
        current = await signed_in(db, page, request)
        if current is None:
            gone = "You are not signed in any more; sign in again."
            raise page.refuse("sign_in.html", "Sign in", gone, 400, email="")
        session, user = current
        if not _can_continue(page, session):
            again = "The app asks you to sign in again."
            raise page.refuse("sign_in.html", "Sign in", again, 400, email="", signed_in_as=None)
        return await _signed_in(db, page, session, user)

    @post("/sign-in", opt={**PAGE_OPT, "rate_limit": "sign-in"})
    async def sign_in(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        form: NamedDependency[PostedForm],
        throttle: NamedDependency[Throttle],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        page = form.page
        email = form.field("email", MAX_EMAIL)
        with page.refusing("sign_in.html", "Sign in", email=email):
            user = await service.authenticate(
                db,
                throttle,
                settings,
                page.scope,
                email,
                form.field("password", 1024),
                ip=request_ip(request),
            )
        if await mfa.has_mfa(db, user.id):
            pending = tokens.pending_token(settings, page.where, user.id, page.form_cookie)
            return page.show("totp.html", "Two-step verification", pending=pending)
        return await _finish(db, page, request, user, mfa=False)

    @post("/sign-in/code", opt={**PAGE_OPT, "rate_limit": "mfa"})
    async def sign_in_code(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        form: NamedDependency[PostedForm],
        second_factors: NamedDependency[SecondFactorDeps],
    ) -> Response[Any]:
        page = form.page
        pending = form.field("pending")
        user_id = tokens.pending_user(page.settings, page.where, pending, page.form_cookie)
        user = await db.get(EndUser, user_id) if user_id else None
        if user is None or user.project_id != page.project_id or user.environment != page.where.environment:
            raise page.refuse("sign_in.html", "Sign in", "That took too long; sign in again.", 400, email="")
        with page.refusing("totp.html", "Two-step verification", pending=pending):
            if user.banned_at is not None:
                raise Unauthorized(service.WRONG_CREDENTIALS)
            await mfa.check_second_factor(
                db,
                second_factors,
                user,
                form.field("code", 64),
                ip=request_ip(request),
            )
        return await _finish(db, page, request, user, mfa=True)

    @get("/sign-out", opt=PAGE_OPT)
    async def sign_out_page(
        self, request: Req, db: NamedDependency[AsyncSession], page: NamedDependency[Page]
    ) -> Response[Any]:
        current = await signed_in(db, page, request)
        # Nothing to sign out (an app may have ended the session already): a way back still, with state.
        back = page.redirect_url and page.authorization is None and current is None
        return page.show(
            "sign_out.html",
            "Sign out",
            signed_in_as=current[1].email if current else None,
            back_url=urls.with_query(page.redirect_url, state=page.state) if back else None,
        )

    @post("/sign-out", opt=PAGE_OPT)
    async def sign_out(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        form: NamedDependency[PostedForm],
    ) -> Response[Any]:
        page = form.page
        settings = page.settings
        current = await signed_in(db, page, request)
        if current is not None:
            await sessions.end_session(db, current[0])
        response: Response[Any]
        if page.authorization is not None:  # "sign in as someone else" on the way through authorize
            response = Redirect(
                page.where.url("sign-in", authorization=page.authorization_token), status_code=303
            )
        elif page.redirect_url:
            response = Redirect(urls.with_query(page.redirect_url, state=page.state), status_code=303)
        else:
            response = page.show("message.html", "Signed out", error=None, info="You are signed out.")
        response.delete_cookie(settings.end_user_cookie_name, path=page.where.path)
        return response


@get("/p/assets/hosted.css", include_in_schema=False)
async def stylesheet() -> Response[str]:
    return Response(
        tokens.STYLESHEET,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )
