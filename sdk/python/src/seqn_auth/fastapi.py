"""FastAPI and Starlette: a dependency that answers the verified session, or 401.

    from fastapi import Depends, FastAPI
    from seqn_auth import AsyncTokenVerifier, SessionClaims
    from seqn_auth.fastapi import SessionAuth

    verifier = AsyncTokenVerifier(os.environ["SEQN_AUTH_URL"], os.environ["SEQN_PROJECT_ID"], "live")
    require_session = SessionAuth(verifier)  # Authorization: Bearer <jwt>, else the seqn_session cookie
    app = FastAPI()

    @app.get("/me")
    async def me(session: SessionClaims = Depends(require_session)) -> dict[str, str]:
        return {"user_id": session.user_id}

In plain Starlette, `claims = await require_session(request)` in an endpoint does the same. A refused
or missing token is a 401 with a `WWW-Authenticate: Bearer` challenge (the reason in its
`error_description`); a JWKS that cannot be fetched is a 503. The claims are also left in
`request.state.seqn_session`. `token_getter` replaces where the token is read from (an app that
keeps its session server-side, say); `access_tokens=True` takes OAuth access tokens instead.
"""

# No `from __future__ import annotations`: FastAPI reads __call__'s parameter annotations at runtime.

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from seqn_auth._request import DEFAULT_COOKIE, bearer, challenge
from seqn_auth.errors import JWKSUnavailableError, TokenVerificationError
from seqn_auth.verify import AccessTokenClaims, AsyncTokenVerifier, SessionClaims

TokenGetter = Callable[[HTTPConnection], Awaitable[str | None]]


class SessionAuth:
    """The dependency: `Depends(SessionAuth(verifier))` answers `SessionClaims`."""

    def __init__(
        self,
        verifier: AsyncTokenVerifier,
        *,
        cookie: str | None = DEFAULT_COOKIE,
        token_getter: TokenGetter | None = None,
    ) -> None:
        self.verifier, self.cookie, self.token_getter = verifier, cookie, token_getter

    async def token(self, request: HTTPConnection) -> str | None:
        if self.token_getter is not None:
            return await self.token_getter(request)
        found = bearer(request.headers.get("authorization"))
        if found is None and self.cookie is not None:
            found = request.cookies.get(self.cookie) or None
        return found

    async def __call__(self, request: HTTPConnection) -> SessionClaims:
        token = await self.token(request)
        try:
            if token is None:
                raise TokenVerificationError("missing-token")
            claims = await self.verifier.verify_session(token)
        except TokenVerificationError as error:
            raise HTTPException(401, "Not signed in", {"WWW-Authenticate": challenge(error.reason)}) from None
        except JWKSUnavailableError:
            raise HTTPException(503, "Sign-in cannot be checked right now") from None
        request.state.seqn_session = claims
        return claims


class AccessTokenAuth:
    """`Depends(AccessTokenAuth(verifier, scopes=("profile",)))` answers `AccessTokenClaims` of an
    OAuth access token in `Authorization: Bearer`; 401 when missing or refused, 403 when a scope is
    missing (RFC 6750 3.1 `insufficient_scope`)."""

    def __init__(self, verifier: AsyncTokenVerifier, *, scopes: tuple[str, ...] = ()) -> None:
        self.verifier, self.scopes = verifier, scopes

    async def __call__(self, request: HTTPConnection) -> AccessTokenClaims:
        token = bearer(request.headers.get("authorization"))
        try:
            if token is None:
                raise TokenVerificationError("missing-token")
            claims = await self.verifier.verify_access_token(token)
        except TokenVerificationError as error:
            headers = {"WWW-Authenticate": challenge(error.reason)}
            raise HTTPException(401, "Not authorized", headers) from None
        except JWKSUnavailableError:
            raise HTTPException(503, "The token cannot be checked right now") from None
        missing = [scope for scope in self.scopes if scope not in claims.scopes]
        if missing:
            header = f'Bearer realm="seqn", error="insufficient_scope", scope="{" ".join(self.scopes)}"'
            raise HTTPException(403, "Insufficient scope", {"WWW-Authenticate": header})
        request.state.seqn_access_token = claims
        return claims
