"""Plumbing of the hosted pages: Jinja2 rendering (autoescaped), the form CSRF token tied to a cookie,
the signed "password passed, code pending" token, and the pages' cookies.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from litestar import Response
from litestar.datastructures import Cookie

from silver_auth.authentik.login_states import LOGIN_TTL, STATE_COOKIE
from silver_auth.core import clock, urls
from silver_auth.core.crypto import sign, verify_signature
from silver_auth.settings import Settings

HERE = Path(__file__).parent
CSRF_COOKIE = "silver_form"
PENDING_SECONDS = 300
# The pages' own policy (the app's default is `default-src 'none'`): the app's stylesheets and the
# project's logo only, no scripts at all. The inline QR code is SVG markup, not a loaded image. No
# form-action: browsers apply it to the redirect after a form post, which goes to the customer's
# redirect URL.
PAGE_CSP = b"default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"
PAGE_OPT = {"csp": PAGE_CSP}

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
STYLESHEET = (HERE / "static" / "hosted.css").read_text()


def render(
    template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> Response[str]:
    html = _templates.get_template(template).render(**context)
    # Pages carry per-user tokens: never stored by a shared cache.
    return Response(
        html,
        status_code=status,
        media_type="text/html",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


@dataclass(frozen=True, slots=True)
class PagePath:
    """Where a project environment's hosted pages live; the cookies are scoped to it."""

    base_url: str
    project_id: str
    environment: str

    @property
    def path(self) -> str:
        return urls.hosted_pages_path(self.project_id, self.environment)

    def url(self, page: str, **query: str | None) -> str:
        kept = {k: v for k, v in query.items() if v}
        return f"{self.path}/{page}" + (f"?{urlencode(kept)}" if kept else "")


def cookie(settings: Settings, where: PagePath, name: str, value: str, max_age: int | None) -> Cookie:
    return Cookie(
        key=name,
        value=value,
        path=where.path,
        httponly=True,
        secure=settings.end_user_cookie_secure,
        samesite=settings.session_cookie_samesite.lower(),  # type: ignore[arg-type]
        max_age=max_age,
    )


def oidc_state_cookie(settings: Settings, project_id: str, value: str) -> Cookie:
    # Lax whatever the session cookie's SameSite: the callback is a top-level navigation from Authentik.
    return Cookie(
        key=STATE_COOKIE,
        value=value,
        path=urls.hosted_oidc_callback_path(project_id).removesuffix("/callback"),  # that callback only
        httponly=True,
        secure=settings.end_user_cookie_secure,
        samesite="lax",
        max_age=int(LOGIN_TTL.total_seconds()) if value else 0,
    )


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(settings: Settings, where: PagePath, cookie_value: str) -> str:
    """The form token: a signature over the browser's cookie and the page path (double submit, signed)."""
    return sign(settings.secret("session_secret"), f"page_csrf:{where.path}:{cookie_value}")


def csrf_valid(settings: Settings, where: PagePath, cookie_value: str | None, presented: str | None) -> bool:
    if not cookie_value or not presented:
        return False
    return verify_signature(
        settings.secret("session_secret"), f"page_csrf:{where.path}:{cookie_value}", presented
    )


def pending_token(settings: Settings, where: PagePath, user_id: str, cookie_value: str) -> str:
    """Proof that this browser passed the password step for `user_id`, valid a few minutes."""
    expires = int(clock.now().timestamp()) + PENDING_SECONDS
    signature = sign(
        settings.secret("session_secret"), f"mfa_pending:{where.path}:{user_id}:{expires}:{cookie_value}"
    )
    return f"{user_id}.{expires}.{signature}"


def pending_user(
    settings: Settings, where: PagePath, token: str | None, cookie_value: str | None
) -> str | None:
    user_id, _, rest = (token or "").partition(".")
    expires, _, signature = rest.partition(".")
    if not user_id or not expires.isdigit() or not signature or not cookie_value:
        return None
    if int(expires) <= clock.now().timestamp():
        return None
    message = f"mfa_pending:{where.path}:{user_id}:{expires}:{cookie_value}"
    return user_id if verify_signature(settings.secret("session_secret"), message, signature) else None
