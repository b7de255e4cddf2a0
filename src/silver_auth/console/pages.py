"""What every console page shares: its access rule and guard, the signed-in context it renders with,
and HTML error pages (a console page never answers JSON or a stack trace).

Page routes declare `opt=page_opt(access)` with the access rules of the JSON API ("public", "account"
or an org role); `orgs.guards.org_role_guard` runs after `page_guard` for the role rules, so a page and
the API route it mirrors refuse the same callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ExceptionHandlersMap
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import UNSAFE_METHODS, ConsoleContext, console_context
from silver_auth.console.render import CSRF_FIELD, PAGE_CSP, PREFIX, Req, html, signed_out_form
from silver_auth.core.errors import Forbidden, ProblemError, Unauthorized
from silver_auth.orgs import service as orgs
from silver_auth.orgs.models import Org, Role
from silver_auth.runtime import runtime_of
from silver_auth.web.deps import request_db
from silver_auth.web.http import allow_header, refuse_options

SIGN_IN_PATH = f"{PREFIX}/sign-in"


def page_opt(access: str) -> dict[str, Any]:
    return {"access": access, "csp": PAGE_CSP}


async def page_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The console guard for pages: the same session and CSRF rule, the token read from the form's
    hidden field when no header carries it."""
    access = handler.opt.get("access")
    if access is None:  # fail closed, as the JSON API does
        refuse_options(connection)  # Litestar's own OPTIONS handler: 405, as on the API
        raise Forbidden("this page has no access rule")
    if access == "public":
        return
    form_csrf = None
    if connection.scope.get("method") in UNSAFE_METHODS:
        # Parsed once: Litestar keeps the form in the connection state for the handler.
        form = await Request[Any, Any, Any](connection.scope, connection.receive).form()
        presented = form.get(CSRF_FIELD)
        form_csrf = presented if isinstance(presented, str) else None
    connection.state.console = await console_context(connection, request_db(connection), form_csrf=form_csrf)


@dataclass(frozen=True, slots=True)
class Frame:
    """What the layout shows around a signed-in page: the account, its orgs (the switcher), the token."""

    console: ConsoleContext
    orgs: list[tuple[Org, Role]]

    def context(self, current_org: Org | None = None, **more: Any) -> dict[str, Any]:
        return {
            "account": self.console.account,
            "orgs": self.orgs,
            "current_org": current_org,
            CSRF_FIELD: self.console.csrf_token,
            **more,
        }


async def frame(db: AsyncSession, console: ConsoleContext) -> Frame:
    return Frame(console, await orgs.orgs_of(db, console.account.id))


class PageError(Exception):
    """Show `template` again with `error` (the request's transaction rolls back: nothing is written).

    A signed-in page is rendered here, when raised: the rollback expires the rows its context holds (the
    account, the orgs, the project), and an expired row cannot load again once the session is gone."""

    def __init__(
        self, status: int, error: str, template: str, *, signed_out: bool = False, **context: Any
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.template = status, error, template
        self.signed_out, self.context = signed_out, context
        self.rendered = None if signed_out else html(template, status, error=error, **context)


def _page_error(request: Req, exc: Exception) -> Response[Any]:
    if isinstance(exc, PageError):
        if exc.rendered is not None:
            return exc.rendered
        settings = runtime_of(request).settings
        return signed_out_form(exc.template, request, settings, exc.status, error=exc.error, **exc.context)
    if isinstance(exc, Unauthorized) and request.method == "GET":
        return Response(
            None, status_code=303, headers={"Location": SIGN_IN_PATH, "Cache-Control": "no-store"}
        )
    if isinstance(exc, ProblemError):
        return html("message.html", exc.status, title=exc.title, message=exc.detail)
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    status = status if 400 <= status < 500 else 400
    title = "There is no such page" if status == 404 else "The request is not valid"
    response = html(
        "message.html", status, title=title, message="Check the address, or go back and try again."
    )
    if isinstance(exc, HTTPException) and exc.headers and "Allow" in exc.headers:
        response.headers["Allow"] = allow_header(request.url.path, exc.headers["Allow"])
    return response


def unknown_page(request: Req) -> Response[Any]:
    """A path below the console's pages that none serves: an HTML page, like its neighbours."""
    return _page_error(request, HTTPException(status_code=404))


PAGE_HANDLERS: ExceptionHandlersMap = {
    PageError: _page_error,
    ProblemError: _page_error,
    HTTPException: _page_error,
}
