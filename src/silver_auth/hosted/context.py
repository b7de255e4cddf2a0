"""One request to a hosted end-user page: its project environment, form cookie and CSRF check, and
refusals shown as HTML pages (shared by sign_in.py and account.py). Handlers receive the opened page
(`page`) or the submitted, CSRF-checked form (`form`) as dependencies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.authentik import hosted_sign_in as oidc
from silver_auth.core.errors import ProblemError
from silver_auth.core.ids import looks_like
from silver_auth.db.session import transaction
from silver_auth.endusers import sessions
from silver_auth.endusers.models import EndUser, EndUserSession
from silver_auth.endusers.service import ENVIRONMENTS, ProjectEnvironment
from silver_auth.hosted import tokens
from silver_auth.hosted.branding import HostedBranding, hosted_branding
from silver_auth.hosted.tokens import CSRF_COOKIE, PagePath, render
from silver_auth.oidc_provider.requests import (
    MAX_STATE,
    AuthorizationRequest,
    open_request,
    s256_challenge_ok,
)
from silver_auth.projects.branding import branding_of
from silver_auth.projects.models import Project
from silver_auth.runtime import runtime_of
from silver_auth.settings import Settings

Req = Request[Any, Any, Any]
MAX_FIELD = 4096


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


def _with_wait(message: str, headers: dict[str, str]) -> str:
    """A refusal with Retry-After says, in words, how long to wait."""
    retry = next((value for name, value in headers.items() if name.lower() == "retry-after"), None)
    if retry is None or not retry.isdigit():
        return message
    seconds = int(retry)
    wait = f"{seconds} seconds" if seconds < 90 else f"{-(-seconds // 60)} minutes"
    return f"{message.rstrip('.')}. You can try again in {wait}."


PAGE_ERROR_HEADERS = ("retry-after", "ratelimit", "ratelimit-policy")
"""What a refusal's page keeps of the problem's headers: when to come back, and the limits (G35)."""


def _page_error(request: Req, exc: Exception) -> Response[Any]:
    if isinstance(exc, PageError):
        context = {"title": "Something is not right", "project_name": None, **exc.context}
        context["error"] = exc.message
        return render(exc.template, exc.status, exc.headers, **context)
    if isinstance(exc, ProblemError):
        kept = {k: v for k, v in exc.headers.items() if k.lower() in PAGE_ERROR_HEADERS}
        message = _with_wait(exc.detail, kept)
        return render("message.html", exc.status, kept, title=exc.title, project_name=None, error=message)
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    status = status if 400 <= status < 500 else 400
    return render(
        "message.html", status, title="Bad request", project_name=None, error="The request is not valid."
    )


@dataclass
class Page:
    """One request to a hosted page: the project environment, its look, its redirect, the form cookie."""

    settings: Settings
    project_id: str
    project_name: str
    """The name the pages show: the branding's display name, else the project's."""
    branding: HostedBranding
    where: PagePath
    form_cookie: str
    new_cookie: bool
    redirect_url: str
    state: str
    code_challenge: str
    authorization: AuthorizationRequest | None = None
    """The OpenID Provider's authorization request the page was opened with: its redirect URI, state and
    challenge are the page's, and the code it issues is for that client only."""
    authorization_token: str = ""
    """The same request, sealed, as the page's links and forms carry it."""

    @property
    def scope(self) -> ProjectEnvironment:
        return ProjectEnvironment(self.project_id, self.where.environment)

    def context(self, title: str, **extra: Any) -> dict[str, Any]:
        return {
            "title": title,
            "project_name": self.project_name,
            "branding": self.branding,
            "environment": self.where.environment,
            "where": self.where,
            "csrf_token": tokens.csrf_token(self.settings, self.where, self.form_cookie),
            "redirect_url": self.redirect_url,
            "state": self.state,
            "code_challenge": self.code_challenge,
            "authorization": self.authorization_token,
            "error": None,
            **extra,
        }

    def show(self, template: str, title: str, status: int = 200, **extra: Any) -> Response[str]:
        response = render(template, status, **self.context(title, **extra))
        if self.new_cookie:
            response.set_cookie(tokens.cookie(self.settings, self.where, CSRF_COOKIE, self.form_cookie, None))
        return response

    def refuse(
        self, template: str, title: str, problem: ProblemError | str, status: int = 400, **extra: Any
    ) -> PageError:
        headers = problem.headers if isinstance(problem, ProblemError) else {}
        message = _with_wait(problem.detail, headers) if isinstance(problem, ProblemError) else problem
        status = problem.status if isinstance(problem, ProblemError) else status
        return PageError(
            status, message, template=template, context=self.context(title, **extra), headers=headers
        )

    @contextmanager
    def refusing(self, template: str, title: str, **extra: Any) -> Iterator[None]:
        """Show a ProblemError raised inside as the error on `template` (the transaction rolls back)."""
        try:
            yield
        except ProblemError as problem:
            raise self.refuse(template, title, problem, **extra) from None


