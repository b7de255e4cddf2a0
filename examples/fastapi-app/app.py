"""An example customer app: users sign in on SEQN's hosted page (PKCE S256 and state), this server
exchanges the code with the secret key, keeps the session server-side (the browser holds only an
opaque httpOnly cookie), verifies the session JWT offline on each protected request, refreshes it
before it expires, and signs out by revoking the session.

Settings (environment): SEQN_AUTH_URL, SEQN_PROJECT_ID, SEQN_ENVIRONMENT (test|live), SEQN_SECRET_KEY,
EXAMPLE_URL (default http://127.0.0.1:3000; `{EXAMPLE_URL}/callback` must be a redirect URL of the
project), EXAMPLE_REFRESH_MARGIN (seconds before the JWT's expiry when it is refreshed, default 15).
Run it with `make example`, or `uvicorn --app-dir examples/fastapi-app app:app --port 3000`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from seqn_auth import (
    AsyncSeqnClient,
    AsyncTokenVerifier,
    SeqnError,
    SessionClaims,
    new_pkce,
    new_state,
    sign_in_url,
    sign_up_url,
)
from seqn_auth.fastapi import SessionAuth

SESSION_COOKIE = "example_session"
LOGIN_COOKIE = "example_login"
LOGIN_SECONDS = 600  # how long a started sign-in may take on the hosted page
# Refresh the JWT this many seconds before it expires (it lives about a minute).
REFRESH_MARGIN = float(os.environ.get("EXAMPLE_REFRESH_MARGIN", "15"))


@dataclass(frozen=True, slots=True)
class Settings:
    auth_url: str
    project_id: str
    environment: str
    secret_key: str = field(repr=False)
    example_url: str

    @property
    def callback(self) -> str:
        return f"{self.example_url}/callback"

    @classmethod
    def from_env(cls) -> Settings:
        missing = [
            name
            for name in ("SEQN_AUTH_URL", "SEQN_PROJECT_ID", "SEQN_SECRET_KEY")
            if not os.environ.get(name)
        ]
        if missing:
            raise SystemExit(f"set {', '.join(missing)} (or run `make example`, which provisions them)")
        return cls(
            auth_url=os.environ["SEQN_AUTH_URL"].rstrip("/"),
            project_id=os.environ["SEQN_PROJECT_ID"],
            environment=os.environ.get("SEQN_ENVIRONMENT", "test"),
            secret_key=os.environ["SEQN_SECRET_KEY"],
            example_url=os.environ.get("EXAMPLE_URL", "http://127.0.0.1:3000").rstrip("/"),
        )


@dataclass
class PendingLogin:
    state: str
    verifier: str = field(repr=False)
    started: float


@dataclass
class StoredSession:
    """What the server keeps for a signed-in browser. The session token rotates on every refresh and
    a replaced one presented again revokes the session, so refreshes of one session never overlap."""

    session_id: str
    user_id: str
    session_token: str = field(repr=False)
    jwt: str = field(repr=False)
    jwt_expires_at: float
    csrf: str = field(repr=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)


settings = Settings.from_env()
seqn = AsyncSeqnClient(settings.auth_url, settings.secret_key)
verifier = AsyncTokenVerifier(settings.auth_url, settings.project_id, settings.environment)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# In memory, for the example: a real app keeps these in its database or Redis.
pending: dict[str, PendingLogin] = {}
sessions: dict[str, StoredSession] = {}
app = FastAPI(title="SEQN example app", docs_url=None, redoc_url=None, openapi_url=None)


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison of a value we issued with one the browser sent (any characters)."""
    return hmac.compare_digest(expected.encode(), given.encode())


def _secure() -> bool:
    return settings.example_url.startswith("https://")


def _stored(connection: HTTPConnection) -> StoredSession | None:
    key = connection.cookies.get(SESSION_COOKIE)
    return sessions.get(key) if key else None


