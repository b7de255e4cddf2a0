"""Console pages of the signed-in account itself: its profile and password, TOTP MFA (enrolment, new
recovery codes, turning it off) and its sessions. Each calls the service of the JSON API route it
stands for (`/console/api/me/password`, `/console/api/mfa…`, `/console/api/sessions…`), behind the
same access rule and, for passwords and MFA, the same builtin-identity guard."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts import service as accounts
from silver_auth.accounts import sessions
from silver_auth.accounts.devices import device_label
from silver_auth.accounts.guards import ConsoleContext, builtin_identity_only
from silver_auth.accounts.routes import session_cookie
from silver_auth.accounts.sessions import ConsoleSession
from silver_auth.console.auth import IDENTITY_PROVIDER
from silver_auth.console.pages import PAGE_HANDLERS, SIGN_IN_PATH, Frame, PageError, frame, page_opt
from silver_auth.console.render import PREFIX, Req, html, page, see_other
from silver_auth.core.errors import InvalidInput, ProblemError
from silver_auth.mfa import console as console_mfa
from silver_auth.mfa.factors import Enrolment, SecondFactorDeps
from silver_auth.settings import Settings
from silver_auth.throttle.service import Throttle

ACCOUNT_PATH = f"{PREFIX}/account"
MFA_PATH = f"{ACCOUNT_PATH}/mfa"
SESSIONS_PATH = f"{ACCOUNT_PATH}/sessions"
ACCOUNT = page_opt("account")
THROTTLED = {**ACCOUNT, "rate_limit": "mfa"}  # as the API's routes: each guess counts
BUILTIN_ONLY = [builtin_identity_only]  # with Authentik, passwords and MFA live there


def _text(form: Any, name: str, limit: int) -> str:
    value = form.get(name)
    return value[:limit].strip() if isinstance(value, str) else ""


def _secret(form: Any, name: str) -> str:
    value = form.get(name)
    return value[:1024] if isinstance(value, str) else ""  # a password is taken as typed


def _others(count: int) -> str:
    return f"{count} other session{'' if count == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class SessionRow:
    session: ConsoleSession
    device: str
    current: bool


class AccountPages(Controller):
    path = ACCOUNT_PATH
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    # --- profile and password ---

    async def _profile(self, db: AsyncSession, console: ConsoleContext, settings: Settings) -> dict[str, Any]:
        shown = await frame(db, console)
        sso = settings.identity != "builtin"
        return shown.context(
            title="Your account",
            section="account",
            sso=sso,
            identity_provider=IDENTITY_PROVIDER,
            mfa=None if sso else await console_mfa.status(db, console.account.id),
            session_mfa=console.session.mfa,
        )

    @get("/", opt=ACCOUNT)
    async def profile(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        return page(request, settings, "account.html", **await self._profile(db, console, settings))

    @post("/password", opt=THROTTLED, guards=BUILTIN_ONLY)
    async def change_password(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        throttle: NamedDependency[Throttle],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        form = await request.form()
        new_password = _secret(form, "new_password")
        try:
            if new_password != _secret(form, "confirm_password"):
                raise InvalidInput("the new password and its confirmation differ: type the same one twice")
            revoked = await accounts.change_password(
                db,
                throttle,
                settings,
                console.account.id,
                keep_session_id=console.session.id,
                current_password=_secret(form, "current_password"),
                new_password=new_password,
                actor=console.actor,
            )
        except ProblemError as exc:
            shown = await self._profile(db, console, settings)
            raise PageError(exc.status, exc.detail, "account.html", **shown) from None
        return see_other(
            ACCOUNT_PATH,
            flash=f"Your password is changed. {_others(revoked)} signed out; this one stays "
            "signed in. Sign in elsewhere with the new password.",
            settings=settings,
        )

    # --- MFA ---

    async def _mfa(
        self, db: AsyncSession, console: ConsoleContext, settings: Settings, **more: Any
    ) -> dict[str, Any]:
        shown = await frame(db, console)
        sso = settings.identity != "builtin"
        return shown.context(
            title="Two-step sign-in (MFA)",
            section="account",
            sso=sso,
            identity_provider=IDENTITY_PROVIDER,
            mfa=None if sso else await console_mfa.status(db, console.account.id),
            **{"enrolment": None, "recovery_codes": None, **more},
        )

    @get("/mfa", opt=ACCOUNT)
    async def mfa(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        return page(request, settings, "mfa.html", **await self._mfa(db, console, settings))

    @post("/mfa/totp", opt=ACCOUNT, guards=BUILTIN_ONLY)
    async def start_totp(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        second_factors: NamedDependency[SecondFactorDeps],
    ) -> Response[Any]:
        form = await request.form()
        try:
            enrolment = await console_mfa.start_enrolment(
                db,
                second_factors,
                console.account.id,
                console.account.email,
                _secret(form, "password"),
                actor=console.actor,
            )
        except ProblemError as exc:
            shown = await self._mfa(db, console, settings)
            raise PageError(exc.status, exc.detail, "mfa.html", **shown) from None
        # The secret is shown in this answer to the signed-in account; a mistyped code shows it again
        # from the server's pending enrolment, never from anything the browser sends back.
        return html("mfa.html", **await self._mfa(db, console, settings, enrolment=enrolment))

    @post("/mfa/totp/confirm", opt=THROTTLED, guards=BUILTIN_ONLY)
    async def confirm_totp(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        second_factors: NamedDependency[SecondFactorDeps],
    ) -> Response[Any]:
        form = await request.form()
        pending: Enrolment | None = await second_factors.factors.pending_enrolment(
            db, console.account.id, label=console.account.email, issuer=console_mfa.ISSUER
        )
        try:
            codes = await console_mfa.confirm_enrolment(
                db,
                second_factors,
                console.account.id,
                console.session.id,
                _text(form, "code", 32),
                actor=console.actor,
            )
        except ProblemError as exc:
            # A wrong code keeps the pending secret: the same QR code and key are shown again.
            shown = await self._mfa(db, console, settings, enrolment=pending)
            raise PageError(exc.status, exc.detail, "mfa.html", **shown) from None
        return html(
            "mfa.html",
            **await self._mfa(
                db,
                console,
                settings,
                recovery_codes=codes,
                flash="MFA is on. Your next sign-in asks for a code from your app.",
            ),
        )

    @post("/mfa/recovery-codes", opt=THROTTLED, guards=BUILTIN_ONLY)
    async def regenerate_recovery_codes(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        second_factors: NamedDependency[SecondFactorDeps],
    ) -> Response[Any]:
        form = await request.form()
        try:
            codes = await console_mfa.regenerate_recovery_codes(
                db, second_factors, console.account.id, _text(form, "code", 32), actor=console.actor
            )
        except ProblemError as exc:
            shown = await self._mfa(db, console, settings)
            raise PageError(exc.status, exc.detail, "mfa.html", **shown) from None
        return html(
            "mfa.html",
            **await self._mfa(
                db,
                console,
                settings,
                recovery_codes=codes,
                flash="New recovery codes are made: the old ones no longer work.",
            ),
        )

    @post("/mfa/disable", opt=THROTTLED, guards=BUILTIN_ONLY)
    async def disable_mfa(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        second_factors: NamedDependency[SecondFactorDeps],
    ) -> Response[Any]:
        form = await request.form()
        code, recovery_code = _text(form, "code", 32), _text(form, "recovery_code", 64)
        try:
            revoked = await console_mfa.disable(
                db,
                second_factors,
                console.account.id,
                console.session.id,
                password=_secret(form, "password"),
                code=code or None,
                recovery_code=None if code else recovery_code or None,
                actor=console.actor,
            )
        except ProblemError as exc:
            shown = await self._mfa(db, console, settings)
            raise PageError(exc.status, exc.detail, "mfa.html", **shown) from None
        return see_other(
            MFA_PATH,
            flash=f"MFA is off and {_others(revoked)} signed out. Set it up again any time below.",
            settings=settings,
        )

    # --- sessions ---

    async def _sessions(self, db: AsyncSession, console: ConsoleContext) -> dict[str, Any]:
        shown: Frame = await frame(db, console)
        rows = [
            SessionRow(row, device_label(row.user_agent), row.id == console.session.id)
            for row in await sessions.list_sessions(db, console.account.id)
        ]
        return shown.context(title="Your sessions", section="account", sessions=rows)

    @get("/sessions", opt=ACCOUNT)
    async def list_sessions(
        self,
        request: Req,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        return page(request, settings, "sessions.html", **await self._sessions(db, console))

    @post("/sessions/revoke-others", opt=ACCOUNT)
    async def revoke_others(
        self,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        revoked = await sessions.revoke_other_sessions(db, console.session.id, actor=console.actor)
        return see_other(
            SESSIONS_PATH,
            flash=f"{_others(revoked)} signed out. This one stays signed in.",
            settings=settings,
        )

    @post("/sessions/{session_id:str}/revoke", opt=ACCOUNT)
    async def revoke_session(
        self,
        session_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        try:
            await sessions.revoke_session(db, session_id, actor=console.actor)
        except ProblemError as exc:
            shown = await self._sessions(db, console)
            raise PageError(exc.status, exc.detail, "sessions.html", **shown) from None
        if session_id == console.session.id:  # this browser's own: it is signed out
            response = see_other(
                SIGN_IN_PATH, flash="This session is revoked: sign in again.", settings=settings
            )
            response.set_cookie(session_cookie(settings, "", 0))
            return response
        return see_other(
            SESSIONS_PATH, flash="The session is revoked: that device is signed out.", settings=settings
        )
