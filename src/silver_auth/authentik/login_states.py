"""Browser-bound, single-use OIDC login states (state, nonce, PKCE verifier): the console's Authentik
sign-in and the projects' hosted sign-in share them; the state rides in a signed cookie and its row is
deleted on return."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.authentik.models import OidcLogin
from silver_auth.authentik.oidc import OidcClient, SignInFailed
from silver_auth.core import clock
from silver_auth.core.crypto import sign, token_hash, verify_signature
from silver_auth.core.errors import ProblemError
from silver_auth.core.ids import new_id
from silver_auth.db.session import transaction
from silver_auth.settings import Settings

LOGIN_TTL = timedelta(minutes=10)
STATE_COOKIE = "silver_oidc"


class StateInvalid(ProblemError):
    status, slug, title = 400, "sso-state-invalid", "Sign-in state is not valid"


@dataclass(frozen=True, slots=True)
class LoginStarted:
    authorization_url: str
    cookie_value: str
    """`state.signature`, HttpOnly: binds the sign-in to the browser that started it (login CSRF)."""


class LoginStates:
    """Browser-bound, single-use OIDC login states (state, nonce, PKCE verifier), shared by the console
    and the projects' hosted pages; the state rides in a signed cookie and its row is deleted on return."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.secret("session_secret")

    def cookie_for(self, state: str) -> str:
        return f"{state}.{sign(self._secret, 'oidc-state:' + state)}"

    def state_from_cookie(self, cookie: str | None) -> str | None:
        state, dot, signature = (cookie or "").partition(".")
        if not dot or not state or not verify_signature(self._secret, "oidc-state:" + state, signature):
            return None
        return state

    async def begin(self, db: AsyncSession, **where: str | None) -> tuple[OidcLogin, str]:
        """A new login (fresh nonce and verifier) in the caller's transaction, and its clear state (only
        its hash is stored); `where` says where it returns (next_path for the console; project_id,
        environment, redirect_url, client_state, client_challenge, client_authorization for hosted pages)."""
        now = clock.now()
        await db.execute(delete(OidcLogin).where(OidcLogin.expires_at < now))
        state = secrets.token_urlsafe(32)
        login = OidcLogin(
            id=new_id("oidc"),
            state_hash=token_hash(state),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),
            created_at=now,
            expires_at=now + LOGIN_TTL,
            **{"next_path": "", **where},
        )
        db.add(login)
        return login, state

    async def _consume(self, sessionmaker: async_sessionmaker[AsyncSession], state: str) -> OidcLogin:
        """Single use, committed on its own: a failed callback must not leave the state reusable."""
        async with transaction(sessionmaker) as db:
            login = await db.scalar(select(OidcLogin).where(OidcLogin.state_hash == token_hash(state)))
            if login is None:
                raise StateInvalid("this sign-in is unknown or was already used; start again")
            deleted = await db.execute(delete(OidcLogin).where(OidcLogin.id == login.id))
            if deleted.rowcount != 1:  # type: ignore[attr-defined]  # a concurrent callback won
                raise StateInvalid("this sign-in was already used; start again")
            db.expunge(login)
        if clock.now() >= login.expires_at:
            raise StateInvalid("this sign-in took too long; start again")
        return login

    async def claim(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        state: str | None,
        cookie: str | None,
        project_id: str | None,
    ) -> OidcLogin:
        """The login this browser started here (console: project_id None), used up at once. Call it
        before the request's own transaction starts: on SQLite that one would hold the write lock."""
        bound = self.state_from_cookie(cookie)
        if not state or bound is None or not secrets.compare_digest(bound.encode(), state.encode()):
            raise StateInvalid("the sign-in state does not match this browser; start again")
        login = await self._consume(sessionmaker, state)
        if login.project_id != project_id:  # a console state at a project's callback, or another project's
            raise StateInvalid("this sign-in was started somewhere else; start again")
        return login

    async def exchange(
        self, client: OidcClient, login: OidcLogin, *, code: str | None, error: str | None
    ) -> dict[str, Any]:
        """Trade the code (with the login's PKCE verifier) and verify the ID token (with its nonce)."""
        if error:  # an RFC 6749 error code is [a-z_]; anything else is not echoed back
            code_name = error if error.isascii() and error.replace("_", "").isalpha() else "error"
            raise SignInFailed(f"Authentik did not sign you in ({code_name[:40]})")
        if not code:
            raise SignInFailed("the identity provider sent no code")
        return await client.exchange(code, code_verifier=login.code_verifier, nonce=login.nonce)
