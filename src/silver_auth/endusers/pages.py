"""Hosted end-user pages on the auth host, per project and environment: `/p/{project_id}/{environment}/…`.

Plain HTML forms (no JavaScript), every form protected by a signed token tied to a cookie, errors shown
on the page. The browser comes back to the project's redirect URL (exact match only) with a single-use
`code` and the caller's `state`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.api.deps import request_ip
from silver_auth.api.state import Runtime
from silver_auth.audit.service import Actor
from silver_auth.core.errors import ProblemError, Unauthorized
from silver_auth.core.ids import looks_like
from silver_auth.endusers import forms, mfa, oidc, service, sessions
from silver_auth.endusers.forms import CSRF_COOKIE, PAGE_OPT, PagePath, render
from silver_auth.endusers.models import EndUser
from silver_auth.endusers.service import ENVIRONMENTS, Scope
from silver_auth.projects.models import Project

Req = Request[Any, Any, Any]
MAX_FIELD = 4096
MAX_STATE = 512


class PageError(Exception):
    """A refusal shown as an HTML page (the request's transaction rolls back)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        template: str = "message.html",
        context: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.template = status, message, template
        self.context = context or {}
        self.headers = headers or {}


def _page_error(request: Req, exc: Exception) -> Response[str]:
    if isinstance(exc, PageError):
        context = {"title": "Something is not right", "project_name": None, **exc.context}
        context["error"] = exc.message
        return render(exc.template, exc.status, exc.headers, **context)
    if isinstance(exc, ProblemError):
        retry = {k: v for k, v in exc.headers.items() if k.lower() == "retry-after"}
        return render("message.html", exc.status, retry, title=exc.title, project_name=None, error=exc.detail)
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    status = status if 400 <= status < 500 else 400
    return render(
        "message.html", status, title="Bad request", project_name=None, error="The request is not valid."
    )


@dataclass
class Page:
    """One request to a hosted page: the project environment, its redirect, the form cookie."""

    runtime: Runtime
    project_id: str
    project_name: str
    where: PagePath
    form_cookie: str
    new_cookie: bool
    redirect_url: str
    state: str
    code_challenge: str

    @property
    def scope(self) -> Scope:
        return Scope(self.project_id, self.where.environment)

    def context(self, title: str, **extra: Any) -> dict[str, Any]:
        return {
            "title": title,
            "project_name": self.project_name,
            "environment": self.where.environment,
            "where": self.where,
            "csrf_token": forms.csrf_token(self.runtime.settings, self.where, self.form_cookie),
            "redirect_url": self.redirect_url,
            "state": self.state,
            "code_challenge": self.code_challenge,
            "error": None,
            **extra,
        }

    def show(self, template: str, title: str, status: int = 200, **extra: Any) -> Response[str]:
        response = render(template, status, **self.context(title, **extra))
        if self.new_cookie:
            response.set_cookie(
                forms.cookie(self.runtime.settings, self.where, CSRF_COOKIE, self.form_cookie, None)
            )
        return response

    def refuse(
        self, template: str, title: str, problem: ProblemError | str, status: int = 400, **extra: Any
    ) -> PageError:
        message = problem.detail if isinstance(problem, ProblemError) else problem
        status = problem.status if isinstance(problem, ProblemError) else status
        headers = problem.headers if isinstance(problem, ProblemError) else {}
        return PageError(
            status, message, template=template, context=self.context(title, **extra), headers=headers
        )


async def identity_entry(db: AsyncSession, runtime: Runtime, page: Page, name: str) -> Response[Any] | None:
    """The one place where the identity backend decides who renders the hosted pages.

    builtin: None (this module's forms). authentik: sign-in and sign-up go to the project's Authentik
    application (endusers/oidc.py); sign-out ends the session here; the account pages live in Authentik.
    """
    if runtime.settings.identity != "authentik" or name == "sign-out":
        return None
    if name not in ("sign-in", "sign-up"):
        return render(
            "message.html",
            404,
            title="Managed in Authentik",
            project_name=page.project_name,
            error="Your password and two-step verification are managed where you sign in, not here.",
        )
    project = await db.get(Project, page.project_id)
    assert project is not None  # _open loaded it in this transaction
    started = await oidc.start(
        db,
        runtime.settings,
        project,
        environment=page.where.environment,
        redirect_url=page.redirect_url,
        client_state=page.state,
        client_challenge=page.code_challenge,
    )
    response: Response[Any] = Redirect(
        started.authorization_url, status_code=303, headers={"Cache-Control": "no-store"}
    )
    response.set_cookie(forms.oidc_state_cookie(runtime.settings, project.id, started.cookie_value))
    return response


def _field(values: dict[str, Any], name: str, limit: int = MAX_FIELD) -> str:
    value = values.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise PageError(400, f"The field {name} is not valid.")
    return value


async def _open(
    request: Req,
    db: AsyncSession,
    runtime: Runtime,
    project_id: str,
    environment: str,
    values: dict[str, Any],
) -> Page:
    """Load the project environment and check the redirect URL; refuse before anything is written."""
    project = await db.get(Project, project_id) if looks_like("prj", project_id) else None
    if project is None or environment not in ENVIRONMENTS:
        raise PageError(404, "There is no such sign-in page.")
    where = PagePath(runtime.settings.auth_url, project.id, environment)
    redirect_url, state = _field(values, "redirect_url", 2048), _field(values, "state", MAX_STATE)
    challenge, method = _field(values, "code_challenge", 128), _field(values, "code_challenge_method", 10)
    context = {"project_name": project.name, "title": "This link is not valid"}
    if redirect_url and not sessions.redirect_allowed(project, redirect_url):
        raise PageError(
            400,
            "The redirect URL is not registered for this project, so the sign-in page refuses it. "
            "Registered URLs match exactly, character for character.",
            context=context,
        )
    if challenge and (method != "S256" or len(challenge) != 43):
        raise PageError(400, "Only PKCE code_challenge_method=S256 is supported.", context=context)
    existing = request.cookies.get(CSRF_COOKIE)
    fresh = not existing or len(existing) > 64
    return Page(
        runtime=runtime,
        project_id=project.id,
        project_name=project.name,
        where=where,
        form_cookie=forms.new_csrf_cookie() if fresh else str(existing),
        new_cookie=fresh,
        redirect_url=redirect_url,
        state=state,
        code_challenge=challenge,
    )


async def _form(request: Req) -> dict[str, Any]:
    try:
        form = await request.form()
    except Exception:  # a malformed body is the caller's mistake, never a 500
        raise PageError(400, "The form could not be read.") from None
    return {key: form.get(key) for key in form}


def _check_csrf(page: Page, request: Req, values: dict[str, Any]) -> None:
    if page.new_cookie or not forms.csrf_valid(
        page.runtime.settings, page.where, request.cookies.get(CSRF_COOKIE), _field(values, "csrf_token")
    ):
        raise PageError(
            403,
            "This form has expired or was not sent from this page. Go back, reload the page and try again.",
            context={"project_name": page.project_name, "title": "Please try again"},
        )


async def _finish(db: AsyncSession, page: Page, request: Req, user: EndUser, *, mfa: bool) -> Response[Any]:
    """Start the session, set its cookie, and send the browser back with a one-time code."""
    settings = page.runtime.settings
    started = await sessions.start_session(
        db, settings, user, mfa=mfa, ip=request_ip(request), user_agent=request.headers.get("user-agent")
    )
    session_cookie = forms.cookie(
        settings,
        page.where,
        settings.end_user_cookie_name,
        started.cookie,
        settings.end_user_session_hours * 3600,
    )
    if not page.redirect_url:
        response: Response[Any] = page.show("done.html", "Signed in", email=user.email)
    else:
        code = await sessions.issue_code(
            db, settings, started.session, page.redirect_url, page.code_challenge or None
        )
        target = forms.with_query(page.redirect_url, code=code, state=page.state)
        response = Redirect(target, status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(session_cookie)
    return response


class HostedPages(Controller):
    path = "/p/{project_id:str}/{environment:str}"
    tags = ["hosted pages"]
    include_in_schema = False
    exception_handlers = {PageError: _page_error, ProblemError: _page_error, HTTPException: _page_error}

    @get("/sign-up", opt=PAGE_OPT)
    async def sign_up_page(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        page = await _open(request, db, runtime, project_id, environment, dict(request.query_params))
        return await identity_entry(db, runtime, page, "sign-up") or page.show(
            "sign_up.html", "Create your account", email=""
        )

    @post("/sign-up", opt=PAGE_OPT)
    async def sign_up(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        values = await _form(request)
        page = await _open(request, db, runtime, project_id, environment, values)
        if (entry := await identity_entry(db, runtime, page, "sign-up")) is not None:
            return entry
        _check_csrf(page, request, values)
        email, password = _field(values, "email", 320), _field(values, "password", 1024)
        try:
            actor = Actor("anonymous", request_ip(request))
            user = await service.create_user(db, page.scope, email, password, actor=actor, via="hosted-page")
        except ProblemError as problem:
            raise page.refuse("sign_up.html", "Create your account", problem, email=email) from None
        return await _finish(db, page, request, user, mfa=False)

    @get("/sign-in", opt=PAGE_OPT)
    async def sign_in_page(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        page = await _open(request, db, runtime, project_id, environment, dict(request.query_params))
        return await identity_entry(db, runtime, page, "sign-in") or page.show(
            "sign_in.html", "Sign in", email=""
        )

    @post("/sign-in", opt=PAGE_OPT)
    async def sign_in(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        values = await _form(request)
        page = await _open(request, db, runtime, project_id, environment, values)
        if (entry := await identity_entry(db, runtime, page, "sign-in")) is not None:
            return entry
        _check_csrf(page, request, values)
        email = _field(values, "email", 320)
        try:
            user = await service.authenticate(
                db,
                runtime.sessionmaker,
                runtime.settings,
                page.scope,
                email,
                _field(values, "password", 1024),
                ip=request_ip(request),
            )
        except ProblemError as problem:
            raise page.refuse("sign_in.html", "Sign in", problem, email=email) from None
        if await mfa.has_mfa(db, user.id):
            pending = forms.pending_token(runtime.settings, page.where, user.id, page.form_cookie)
            return page.show("totp.html", "Two-step verification", pending=pending)
        return await _finish(db, page, request, user, mfa=False)

    @post("/sign-in/code", opt=PAGE_OPT)
    async def sign_in_code(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        values = await _form(request)
        page = await _open(request, db, runtime, project_id, environment, values)
        if (entry := await identity_entry(db, runtime, page, "sign-in")) is not None:
            return entry
        _check_csrf(page, request, values)
        pending = _field(values, "pending")
        user_id = forms.pending_user(runtime.settings, page.where, pending, page.form_cookie)
        user = await db.get(EndUser, user_id) if user_id else None
        if user is None or user.project_id != page.project_id or user.environment != page.where.environment:
            raise page.refuse("sign_in.html", "Sign in", "That took too long; sign in again.", 400, email="")
        try:
            if user.banned_at is not None:
                raise Unauthorized(service.WRONG_CREDENTIALS)
            await mfa.check_second_factor(
                db,
                runtime.sessionmaker,
                runtime.settings,
                user,
                _field(values, "code", 64),
                ip=request_ip(request),
            )
        except ProblemError as problem:
            raise page.refuse("totp.html", "Two-step verification", problem, pending=pending) from None
        return await _finish(db, page, request, user, mfa=True)

    @get("/sign-out", opt=PAGE_OPT)
    async def sign_out_page(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        page = await _open(request, db, runtime, project_id, environment, dict(request.query_params))
        return await identity_entry(db, runtime, page, "sign-out") or page.show("sign_out.html", "Sign out")

    @post("/sign-out", opt=PAGE_OPT)
    async def sign_out(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        values = await _form(request)
        page = await _open(request, db, runtime, project_id, environment, values)
        if (entry := await identity_entry(db, runtime, page, "sign-out")) is not None:
            return entry
        _check_csrf(page, request, values)
        settings = runtime.settings
        current = await sessions.session_from_cookie(
            db, settings, page.scope, request.cookies.get(settings.end_user_cookie_name)
        )
        if current is not None:
            await sessions.end_session(db, current[0])
        response: Response[Any] = (
            Redirect(forms.with_query(page.redirect_url, state=page.state), status_code=303)
            if page.redirect_url
            else page.show("message.html", "Signed out", error=None, info="You are signed out.")
        )
        response.delete_cookie(settings.end_user_cookie_name, path=page.where.path)
        return response


@get("/p/assets/hosted.css", include_in_schema=False)
async def stylesheet() -> Response[str]:
    return Response(
        forms.STYLESHEET,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )
