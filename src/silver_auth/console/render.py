"""Plumbing of the console pages: Jinja2 rendering (autoescaped), their Content-Security-Policy, the
form token of the signed-out forms (sign-in, setup, sign-up), and flash messages.

Signed-in forms carry the console session's own CSRF token (the one `/console/api/me` answers), checked
by the page guard exactly as the `X-CSRF-Token` header is. Signed-out forms have no session yet: their
token is a signature over a random cookie of this browser (double submit, signed), so a cross-site page
cannot post them (login CSRF).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import jinja2
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.response import Redirect

from silver_auth.core.crypto import sign, verify_signature
from silver_auth.settings import Settings

HERE = Path(__file__).parent
PREFIX = "/console"
STYLESHEET_PATH = f"{PREFIX}/assets/console.css"
FORM_COOKIE = "silver_console_form"
FLASH_COOKIE = "silver_console_flash"
CSRF_FIELD = "csrf_token"
# Stricter than asked of any page: only the app's own stylesheet (and scripts, none yet), forms post
# to the console itself, no framing, no <base>.
PAGE_CSP = (
    b"default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
STYLESHEET = (HERE / "static" / "console.css").read_text()

Req = Request[Any, Any, Any]


def html(template: str, status: int = 200, **context: Any) -> Response[str]:
    """A rendered page: never stored by a cache (pages carry tokens and account data)."""
    context.setdefault("error", None)
    context.setdefault("flash", None)
    context.setdefault("account", None)
    context.setdefault("orgs", [])
    context.setdefault("current_org", None)
    context.setdefault(CSRF_FIELD, "")
    body = _templates.get_template(template).render(**context)
    return Response(body, status_code=status, media_type="text/html", headers={"Cache-Control": "no-store"})


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