async def current_jwt(connection: HTTPConnection) -> str | None:
    """The session's JWT, refreshed first when it is about to expire (or has)."""
    stored = _stored(connection)
    if stored is None:
        return None
    async with stored.lock:
        if stored.jwt_expires_at - time.time() < REFRESH_MARGIN:
            try:
                fresh = await seqn.refresh_session(stored.session_token)
            except SeqnError:  # revoked, banned or expired: signed out
                sessions.pop(connection.cookies.get(SESSION_COOKIE, ""), None)
                return None
            stored.session_token, stored.jwt = fresh.session_token, fresh.jwt
            stored.jwt_expires_at = fresh.jwt_expires_at.timestamp()
        return stored.jwt


require_session = SessionAuth(verifier, token_getter=current_jwt)
Signed = Annotated[SessionClaims, Depends(require_session)]


@app.exception_handler(StarletteHTTPException)
async def signed_out(request: Request, error: StarletteHTTPException) -> Response:
    if error.status_code == 401:
        return templates.TemplateResponse(request, "signed_out.html", {}, status_code=401)
    text = html.escape(f"{error.status_code}: {error.detail}")
    return HTMLResponse(f"<p>{text}</p>", status_code=error.status_code)


@app.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    return templates.TemplateResponse(request, "index.html", {"signed_in": _stored(request) is not None})


@app.get("/login")
async def login(page: str = "sign-in") -> Response:
    """Start a sign-in: a fresh state and PKCE verifier kept server-side, then the hosted page."""
    now = time.time()
    for key in [k for k, v in pending.items() if now - v.started > LOGIN_SECONDS]:
        del pending[key]
    verifier_, challenge = new_pkce()
    login_id, state = secrets.token_urlsafe(24), new_state()
    pending[login_id] = PendingLogin(state, verifier_, now)
    build = sign_up_url if page == "sign-up" else sign_in_url
    target = build(
        settings.auth_url,
        settings.project_id,
        settings.environment,
        redirect_url=settings.callback,
        state=state,
        code_challenge=challenge,
    )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        LOGIN_COOKIE, login_id, max_age=LOGIN_SECONDS, httponly=True, samesite="lax", secure=_secure()
    )
    return response


@app.get("/callback")
async def callback(request: Request, code: str = "", state: str = "") -> Response:
    """The hosted page's redirect: the state must be this browser's, then the code is exchanged."""
    login_id = request.cookies.get(LOGIN_COOKIE, "")
    started = pending.pop(login_id, None)
    if started is None or not code or not _same(started.state, state):
        return HTMLResponse(
            "<p>This sign-in was not started here, or it expired. <a href='/'>Home</a></p>", 400
        )
    try:
        issued = await seqn.exchange_code(code, settings.callback, code_verifier=started.verifier)
    except SeqnError as error:
        return HTMLResponse(f"<p>Sign-in refused ({error.reason}). <a href='/'>Home</a></p>", 400)
    key = secrets.token_urlsafe(32)
    sessions[key] = StoredSession(
        session_id=issued.session_id,
        user_id=issued.user_id,
        session_token=issued.session_token,
        jwt=issued.jwt,
        jwt_expires_at=issued.jwt_expires_at.timestamp(),
        csrf=secrets.token_urlsafe(24),
    )
    response = RedirectResponse("/protected", status_code=303)
    response.delete_cookie(LOGIN_COOKIE)
    response.set_cookie(SESSION_COOKIE, key, httponly=True, samesite="lax", secure=_secure())
    return response


@app.get("/protected", response_class=HTMLResponse)
async def protected(request: Request, claims: Signed) -> Response:
    user = await seqn.get_user(claims.user_id)
    stored = _stored(request)
    context = {
        "email": user.email,
        "claims": claims,
        "csrf": stored.csrf if stored else "",
        "expires_in": max(0, claims.expires_at - int(time.time())),
    }
    return templates.TemplateResponse(request, "protected.html", context)


@app.post("/logout")
async def logout(request: Request) -> Response:
    """Revoke the session at SEQN (its JWTs then fail the live check, its token cannot refresh) and
    forget it here. The form's csrf field must be this session's (the cookie is SameSite=Lax too)."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    csrf = form.get("csrf", [""])[0]
    key = request.cookies.get(SESSION_COOKIE, "")
    stored = sessions.get(key)
    if stored is not None and _same(stored.csrf, csrf):
        del sessions[key]
        with contextlib.suppress(SeqnError):  # already ended: forgetting it here is all that is left
            await seqn.revoke_session(stored.session_id)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
