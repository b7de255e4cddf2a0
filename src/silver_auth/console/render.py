"""Plumbing of the console pages: Jinja2 rendering (autoescaped), their Content-Security-Policy, the
form token of the signed-out forms (sign-in, setup, sign-up), and flash messages.

Signed-in forms carry the console session's own CSRF token (the one `/console/api/me` answers), checked
by the page guard exactly as the `X-CSRF-Token` header is. Signed-out forms have no session yet: their
token is a signature over a random cookie of this browser (double submit, signed), so a cross-site page
cannot post them (login CSRF).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import jinja2
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.response import Redirect

from silver_auth.core import clock
from silver_auth.core.crypto import sign, verify_signature
from silver_auth.settings import Settings

HERE = Path(__file__).parent
PREFIX = "/console"
FORM_COOKIE = "silver_console_form"
FLASH_COOKIE = "silver_console_flash"
CSRF_FIELD = "csrf_token"
# Stricter than asked of any page: only the app's own stylesheet and scripts, requests (htmx's) and
# forms to the console itself, no framing, no <base>.
PAGE_CSP = (
    b"default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

PAGE_SIZE = 25


def _ago(moment: datetime | None) -> str:
    """`moment` relative to now, in words ("3 minutes ago", "in 2 days")."""
    if moment is None:
        return "never"
    seconds = (clock.now() - moment).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            words = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {words}" if future else f"{words} ago"
    return "in a moment" if future else "just now"


def _absolute(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_templates.filters["ago"] = _ago
_templates.filters["absolute"] = _absolute

# The browser assets the pages load, read once; htmx.min.js is the npm package's file (`make vendor`).
ASSETS: dict[str, tuple[str, bytes]] = {
    name: (media_type, (HERE / "static" / name).read_bytes())
    for name, media_type in (
        ("console.css", "text/css"),
        ("console.js", "text/javascript"),
        ("htmx.min.js", "text/javascript"),
    )
}

Req = Request[Any, Any, Any]


def is_fragment_request(request: Req) -> bool:
    """An htmx request for part of a page (`HX-Request`), answered with the template's fragment block.
    A boosted navigation (`HX-Boosted`) wants the whole page, and so does htmx restoring a pushed URL
    it has no copy of (`HX-History-Restore-Request`: the history cache is off), or Back would show a
    page made of the fragment alone."""
    headers = request.headers
    return (
        headers.get("hx-request") == "true"
        and headers.get("hx-boosted") != "true"
        and headers.get("hx-history-restore-request") != "true"
    )


@dataclass(frozen=True, slots=True)
class Pager:
    """Links to the next and first pages of a long list, keeping the list's other query parameters.
    `next_value` is the next page's offset or cursor (None: this is the last page)."""

    path: str
    params: dict[str, str]
    next_value: str | None
    first: bool

    def url(self, value: str | None) -> str:
        params = {k: v for k, v in self.params.items() if v and k != "after"}
        if value is not None:
            params["after"] = value
        return f"{self.path}?{urlencode(params)}" if params else self.path

    @property
    def next_url(self) -> str | None:
        return self.url(self.next_value) if self.next_value is not None else None

    @property
    def first_url(self) -> str | None:
        return None if self.first else self.url(None)


def pager(request: Req, next_value: str | int | None) -> Pager:
    """The pager of a list page: its cursor travels in `?after=`, its filters in the other parameters."""
    params = {key: value for key, value in request.query_params.items() if isinstance(value, str)}
    return Pager(
        request.url.path,
        params,
        None if next_value is None else str(next_value),
        first=not request.query_params.get("after"),
    )


def offset_of(request: Req) -> int:
    """The offset a `?after=` of an offset-paginated list names (0 when absent or not a number)."""
    value = request.query_params.get("after", "")
    return int(value) if value.isdigit() and len(value) < 9 else 0


def html(template: str, status: int = 200, *, fragment: str | None = None, **context: Any) -> Response[str]:
    """A rendered page, or only its block `fragment` (for htmx): never stored by a cache (pages carry
    tokens and account data)."""
    context.setdefault("error", None)
    context.setdefault("flash", None)
    context.setdefault("account", None)
    context.setdefault("orgs", [])
    context.setdefault("current_org", None)
    context.setdefault("current_project", None)
    context.setdefault("platform_admin", False)
    context.setdefault("section", "")
    context.setdefault(CSRF_FIELD, "")
    page = _templates.get_template(template)
    if fragment is None:
        body = page.render(**context)
    else:
        body = "".join(page.blocks[fragment](page.new_context(context)))
    return Response(
        body,
        status_code=status,
        media_type="text/html",
        headers={"Cache-Control": "no-store", "Vary": "HX-Request"},
    )


def page(request: Req, settings: Settings, template: str, **context: Any) -> Response[str]:
    """A signed-in page with the flash message the last redirect left, shown once; an htmx request
    for part of it gets the `fragment` block alone."""
    flash = read_flash(request)
    fragment = "fragment" if is_fragment_request(request) and "fragment" in _blocks(template) else None
    response = html(template, fragment=fragment, flash=flash, **context)
    if flash:
        clear_flash(response, settings)
    return response


def _blocks(template: str) -> dict[str, Any]:
    return _templates.get_template(template).blocks


def see_other(path: str, *, flash: str | None = None, settings: Settings | None = None) -> Redirect:
    """Redirect after a form post (303: the browser follows with GET), with a flash message to show."""
    response = Redirect(path, status_code=303, headers={"Cache-Control": "no-store"})
    if flash is not None and settings is not None:
        response.set_cookie(_cookie(settings, FLASH_COOKIE, quote(flash), 60))
    return response


def read_flash(request: Req) -> str | None:
    """The flash message the last redirect left (shown once: the page clears it)."""
    value = request.cookies.get(FLASH_COOKIE)
    return unquote(value)[:200] if value else None


def clear_flash(response: Response[Any], settings: Settings) -> None:
    response.set_cookie(_cookie(settings, FLASH_COOKIE, "", 0))


def _cookie(settings: Settings, key: str, value: str, max_age: int | None) -> Cookie:
    return Cookie(
        key=key,
        value=value,
        path=PREFIX,
        httponly=True,
        secure=settings.console_cookie_secure,
        samesite=settings.session_cookie_samesite.lower(),  # type: ignore[arg-type]
        max_age=max_age,
    )


def form_cookie_value(request: Req) -> tuple[str, bool]:
    """This browser's form cookie, and whether it is new (to be set on the answer)."""
    current = request.cookies.get(FORM_COOKIE)
    if current and len(current) <= 64:
        return current, False
    return secrets.token_urlsafe(24), True


def signed_out_token(settings: Settings, cookie_value: str) -> str:
    return sign(settings.secret("session_secret"), f"console_form:{cookie_value}")


def signed_out_token_valid(settings: Settings, request: Req, presented: str | None) -> bool:
    cookie_value = request.cookies.get(FORM_COOKIE)
    if not cookie_value or not presented:
        return False
    return verify_signature(settings.secret("session_secret"), f"console_form:{cookie_value}", presented)


def signed_out_form(
    template: str, request: Req, settings: Settings, status: int = 200, **context: Any
) -> Response[str]:
    """A signed-out form page with its token (and the cookie it is tied to, when the browser has none)."""
    value, new = form_cookie_value(request)
    response = html(template, status, **{CSRF_FIELD: signed_out_token(settings, value)}, **context)
    if new:
        response.set_cookie(_cookie(settings, FORM_COOKIE, value, 3600))
    return response
