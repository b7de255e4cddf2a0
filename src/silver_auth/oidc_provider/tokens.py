"""The provider's tokens, signed by the project's signing keys: ID tokens (OpenID Connect Core 2) and
access tokens as JWTs (RFC 9068, `typ: at+jwt`). Neither is ever accepted as the other, nor as a
session JWT: the header's `typ`, the issuer and the audience all differ."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from joserfc import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor
from silver_auth.core import clock, urls
from silver_auth.endusers.models import EndUser, EndUserSession
from silver_auth.projects.models import Project
from silver_auth.settings import Settings
from silver_auth.signing import service as signing
from silver_auth.signing.service import BACKDATE, TokenRejected

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, RFC 9068 2.1)
SYSTEM = Actor("system")


def issuer(settings: Settings, project_id: str, environment: str) -> str:
    return urls.hosted_pages(settings.auth_url, project_id, environment)


def authentication_methods(settings: Settings, session: EndUserSession) -> list[str]:
    """RFC 8176 `amr` values of the sign-in behind `session`, as far as they are known: Authentik tells
    whether a second factor was used, not which."""
    if settings.identity == "authentik":
        return ["mfa"] if session.mfa else []
    return ["pwd", "otp", "mfa"] if session.mfa else ["pwd"]


@dataclass(frozen=True, slots=True)
class Grant:
    """Who the tokens are for: the session, its user, the client and what it was granted."""

    project: Project
    session: EndUserSession
    user: EndUser
    client_id: str
    scope: str
    nonce: str | None = None


@dataclass(frozen=True, slots=True)
class SignedTokens:
    access_token: str
    expires_in: int
    id_token: str | None


async def sign_tokens(db: AsyncSession, settings: Settings, grant: Grant) -> SignedTokens:
    """An access token, and an ID token when `openid` was granted, both lasting ACCESS_TOKEN_SECONDS."""
    key = await signing.current_key(db, settings, grant.project, actor=SYSTEM)
    session, now = grant.session, clock.now()
    lifetime = settings.access_token_seconds
    issued = int((now - BACKDATE).timestamp())
    expires = int((now + timedelta(seconds=lifetime)).timestamp())
    common = {
        "iss": issuer(settings, grant.project.id, session.environment),
        "sub": grant.user.id,
        "sid": session.id,
        "env": session.environment,
        "iat": issued,
        "exp": expires,
        "auth_time": int(session.created_at.timestamp()),
    }
    access = {
        **common,
        "aud": grant.project.id,
        "client_id": grant.client_id,
        "scope": grant.scope,
        "nbf": issued,
        "jti": secrets.token_urlsafe(16),
    }
    access_token = signing.sign_token(settings, key, access, typ=ACCESS_TOKEN_TYPE)
    id_token = None
    if "openid" in grant.scope.split():
        claims: dict[str, Any] = {**common, "aud": grant.client_id, "azp": grant.client_id}
        methods = authentication_methods(settings, session)
        if methods:
            claims["amr"] = methods
        if grant.nonce:
            claims["nonce"] = grant.nonce
        claims |= user_claims(grant.user, grant.scope)
        id_token = signing.sign_token(settings, key, claims)
    return SignedTokens(access_token, expires - int(now.timestamp()), id_token)


def user_claims(user: EndUser, scope: str) -> dict[str, Any]:
    """The standard claims the granted scopes release (OpenID Connect Core 5.4), beyond `sub`."""
    scopes, claims = scope.split(), dict[str, Any]()
    if "email" in scopes:
        # No mail is sent by this service, so no address is ever proven to be the user's.
        claims |= {"email": user.email, "email_verified": False}
    if "profile" in scopes:
        claims["updated_at"] = int(user.updated_at.timestamp())
    return claims


async def verify_access_token(
    db: AsyncSession, settings: Settings, project_id: str, environment: str, token: str
) -> dict[str, Any]:
    """The claims of a valid access token of this issuer (signature, `typ`, issuer, audience, times);
    TokenRejected(reason) otherwise. Whether its session is still live is the caller's check."""
    header, claims = await signing.verify_signed(db, project_id, token)
    if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYPE, "application/" + ACCESS_TOKEN_TYPE):
        raise TokenRejected("not-an-access-token")  # RFC 9068 4: an ID token is no access token
    options: dict[str, jwt.ClaimsOption] = {
        name: {"essential": True} for name in ("sub", "sid", "client_id", "iat", "exp", "env")
    }
    options["iss"] = {"essential": True, "value": issuer(settings, project_id, environment)}
    options["aud"] = {"essential": True, "value": project_id}
    options["env"] = {"essential": True, "value": environment}
    signing.validate_claims(claims, options)
    return claims


async def id_token_hint(
    db: AsyncSession, settings: Settings, project_id: str, environment: str, token: str
) -> dict[str, Any] | None:
    """The claims of an ID token this issuer signed, expired or not (OpenID Connect RP-Initiated
    Logout 1.0 2: a hint may be presented after expiry); None if it is not one."""
    try:
        header, claims = await signing.verify_signed(db, project_id, token)
    except TokenRejected:
        return None
    if header.get("typ", "JWT") != "JWT" or claims.get("iss") != issuer(settings, project_id, environment):
        return None
    return claims if isinstance(claims.get("sid"), str) and isinstance(claims.get("sub"), str) else None
