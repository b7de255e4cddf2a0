"""The provider's logic: clients and their authentication, the authorize decision, the token grants,
userinfo, introspection (RFC 7662), revocation (RFC 7009) and RP-initiated logout.

Clients: each project environment has two, both without registration. The project id (`prj_…`) is the
confidential client: it authenticates with the environment's secret key (`client_secret_basic` or
`client_secret_post`). A publishable key (`pk_…`) of the environment is a public client: no secret
(`none`), so PKCE S256 is required.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.core import urls
from silver_auth.core.errors import Unauthorized
from silver_auth.core.ids import looks_like
from silver_auth.endusers import grants, sessions
from silver_auth.endusers.grants import InvalidGrant
from silver_auth.endusers.models import EndUser, EndUserSession
from silver_auth.endusers.service import ProjectEnvironment
from silver_auth.keys.verifier import KeyVerifier
from silver_auth.oidc_provider.requests import AuthorizationRequest, granted_scope
from silver_auth.oidc_provider.tokens import Grant, issuer, sign_tokens, user_claims, verify_access_token
from silver_auth.projects.models import Project
from silver_auth.settings import Settings
from silver_auth.signing.service import TokenRejected


class OAuthError(Exception):
    """An error of a token, userinfo, introspection or revocation request: `error` as RFC 6749 5.2,
    RFC 6750 3.1 and RFC 7009 2.2.1 name it."""

    def __init__(
        self, error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
    ):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    public: bool
    """A publishable-key client: no secret, so its codes need PKCE."""
    allowed_origins: frozenset[str] = frozenset()
    """Browser origins that may read its answers (the project's allowed origins)."""


async def known_client(keys: KeyVerifier, where: ProjectEnvironment, client_id: str) -> Client | None:
    """The client `client_id` names at this issuer, else None."""
    if hmac.compare_digest(client_id.encode(), where.project_id.encode()):
        return Client(client_id, public=False)
    principal = await keys.verify(client_id, "publishable") if client_id.startswith("pk_") else None
    if principal is None or (principal.project_id, principal.environment) != (
        where.project_id,
        where.environment,
    ):
        return None
    return Client(client_id, public=True, allowed_origins=principal.allowed_origins)


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What a request presented to authenticate its client; `basic`: in the Authorization header."""

    client_id: str | None
    client_secret: str | None
    basic: bool = False


def _invalid_client(credentials: ClientCredentials, description: str) -> OAuthError:
    # RFC 6749 5.2: a client that tried the Authorization header is answered with 401 and a challenge.
    headers = {"WWW-Authenticate": 'Basic realm="seqn"'} if credentials.basic else {}
    return OAuthError("invalid_client", description, 401, headers)


async def authenticate_client(
    keys: KeyVerifier, where: ProjectEnvironment, credentials: ClientCredentials
) -> Client:
    """The client of a token-endpoint request: the secret key proves a confidential one; a public one
    presents only its id."""
    if not credentials.client_id:
        raise _invalid_client(credentials, "client_id is required (in the form, or with HTTP Basic)")
    client = await known_client(keys, where, credentials.client_id)
    if client is None:
        raise _invalid_client(credentials, "no such client at this issuer")
    if credentials.client_secret is None:
        if not client.public:
            raise _invalid_client(credentials, "this client authenticates with the project's secret key")
        return client
    principal = await keys.verify(credentials.client_secret, "secret")
    if principal is None or (principal.project_id, principal.environment) != (
        where.project_id,
        where.environment,
    ):
        raise _invalid_client(credentials, "the client secret is not a valid secret key of this environment")
    return Client(client.client_id, public=False, allowed_origins=client.allowed_origins)


def fresh_enough(session: EndUserSession, request: AuthorizationRequest) -> bool:
    """Whether the sign-in behind `session` satisfies the request's `prompt=login` or `max_age`."""
    return session.created_at.timestamp() >= request.signed_in_after


async def code_redirect(
    db: AsyncSession, settings: Settings, session: EndUserSession, request: AuthorizationRequest
) -> str:
    """The authorization response (RFC 6749 4.1.2, with `iss` as RFC 9207 adds): a new code for
    `session`, bound to the request's client, redirect URI, challenge, nonce and scope."""
    code = await sessions.issue_code(
        db,
        settings,
        session,
        request.redirect_uri,
        request.code_challenge or None,
        client_id=request.client_id,
        nonce=request.nonce or None,
        scope=request.scope,
    )
    return urls.with_query(
        request.redirect_uri,
        code=code,
        state=request.state,
        iss=issuer(settings, session.project_id, session.environment),
    )


@dataclass(frozen=True, slots=True)
class TokenAnswer:
    """RFC 6749 5.1, with the ID token of OpenID Connect Core 3.1.3.3."""

    access_token: str
    expires_in: int
    refresh_token: str
    scope: str
    id_token: str | None

    def body(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }
        if self.id_token is not None:
            answer["id_token"] = self.id_token
        return answer


@dataclass(frozen=True, slots=True)
class TokenRequestContext:
    """One token-endpoint request: where, for which authenticated client, from which address."""

    db: AsyncSession
    sessionmaker: async_sessionmaker[AsyncSession]
    settings: Settings
    project: Project
    where: ProjectEnvironment
    client: Client
    ip: str | None


async def code_grant(context: TokenRequestContext, form: dict[str, str]) -> TokenAnswer:
    """`grant_type=authorization_code` (RFC 6749 4.1.3, RFC 7636 4.6)."""
    db, client = context.db, context.client
    presented = grants.CodeRedemption(
        code=form.get("code", ""),
        redirect_url=form.get("redirect_uri", ""),
        code_verifier=form.get("code_verifier") or None,
        confidential=not client.public,
        client_id=client.client_id,
    )
    if not presented.code:
        raise OAuthError("invalid_request", "code is required")
    try:
        redeemed = await grants.redeem_code(db, context.sessionmaker, context.where, presented, ip=context.ip)
    except InvalidGrant as refused:
        raise OAuthError("invalid_grant", refused.detail) from None
    scope = redeemed.code.scope or ""
    grant = Grant(
        context.project, redeemed.session, redeemed.user, client.client_id, scope, redeemed.code.nonce
    )
    signed = await sign_tokens(db, context.settings, grant)
    return TokenAnswer(signed.access_token, signed.expires_in, redeemed.session_token, scope, signed.id_token)


async def refresh_grant(context: TokenRequestContext, form: dict[str, str]) -> TokenAnswer:
    """`grant_type=refresh_token` (RFC 6749 6): the presented token is spent and the next one answered;
    presenting a spent one again revokes the session (RFC 9700 4.14.2)."""
    presented = form.get("refresh_token", "")
    if not presented:
        raise OAuthError("invalid_request", "refresh_token is required")
    try:
        session, user, next_token = await grants.rotate_session_token(
            context.db,
            context.sessionmaker,
            context.where,
            presented,
            ip=context.ip,
            client_id=context.client.client_id,
        )
    except Unauthorized as refused:
        raise OAuthError("invalid_grant", refused.detail) from None
    scope = session.scope or ""
    asked = form.get("scope")
    if asked is not None:
        # RFC 6749 6: a refresh may narrow the grant, never widen it.
        if not set(asked.split()) <= set(scope.split()):
            raise OAuthError("invalid_scope", "a refresh cannot ask for scopes the grant does not have")
        scope = granted_scope(asked)
    grant = Grant(context.project, session, user, context.client.client_id, scope)
    signed = await sign_tokens(context.db, context.settings, grant)
    return TokenAnswer(signed.access_token, signed.expires_in, next_token, scope, signed.id_token)


async def _live(
    db: AsyncSession, where: ProjectEnvironment, session_id: Any
) -> tuple[EndUserSession, EndUser] | None:
    session = (
        await db.get(EndUserSession, session_id)
        if isinstance(session_id, str) and looks_like("sess", session_id)
        else None
    )
    user = await db.get(EndUser, session.user_id) if session else None
    if (
        session is None
        or user is None
        or (session.project_id, session.environment) != (where.project_id, where.environment)
    ):
        return None
    return None if sessions.dead_reason(session, user) else (session, user)


async def _access_token_session(
    db: AsyncSession, settings: Settings, where: ProjectEnvironment, token: str
) -> tuple[dict[str, Any], EndUserSession, EndUser] | None:
    """The claims of a valid access token whose session is live, with that session; else None."""
    try:
        claims = await verify_access_token(db, settings, where.project_id, where.environment, token)
    except TokenRejected:
        return None
    live = await _live(db, where, claims.get("sid"))
    if live is None or live[1].id != claims.get("sub"):
        return None
    return claims, *live


def _invalid_token(description: str) -> OAuthError:
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    return OAuthError("invalid_token", description, 401, {"WWW-Authenticate": challenge})


async def userinfo(
    db: AsyncSession, settings: Settings, where: ProjectEnvironment, token: str | None
) -> dict[str, Any]:
    """The UserInfo response (OpenID Connect Core 5.3.2) for a valid access token of a live session."""
    if not token:
        raise OAuthError(
            "invalid_request", "an access token is required", 401, {"WWW-Authenticate": "Bearer"}
        )
    found = await _access_token_session(db, settings, where, token)
    if found is None:
        raise _invalid_token("the access token is not valid, or its session has ended")
    claims, _session, user = found
    scope = str(claims.get("scope", ""))
    if "openid" not in scope.split():
        challenge = 'Bearer error="insufficient_scope", scope="openid"'
        raise OAuthError(
            "insufficient_scope",
            "the access token was not granted openid",
            403,
            {"WWW-Authenticate": challenge},
        )
    return {"sub": user.id, **user_claims(user, scope)}


async def introspect(
    db: AsyncSession, settings: Settings, where: ProjectEnvironment, token: str, hint: str | None
) -> dict[str, Any]:
    """RFC 7662 2.2: `active` and, for an active token, what it is. A token of another project or
    environment, spent, expired or of an ended session is inactive, and nothing more is said."""
    if hint != "refresh_token":
        found = await _access_token_session(db, settings, where, token)
        if found is not None:
            claims = found[0]
            kept = (
                "scope",
                "client_id",
                "sub",
                "exp",
                "iat",
                "nbf",
                "iss",
                "aud",
                "jti",
                "sid",
                "env",
                "auth_time",
            )
            return {
                "active": True,
                "token_type": "Bearer",
                **{name: claims[name] for name in kept if name in claims},
            }
    live = await sessions.live_by_session_token(db, where, token)
    if live is None:
        return {"active": False}
    session, user = live
    return {
        "active": True,
        "token_type": "refresh_token",
        "client_id": session.client_id,
        "scope": session.scope or "",
        "sub": user.id,
        "sid": session.id,
        "env": session.environment,
        "iss": issuer(settings, session.project_id, session.environment),
        "exp": int(session.expires_at.timestamp()),
        "iat": int(session.created_at.timestamp()),
    }


async def revoke(
    db: AsyncSession,
    settings: Settings,
    where: ProjectEnvironment,
    client: Client,
    token: str,
    hint: str | None,
) -> None:
    """RFC 7009 2.1: either token ends its session (so every token of it); an unknown, spent or foreign
    token, or one another public client was issued, changes nothing and is answered the same."""
    found: tuple[EndUserSession, EndUser] | None = None
    if hint != "refresh_token":
        access = await _access_token_session(db, settings, where, token)
        found = (access[1], access[2]) if access else None
    if found is None:
        found = await sessions.live_by_session_token(db, where, token)
    if found is None:
        return
    session = found[0]
    if client.public and session.client_id != client.client_id:
        return
    await sessions.end_session(db, session)


async def end_session(
    db: AsyncSession,
    settings: Settings,
    where: ProjectEnvironment,
    hint: dict[str, Any],
    browser_session: EndUserSession | None,
) -> None:
    """RP-initiated logout with a valid `id_token_hint`: its session ends, and so does the browser's
    hosted-pages session when it is the same user's."""
    live = await _live(db, where, hint.get("sid"))
    if live is not None and live[1].id == hint.get("sub"):
        await sessions.end_session(db, live[0])
    if browser_session is not None and browser_session.user_id == hint.get("sub"):
        await sessions.end_session(db, browser_session)
