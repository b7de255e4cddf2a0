"""The signed-in end-user's own page on the auth host: turn two-step verification (TOTP) on or off."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.api.deps import request_ip
from silver_auth.api.state import Runtime
from silver_auth.core.errors import ProblemError
from silver_auth.endusers import mfa, sessions
from silver_auth.endusers.forms import PAGE_OPT
from silver_auth.endusers.models import EndUser
from silver_auth.endusers.pages import (
    Page,
    PageError,
    Req,
    _check_csrf,
    _field,
    _form,
    _open,
    _page_error,
    identity_entry,
)

TITLE = "Two-step verification"


async def _signed_in(page: Page, request: Req, db: AsyncSession) -> EndUser:
    settings = page.runtime.settings
    current = await sessions.session_from_cookie(
        db, settings, page.scope, request.cookies.get(settings.end_user_cookie_name)
    )
    if current is None:
        raise PageError(
            401,
            "Sign in first to manage two-step verification.",
            context={
                "project_name": page.project_name,
                "title": "Sign in first",
                "sign_in_url": page.where.url("sign-in"),
            },
        )
    return current[1]


class AccountPages(Controller):
    path = "/p/{project_id:str}/{environment:str}/account/two-step"
    tags = ["hosted pages"]
    include_in_schema = False
    exception_handlers = {PageError: _page_error, ProblemError: _page_error, HTTPException: _page_error}

    @get("/", opt=PAGE_OPT)
    async def show(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        page = await _open(request, db, runtime, project_id, environment, {})
        if (entry := await identity_entry(db, runtime, page, "account")) is not None:
            return entry
        user = await _signed_in(page, request, db)
        return page.show("two_step.html", TITLE, email=user.email, enabled=await mfa.has_mfa(db, user.id))

    @post("/start", opt=PAGE_OPT)
    async def start(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        values = await _form(request)
        page = await _open(request, db, runtime, project_id, environment, {})
        if (entry := await identity_entry(db, runtime, page, "account")) is not None:
            return entry
        _check_csrf(page, request, values)
        user = await _signed_in(page, request, db)
        email = user.email  # a failed code ends the transaction: its rows are not readable after
        try:
            enrolment = await mfa.start_totp(db, runtime.settings, user, issuer=page.project_name)
        except ProblemError as problem:
            raise page.refuse("two_step.html", TITLE, problem, email=email, enabled=True) from None
        # The secret is shown here once, to this signed-in user, for manual entry next to the QR code.
        return page.show("two_step_confirm.html", TITLE, secret=enrolment.secret, qr_svg=enrolment.qr_svg)

    @post("/confirm", opt=PAGE_OPT)
    async def confirm(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        values = await _form(request)
        page = await _open(request, db, runtime, project_id, environment, {})
        if (entry := await identity_entry(db, runtime, page, "account")) is not None:
            return entry
        _check_csrf(page, request, values)
        user = await _signed_in(page, request, db)
        email = user.email  # a failed code ends the transaction: its rows are not readable after
        try:
            codes = await mfa.confirm_totp(
                db,
                runtime.sessionmaker,
                runtime.settings,
                user,
                _field(values, "code", 64),
                ip=request_ip(request),
            )
        except ProblemError as problem:
            # The pending factor stays; the user starts over to see the QR code again.
            raise page.refuse("two_step.html", TITLE, problem, email=email, enabled=False) from None
        return page.show("recovery_codes.html", TITLE, codes=codes)

    @post("/disable", opt=PAGE_OPT)
    async def disable(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        values = await _form(request)
        page = await _open(request, db, runtime, project_id, environment, {})
        if (entry := await identity_entry(db, runtime, page, "account")) is not None:
            return entry
        _check_csrf(page, request, values)
        user = await _signed_in(page, request, db)
        email = user.email  # a failed code ends the transaction: its rows are not readable after
        try:
            await mfa.disable_totp(
                db,
                runtime.sessionmaker,
                runtime.settings,
                user,
                _field(values, "password", 1024),
                _field(values, "code", 64),
                ip=request_ip(request),
            )
        except ProblemError as problem:
            raise page.refuse("two_step.html", TITLE, problem, email=email, enabled=True) from None
        return page.show(
            "two_step.html", TITLE, email=user.email, enabled=False, info="Two-step verification is off."
        )