async def signed_in(db: AsyncSession, page: Page, request: Req) -> tuple[EndUserSession, EndUser] | None:
    """The live session (and its user) of this project environment behind the browser's cookie."""
    cookie = request.cookies.get(page.settings.end_user_cookie_name)
    return await sessions.session_from_cookie(db, page.settings, page.scope, cookie)


async def identity_entry(db: AsyncSession, page: Page, name: str) -> Response[Any] | None:
    """The one place where the identity backend decides who renders the hosted pages.

    builtin: None (this module's forms). authentik: sign-in and sign-up go to the project's Authentik
    application (authentik/hosted_sign_in.py); sign-out ends the session here; the account pages live
    in Authentik.
    """
    settings = page.settings
    if settings.identity != "authentik" or name == "sign-out":
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
        settings,
        project,
        environment=page.where.environment,
        redirect_url=page.redirect_url,
        client_state=page.state,
        client_challenge=page.code_challenge,
        client_authorization=page.authorization_token,
    )
    response: Response[Any] = Redirect(
        started.authorization_url, status_code=303, headers={"Cache-Control": "no-store"}
    )
    response.set_cookie(tokens.oidc_state_cookie(settings, project.id, started.cookie_value))
    return response


def field(values: dict[str, Any], name: str, limit: int = MAX_FIELD) -> str:
    value = values.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise PageError(400, f"The field {name} is not valid.")
    return value


async def _open(
    request: Req,
    db: AsyncSession,
    settings: Settings,
    project_id: str,
    environment: str,
    values: dict[str, Any],
) -> Page:
    """Load the project environment and check the redirect URL; refuse before anything is written."""
    project = await db.get(Project, project_id) if looks_like("prj", project_id) else None
    if project is None or environment not in ENVIRONMENTS:
        raise PageError(404, "There is no such sign-in page.")
    where = PagePath(settings.auth_url, project.id, environment)
    looks = hosted_branding(project, await branding_of(db, project.id))
    redirect_url, state = field(values, "redirect_url", 2048), field(values, "state", MAX_STATE)
    challenge, method = field(values, "code_challenge", 128), field(values, "code_challenge_method", 10)
    context = {"project_name": looks.name, "branding": looks, "title": "This link is not valid"}
    sealed = field(values, "authorization")
    authorization = open_request(settings, project.id, environment, sealed) if sealed else None
    if sealed and authorization is None:
        raise PageError(
            400,
            "This sign-in link has expired or is not valid: go back to the app and sign in again.",
            context=context,
        )
    if authorization is not None:  # what the authorize endpoint checked, never the page's own fields
        redirect_url, state = authorization.redirect_uri, authorization.state
        challenge, method = authorization.code_challenge, "S256" if authorization.code_challenge else ""
    if redirect_url and not sessions.redirect_allowed(project, redirect_url, settings.accounts_url):
        raise PageError(
            400,
            "The redirect URL is not registered for this project, so the sign-in page refuses it. "
            "Registered URLs match exactly, character for character.",
            context=context,
        )
    if not s256_challenge_ok(challenge, method):
        raise PageError(
            400,
            "Only PKCE code_challenge_method=S256 is supported, with a code_challenge of 43 base64url "
            "characters.",
            context=context,
        )
    existing = request.cookies.get(CSRF_COOKIE)
    fresh = not existing or len(existing) > 64
    return Page(
        settings=settings,
        project_id=project.id,
        project_name=looks.name,
        branding=looks,
        where=where,
        form_cookie=tokens.new_csrf_cookie() if fresh else str(existing),
        new_cookie=fresh,
        redirect_url=redirect_url,
        state=state,
        code_challenge=challenge,
        authorization=authorization,
        authorization_token=sealed if authorization else "",
    )


