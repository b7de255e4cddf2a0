"""Console pages of the signed-out: the entry point, first-run setup, sign-up, sign-in with its MFA
step, and sign-out. Each calls the services the JSON API calls (`/console/api/sign-in` and friends)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts import sessions
from silver_auth.accounts import sign_in as console_sign_in
from silver_auth.accounts.guards import ConsoleContext, builtin_identity_only, check_origin
from silver_auth.accounts.models import Account
from silver_auth.accounts.passwords import check_policy
from silver_auth.accounts.routes import session_cookie
from silver_auth.accounts.schemas import SignIn
from silver_auth.accounts.service import any_account, create_account, no_account_yet_locked
from silver_auth.accounts.sessions import ConsoleSessionCodec
from silver_auth.audit.service import Actor
from silver_auth.console.pages import PAGE_HANDLERS, SIGN_IN_PATH, PageError, page_opt
from silver_auth.console.render import (
    CSRF_FIELD,
    PREFIX,
    Req,
    clear_flash,
    read_flash,
    see_other,
    signed_out_form,
    signed_out_token_valid,
)
from silver_auth.core import urls
from silver_auth.core.errors import ProblemError
from silver_auth.mfa.factors import SecondFactorDeps
from silver_auth.orgs import service as orgs
from silver_auth.settings import Settings
from silver_auth.web.deps import request_ip

PUBLIC = page_opt("public")
CODE_PATH = f"{SIGN_IN_PATH}/code"
SSO_START = f"{urls.CONSOLE_OIDC}/start"
IDENTITY_PROVIDER = "Authentik"  # SILVER_IDENTITY's only other backend


def _field(form: Any, name: str, limit: int = 1024) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


async def _signed_out_post(request: Req, settings: Settings, template: str, **shown: Any) -> Any:
    """The posted form of a signed-out page, its token checked first (else 403, nothing done)."""
    check_origin(request)
    form = await request.form()
    if not signed_out_token_valid(settings, request, form.get(CSRF_FIELD)):
        raise PageError(
            403,
            "This form expired or came from elsewhere: please try again.",
            template,
            signed_out=True,
            **shown,
        )
    return form


def return_path(value: object) -> str:
    """Where to go after signing in (`?next=`, e.g. back to an invitation link): a console page of this
    origin only, never another site ("//host", a scheme, a backslash) nor the API; else ""."""
    if not isinstance(value, str) or len(value) > 300 or not value.isprintable():
        return ""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value or not parts.path.startswith(f"{PREFIX}/"):
        return ""
    segments = parts.path.split("/")
    if "" in segments[1:-1] or ".." in segments or parts.path.startswith(f"{PREFIX}/api"):
        return ""
    return value


async def first_run(db: AsyncSession, settings: Settings) -> bool:
    """The embedded default before its first account: the console offers to create it."""
    return settings.env == "development" and settings.identity == "builtin" and not await any_account(db)


async def _signed_in(
    db: AsyncSession,
    codec: ConsoleSessionCodec,
    settings: Settings,
    request: Req,
    account: Account,
    *,
    target: str,
    flash: str,
) -> Response[Any]:
    issued = await sessions.start_console_session(
        db, codec, settings, account, ip=request_ip(request), user_agent=request.headers.get("user-agent")
    )
    response = see_other(target, flash=flash, settings=settings)
    response.set_cookie(session_cookie(settings, issued.cookie_value, settings.session_absolute_hours * 3600))
    return response


def _sign_in_shown(settings: Settings) -> dict[str, Any]:
    """What the sign-in page offers: with Authentik as the identity backend, its sign-in alone (the
    password form and sign-up would be refused, as `builtin_identity_only` refuses the API's)."""
    builtin = settings.identity == "builtin"
    return {
        "title": "Sign in",
        "password_sign_in": builtin,
        "sign_up": builtin and settings.console_sign_up_mode == "open",
        "sso_start": None if builtin else SSO_START,
        "identity_provider": IDENTITY_PROVIDER,
    }


class SignedOutPages(Controller):
    path = PREFIX
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    @get("/", opt=PUBLIC)
    async def entry(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        console_sessions: NamedDependency[ConsoleSessionCodec],
    ) -> Response[Any]:
        resolved = await sessions.resolve_session(
            db, console_sessions, settings, request.cookies.get(settings.session_cookie_name)
        )
        if resolved is not None:
            memberships = await orgs.orgs_of(db, resolved[1].id)
            return see_other(f"{PREFIX}/orgs/{memberships[0][0].id}" if memberships else f"{PREFIX}/orgs")
        return see_other(f"{PREFIX}/setup" if await first_run(db, settings) else SIGN_IN_PATH)

    @get("/setup", opt=PUBLIC)
    async def setup_form(
        self, request: Req, db: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
    ) -> Response[Any]:
        if not await first_run(db, settings):
            return see_other(SIGN_IN_PATH)
        return signed_out_form("setup.html", request, settings, title="Set up the console")

    @post("/setup", opt={**PUBLIC, "rate_limit": "sign-up"})
    async def setup(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        console_sessions: NamedDependency[ConsoleSessionCodec],
    ) -> Response[Any]:
        form = await _signed_out_post(request, settings, "setup.html", title="Set up the console", email="")
        if not await first_run(db, settings) or not await no_account_yet_locked(db):
            raise PageError(
                403,
                "The console is already set up: sign in instead.",
                "message.html",
                title="Already set up",
                message="Sign in with your account.",
            )
        email, password = _field(form, "email", 320), _field(form, "password")
        try:
            check_policy(password)
            account = await create_account(db, email, password, actor=Actor("anonymous", request_ip(request)))
            org = await orgs.create_org(
                db,
                _field(form, "org_name", 200),
                owner_id=account.id,
                actor=Actor(account.id, request_ip(request)),
            )
        except ProblemError as exc:
            raise PageError(
                exc.status, exc.detail, "setup.html", signed_out=True, title="Set up the console", email=email
            ) from None
        target = f"{PREFIX}/orgs/{org.id}"
        return await _signed_in(
            db,
            console_sessions,
            settings,
            request,
            account,
            target=target,
            flash="Welcome: your account and org are ready.",
        )

    @get("/sign-up", opt=PUBLIC)
    async def sign_up_form(self, request: Req, settings: NamedDependency[Settings]) -> Response[Any]:
        mode = settings.console_sign_up_mode
        invitation = request.query_params.get("invitation", "")[:200]
        return signed_out_form(
            "sign_up.html",
            request,
            settings,
            title="Create your account",
            mode=mode,
            invitation=invitation,
            email="",
        )

    @post("/sign-up", opt={**PUBLIC, "rate_limit": "sign-up"}, guards=[builtin_identity_only])
    async def sign_up(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        console_sessions: NamedDependency[ConsoleSessionCodec],
    ) -> Response[Any]:
        mode = settings.console_sign_up_mode
        shown_empty = {"title": "Create your account", "mode": mode, "invitation": "", "email": ""}
        form = await _signed_out_post(request, settings, "sign_up.html", **shown_empty)
        email, password, token = (
            _field(form, "email", 320),
            _field(form, "password"),
            _field(form, "invitation", 200),
        )
        shown = {"title": "Create your account", "mode": mode, "invitation": token, "email": email}
        if mode == "closed" or (mode == "invite-only" and not token):
            message = (
                "Sign-up is closed."
                if mode == "closed"
                else "Sign-up needs an invitation link from an org admin."
            )
            raise PageError(403, message, "sign_up.html", signed_out=True, **shown)
        ip = request_ip(request)
        target, flash = f"{PREFIX}/", "Your account is ready."
        try:
            check_policy(password)
            account = await create_account(db, email, password, actor=Actor("anonymous", ip))
            if token:  # the same acceptance as the API's; a bad token undoes the account too
                joined = await orgs.accept_invitation(db, token, account.id, actor=Actor(account.id, ip))
                org = await orgs.get_org(db, joined.org_id)
                target = f"{PREFIX}/orgs/{org.id}"
                flash = f"Your account is ready: you joined {org.name} as {joined.role.value}."
        except ProblemError as exc:
            raise PageError(exc.status, exc.detail, "sign_up.html", signed_out=True, **shown) from None
        return await _signed_in(db, console_sessions, settings, request, account, target=target, flash=flash)

    @get("/sign-in", opt=PUBLIC)
    async def sign_in_form(
        self, request: Req, db: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
    ) -> Response[Any]:
        if await first_run(db, settings):
            return see_other(f"{PREFIX}/setup")
        flash = read_flash(request)
        response = signed_out_form(
            "sign_in.html",
            request,
            settings,
            **_sign_in_shown(settings),
            email="",
            flash=flash,
            next_path=return_path(request.query_params.get("next")),
        )
        if flash:
            clear_flash(response, settings)
        return response

    @post("/sign-in", opt={**PUBLIC, "rate_limit": "sign-in"}, guards=[builtin_identity_only])
    async def sign_in(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        second_factors: NamedDependency[SecondFactorDeps],
        console_sessions: NamedDependency[ConsoleSessionCodec],
    ) -> Response[Any]:
        return await self._sign_in(request, db, settings, second_factors, console_sessions, code_step=False)

    @get("/sign-in/code", opt=PUBLIC)
    async def code_form(self, request: Req, settings: NamedDependency[Settings]) -> Response[Any]:
        next_path = return_path(request.query_params.get("next"))
        return signed_out_form("code.html", request, settings, title="Enter your code", next_path=next_path)

    @post("/sign-in/code", opt={**PUBLIC, "rate_limit": "sign-in"}, guards=[builtin_identity_only])
    async def code(
        self,
        request: Req,
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        second_factors: NamedDependency[SecondFactorDeps],
        console_sessions: NamedDependency[ConsoleSessionCodec],
    ) -> Response[Any]:
        return await self._sign_in(request, db, settings, second_factors, console_sessions, code_step=True)

    async def _sign_in(
        self,
        request: Req,
        db: AsyncSession,
        settings: Settings,
        second_factors: SecondFactorDeps,
        codec: ConsoleSessionCodec,
        *,
        code_step: bool,
    ) -> Response[Any]:
        template = "code.html" if code_step else "sign_in.html"
        shown: dict[str, Any] = (
            {"title": "Enter your code"} if code_step else {**_sign_in_shown(settings), "email": ""}
        )
        form = await _signed_out_post(request, settings, template, **shown, next_path="")
        shown["next_path"] = return_path(form.get("next"))  # kept through a refusal and the code step
        if code_step:
            code, recovery = _field(form, "code", 32).strip(), _field(form, "recovery_code", 64).strip()
            body = SignIn(code=code or None, recovery_code=None if code else recovery or None)
        else:
            shown["email"] = _field(form, "email", 320)  # shown again if the sign-in is refused
            body = SignIn(email=shown["email"], password=_field(form, "password"))
        try:
            result = await console_sign_in.sign_in(
                db,
                second_factors,
                codec,
                body,
                cookie=request.cookies.get(settings.session_cookie_name),
                ip=request_ip(request),
                user_agent=request.headers.get("user-agent"),
            )
        except ProblemError as exc:
            raise PageError(exc.status, exc.detail, template, signed_out=True, **shown) from None
        next_path = shown["next_path"]
        if result.pending:  # the cookie finishes this sign-in and nothing else
            response = see_other(f"{CODE_PATH}?{urlencode({'next': next_path})}" if next_path else CODE_PATH)
            max_age = settings.console_mfa_pending_minutes * 60
        else:
            response = see_other(next_path or f"{PREFIX}/", flash="You are signed in.", settings=settings)
            max_age = settings.session_absolute_hours * 3600
        response.set_cookie(session_cookie(settings, result.issued.cookie_value, max_age))
        return response


class SignOutPage(Controller):
    path = PREFIX
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    @post("/sign-out", opt=page_opt("account"))
    async def sign_out(
        self,
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        await sessions.revoke_session(db, console.session.id, actor=console.actor, signing_out=True)
        response = see_other(SIGN_IN_PATH, flash="You are signed out.", settings=settings)
        response.set_cookie(session_cookie(settings, "", 0))
        return response
