"""The signed-in end-user's own pages on the auth host: change the password, turn two-step
verification (TOTP) on or off."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.endusers import mfa, service
from silver_auth.endusers.models import EndUser, EndUserSession
from silver_auth.hosted.context import (
    ACCOUNT_PAGES,
    PAGE_HANDLERS,
    Page,
    PageError,
    PostedForm,
    Req,
    identity_handover,
    signed_in,
)
from silver_auth.hosted.tokens import PAGE_OPT
from silver_auth.mfa.factors import SecondFactorDeps
from silver_auth.settings import Settings
from silver_auth.throttle.service import Throttle
from silver_auth.web.deps import request_ip

TITLE = "Two-step verification"
PASSWORD_TITLE = "Change your password"  # noqa: S105 - a page title


async def _session(
    page: Page, request: Req, db: AsyncSession, purpose: str = "manage two-step verification"
) -> tuple[EndUserSession, EndUser]:
    current = await signed_in(db, page, request)
    if current is None:
        raise PageError(
            401,
            f"Sign in first to {purpose}, then come back to this page.",
            context={
                "project_name": page.project_name,
                "branding": page.branding,
                "title": "Sign in first",
                "sign_in_url": page.where.url("sign-in"),
            },
        )
    return current


async def _signed_in(page: Page, request: Req, db: AsyncSession) -> EndUser:
    return (await _session(page, request, db))[1]


def _signed_out_others(revoked: int) -> str:
    if revoked == 0:
        return "No other device was signed in; this one stays signed in."
    devices = "1 other session was" if revoked == 1 else f"{revoked} other sessions were"
    return f"{devices} signed out; this one stays signed in."


class PasswordPage(Controller):
    path = "/p/{project_id:str}/{environment:str}/account/password"
    tags = ["hosted pages"]
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS
    before_request = staticmethod(identity_handover)
    dependencies = ACCOUNT_PAGES

    @get("/", opt=PAGE_OPT)
    async def show(
        self, request: Req, db: NamedDependency[AsyncSession], page: NamedDependency[Page]
    ) -> Response[Any]:
        _, user = await _session(page, request, db, "change your password")
        return page.show("password.html", PASSWORD_TITLE, email=user.email)

    @post("/", opt={**PAGE_OPT, "rate_limit": "mfa"})
    async def change(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        form: NamedDependency[PostedForm],
        throttle: NamedDependency[Throttle],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        page = form.page
        session, user = await _session(page, request, db, "change your password")
        with page.refusing("password.html", PASSWORD_TITLE, email=user.email):
            revoked = await service.change_password(
                db,
                throttle,
                settings,
                user,
                keep_session_id=session.id,
                current_password=form.field("current_password", 1024),
                new_password=form.field("new_password", 1024),
                ip=request_ip(request),
            )
        info = (
            f"Your password is changed: use the new one next time you sign in. {_signed_out_others(revoked)}"
        )
        return page.show("password.html", PASSWORD_TITLE, email=user.email, info=info, changed=True)


class AccountPages(Controller):
    path = "/p/{project_id:str}/{environment:str}/account/two-step"
    tags = ["hosted pages"]
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS
    before_request = staticmethod(identity_handover)
    # A refusal ends the transaction, and the user's row with it: read what a refusal page shows (the
    # email) first, as `page.refusing(..., email=user.email)` does (its arguments come first).
    dependencies = ACCOUNT_PAGES

    @get("/", opt=PAGE_OPT)
    async def show(
        self, request: Req, db: NamedDependency[AsyncSession], page: NamedDependency[Page]
    ) -> Response[Any]:
        user = await _signed_in(page, request, db)
        return page.show("two_step.html", TITLE, email=user.email, enabled=await mfa.has_mfa(db, user.id))

    @post("/start", opt=PAGE_OPT)
    async def start(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        form: NamedDependency[PostedForm],
        second_factors: NamedDependency[SecondFactorDeps],
    ) -> Response[Any]:
        page = form.page
        user = await _signed_in(page, request, db)
        with page.refusing("two_step.html", TITLE, email=user.email, enabled=True):
            enrolment = await mfa.start_totp(db, second_factors.factors, user, issuer=page.project_name)
        # The secret is shown here once, to this signed-in user, for manual entry next to the QR code.
        return page.show("two_step_confirm.html", TITLE, secret=enrolment.secret, qr_svg=enrolment.qr_svg)

    @post("/confirm", opt={**PAGE_OPT, "rate_limit": "mfa"})
    async def confirm(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        form: NamedDependency[PostedForm],
        second_factors: NamedDependency[SecondFactorDeps],
    ) -> Response[Any]:
        page = form.page
        user = await _signed_in(page, request, db)
        pending = await second_factors.factors.pending_enrolment(
            db, user.id, label=user.email, issuer=page.project_name
        )
        if pending is None:
            raise page.refuse(
                "two_step.html",
                TITLE,
                "Start again: no setup is waiting.",
                400,
                email=user.email,
                enabled=False,
            )
        # A wrong code keeps the pending secret: the same QR code and key are shown again with the error.
        with page.refusing("two_step_confirm.html", TITLE, secret=pending.secret, qr_svg=pending.qr_svg):
            codes = await mfa.confirm_totp(
                db,
                second_factors,
                user,
                form.field("code", 64),
                ip=request_ip(request),
            )
        return page.show("recovery_codes.html", TITLE, codes=codes)

    @post("/disable", opt={**PAGE_OPT, "rate_limit": "mfa"})
    async def disable(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        form: NamedDependency[PostedForm],
        second_factors: NamedDependency[SecondFactorDeps],
    ) -> Response[Any]:
        page = form.page
        user = await _signed_in(page, request, db)
        with page.refusing("two_step.html", TITLE, email=user.email, enabled=True):
            await mfa.disable_totp(
                db,
                second_factors,
                user,
                form.field("password", 1024),
                form.field("code", 64),
                ip=request_ip(request),
            )
        return page.show(
            "two_step.html", TITLE, email=user.email, enabled=False, info="Two-step verification is off."
        )