async def entered_page(request: Req, db: AsyncSession, settings: Settings, values: dict[str, Any]) -> Page:
    """Open the page of the request's path (`/p/{project_id}/{environment}/…`)."""
    path = request.path_params
    return await _open(request, db, settings, path["project_id"], path["environment"], values)


@dataclass(frozen=True, slots=True)
class PostedForm:
    """A submitted form of a hosted page, its CSRF token checked."""

    page: Page
    values: dict[str, Any]

    def field(self, name: str, limit: int = MAX_FIELD) -> str:
        return field(self.values, name, limit)


async def _posted(request: Req, db: AsyncSession, settings: Settings, *, carry: bool) -> PostedForm:
    """Read the form, open its page (with the redirect fields it carries, when `carry`), check its CSRF
    token."""
    values = await _form(request)
    page = await entered_page(request, db, settings, values if carry else {})
    _check_csrf(page, request, values)
    return PostedForm(page, values)


async def _sign_in_page(
    request: Req, db: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> Page:
    return await entered_page(request, db, settings, dict(request.query_params))


async def _sign_in_form(
    request: Req, db: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> PostedForm:
    return await _posted(request, db, settings, carry=True)


async def _account_page(
    request: Req, db: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> Page:
    return await entered_page(request, db, settings, {})


async def _account_form(
    request: Req, db: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> PostedForm:
    return await _posted(request, db, settings, carry=False)


SIGN_IN_PAGES = {"page": Provide(_sign_in_page), "form": Provide(_sign_in_form)}
"""The sign-up, sign-in and sign-out pages: the redirect fields (redirect_url, state, code_challenge)
come with the query and, on a submission, with the form."""
ACCOUNT_PAGES = {"page": Provide(_account_page), "form": Provide(_account_form)}
"""The signed-in user's account pages: no redirect fields."""


def _entry(path: str) -> str:
    """The page a hosted path opens: `sign-in` for `/p/{project}/{env}/sign-in/code`, `account` for the
    account pages."""
    parts = path.split("/")
    return parts[4] if len(parts) > 4 else ""


async def identity_handover(request: Req) -> Response[Any] | None:
    """before_request of the hosted pages: when the identity engine renders a page itself, answer for
    it here (the route handler does not run), with the login state in a transaction of its own."""
    runtime = runtime_of(request)
    entry = _entry(request.url.path)
    if runtime.settings.identity != "authentik" or entry == "sign-out":
        return None
    values = dict(request.query_params) if request.method == "GET" else {}
    if request.method == "POST" and entry != "account":
        values = await _form(request)  # the redirect fields the form carries
    async with transaction(runtime.sessionmaker) as db:
        page = await entered_page(request, db, runtime.settings, values)
        return await identity_entry(db, page, entry)


async def _form(request: Req) -> dict[str, Any]:
    try:
        form = await request.form()
    except Exception:  # a malformed body is the caller's mistake, never a 500
        raise PageError(400, "The form could not be read.") from None
    return {key: form.get(key) for key in form}


def _check_csrf(page: Page, request: Req, values: dict[str, Any]) -> None:
    if page.new_cookie or not tokens.csrf_valid(
        page.settings, page.where, request.cookies.get(CSRF_COOKIE), field(values, "csrf_token")
    ):
        raise PageError(
            403,
            "This form has expired or was not sent from this page. Go back, reload the page and try again.",
            context={
                "project_name": page.project_name,
                "branding": page.branding,
                "title": "Please try again",
            },
        )


HOSTED_PREFIX = "/p/"


def unknown_page(request: Req) -> Response[Any]:
    """A path below the hosted pages' prefix that no page serves: an HTML page, like its neighbours."""
    return _page_error(request, PageError(404, "There is no such page."))


PAGE_HANDLERS: ExceptionHandlersMap = {
    PageError: _page_error,
    ProblemError: _page_error,
    HTTPException: _page_error,
}
