"""Redeeming what the hosted pages hand out: the one-time redirect code (for a session token and a
session JWT) and the session token (for a fresh JWT and the next session token).

OAuth 2.1 / RFC 9700 practice: a code redeemed with the public publishable key needs its PKCE S256
verifier; only the secret key (a server) may redeem a code started without a challenge; the exchange
repeats the redirect URL (RFC 6749 4.1.3); a code redeemed twice revokes the session its first use
started (RFC 6749 4.1.2); every refresh rotates the session token, and a replaced token presented again
revokes its session (RFC 9700 4.14.2). Tokens are stored as hashes only (G17).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.crypto import token_hash
from silver_auth.core.errors import ProblemError, Unauthorized
from silver_auth.db.session import transaction
from silver_auth.endusers import events, sessions
from silver_auth.endusers.models import EndUser, EndUserSession, RedirectCode, RetiredRefreshToken
from silver_auth.endusers.service import ProjectEnvironment
from silver_auth.endusers.sessions import dead_reason
from silver_auth.projects.models import Project
from silver_auth.projects.service import redirect_origin
from silver_auth.settings import Settings
from silver_auth.signing import service as signing
from silver_auth.signing.service import SessionClaims

SYSTEM = Actor("system")
REUSE_REASON = "refresh_token_reuse"
CODE_REUSE_REASON = "code_reuse"

# Why a code exchange was refused: `reason` (a stable slug) and `detail` of the 400 problem. A code of
# another project or environment is refused exactly like an unknown one, so nothing leaks across them.
GRANT_REFUSALS = {
    "code-verifier-required": "a publishable key exchange needs the PKCE code_verifier (S256); a server "
    "holding the secret key may exchange a code started without code_challenge",
    "unknown-code": "no such code for this project environment: send the code from the redirect, with a "
    "key of the project and environment whose hosted page issued it",
    "redirect-url-mismatch": "redirect_url is not the one the hosted page was opened with (compared "
    "character for character, RFC 6749 4.1.3)",
    "code-started-without-pkce": "the hosted page was opened without code_challenge, so only the secret "
    "key may exchange this code (the publishable key is public)",
    "pkce-mismatch": "code_verifier is missing or does not match the code_challenge the hosted page was "
    "opened with (S256, RFC 7636 4.6)",
    "code-already-used": "the code was already exchanged once, so it may have been copied: the session it "
    "started is revoked (RFC 6749 4.1.2); sign the user in again",
    "code-expired": "the code has expired (it lives SILVER_END_USER_CODE_SECONDS after the redirect); sign "
    "the user in again",
    "session-ended": "the session this code started has ended (signed out, revoked, banned or expired)",
}


class InvalidGrant(ProblemError):
    """RFC 6749's `invalid_grant`, as a problem (RFC 9457) with `error` and the failed check's `reason`."""

    status, slug, title = 400, "invalid-grant", "The code or session token is not valid"

    def __init__(self, reason: str) -> None:
        super().__init__(GRANT_REFUSALS[reason], error="invalid_grant", reason=reason)


def pkce_s256(verifier: str) -> str:
    """BASE64URL(SHA-256(verifier)) without padding (RFC 7636 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class EndUserSessionIssued:
    session: EndUserSession
    user: EndUser
    session_token: str
    jwt: str
    jwt_expires_at: datetime


async def _jwt_for(db: AsyncSession, settings: Settings, session: EndUserSession) -> tuple[str, datetime]:
    project = await db.get(Project, session.project_id)
    if project is None:
        raise InvalidGrant("session-ended")
    key = await signing.current_key(db, settings, project, actor=SYSTEM)
    claims = SessionClaims(
        session.project_id, session.environment, session.user_id, session.id, origin=session.origin
    )
    return signing.issue_jwt(settings, key, claims)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True, slots=True)
class CodeRedemption:
    """What a code exchange presents. `confidential`: the caller proved the secret key."""

    code: str
    redirect_url: str
    code_verifier: str | None
    confidential: bool = False
    client_id: str | None = None
    """The OpenID Provider client redeeming the code; None at `/v1/client/sessions/exchange`. A code
    redeems only where it was issued: a hosted-page code never at the provider's token endpoint, nor an
    authorization code at the exchange (RFC 6749 4.1.3: the code was issued to this client)."""


def _binding_refusal(row: RedirectCode, presented: CodeRedemption) -> str | None:
    """The first check of the code's bindings that the exchange fails, else None."""
    if not _same(presented.redirect_url, row.redirect_url):  # RFC 6749 4.1.3
        return "redirect-url-mismatch"
    if row.code_challenge is None:
        # Anyone who saw `?code=` holds the public key too.
        return None if presented.confidential else "code-started-without-pkce"
    verifier = presented.code_verifier
    if not (verifier and _same(pkce_s256(verifier), row.code_challenge)):  # RFC 7636 4.6
        return "pkce-mismatch"
    return None


@dataclass(frozen=True, slots=True)
class CodeRedeemed:
    code: RedirectCode
    session: EndUserSession
    user: EndUser
    session_token: str


async def exchange_code(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    scope: ProjectEnvironment,
    presented: CodeRedemption,
    *,
    ip: str | None = None,
) -> EndUserSessionIssued:
    """Code -> session token + session JWT (redeem_code, then the JWT)."""
    redeemed = await redeem_code(db, sessionmaker, scope, presented, ip=ip)
    token, expires = await _jwt_for(db, settings, redeemed.session)
    return EndUserSessionIssued(redeemed.session, redeemed.user, redeemed.session_token, token, expires)


async def redeem_code(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    scope: ProjectEnvironment,
    presented: CodeRedemption,
    *,
    ip: str | None = None,
) -> CodeRedeemed:
    """Code -> the session it started and that session's next session token. Every refusal is a 400
    `invalid_grant` naming the failed check; it writes nothing and leaves the code usable, except a
    second redemption that passes every binding (RFC 6749 4.1.2): that revokes the session the first
    one started, audited."""
    if not presented.confidential and not presented.code_verifier:
        # Checked before the code is looked at: the message says nothing about the code.
        raise InvalidGrant("code-verifier-required")
    row = await db.scalar(select(RedirectCode).where(RedirectCode.code_hash == token_hash(presented.code)))
    if (
        row is None
        or (row.project_id, row.environment) != (scope.project_id, scope.environment)
        or row.client_id != presented.client_id
    ):
        raise InvalidGrant("unknown-code")
    refusal = _binding_refusal(row, presented)
    if refusal is not None:
        raise InvalidGrant(refusal)
    # Past the bindings, a used code is presented by someone holding what its first redeemer held.
    if row.used_at is not None:
        raise await _code_reused(db, sessionmaker, row, ip)
    if clock.now() >= row.expires_at:
        raise InvalidGrant("code-expired")
    found = (
        await db.execute(
            select(EndUserSession, EndUser)
            .join(EndUser, EndUser.id == EndUserSession.user_id)
            .where(EndUserSession.id == row.session_id)
        )
    ).one_or_none()
    if found is None or dead_reason(*found):
        raise InvalidGrant("session-ended")
    session, user = found
    # Single use even under a race: only the request that flips used_at goes on; the other is a reuse.
    claimed = await db.execute(
        update(RedirectCode)
        .where(RedirectCode.id == row.id, RedirectCode.used_at.is_(None))
        .values(used_at=clock.now())
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise await _code_reused(db, sessionmaker, row, ip)
    if session.refresh_hash is not None:
        # An earlier code of this browser session started a refresh chain (another app, or the same
        # app again): this code starts a session of its own, so neither app's token ends the other's.
        session = sessions.single_sign_on_session(db, session)
        row.session_id = session.id  # a second redemption of this code revokes this session
    session_token = secrets.token_urlsafe(32)
    session.refresh_hash = token_hash(session_token)
    # The session started for this redirect URL (matched exactly at the hosted page and again here).
    session.origin = redirect_origin(row.redirect_url)
    # The refresh chain now belongs to whoever redeemed this code, and grants what the code granted.
    session.client_id, session.scope = row.client_id, row.scope
    return CodeRedeemed(row, session, user, session_token)


async def _code_reused(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], row: RedirectCode, ip: str | None
) -> InvalidGrant:
    """The error for a code redeemed a second time; the session of its first redemption is revoked."""
    session = await db.get(EndUserSession, row.session_id)
    if session is not None:
        await _revoke_for_reuse(db, sessionmaker, session, CODE_REUSE_REASON, ip)
    return InvalidGrant("code-already-used")


async def refresh(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    scope: ProjectEnvironment,
    session_token: str,
    *,
    ip: str | None = None,
) -> EndUserSessionIssued:
    """A fresh session JWT and the NEXT session token (rotate_session_token, then the JWT)."""
    session, user, next_token = await rotate_session_token(db, sessionmaker, scope, session_token, ip=ip)
    token, expires = await _jwt_for(db, settings, session)
    return EndUserSessionIssued(session, user, next_token, token, expires)


async def rotate_session_token(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    scope: ProjectEnvironment,
    session_token: str,
    *,
    ip: str | None = None,
    client_id: str | None = None,
) -> tuple[EndUserSession, EndUser, str]:
    """The session behind `session_token`, its user and the NEXT session token; the one presented is
    void from now on (rotation). With `client_id` (the OpenID Provider's refresh grant), only a token
    that client's code exchange started is good (RFC 6749 6), and a refused one rotates nothing.

    No grace period: a token is good for exactly one refresh, so a client that retries a refresh whose
    answer it lost, or refreshes twice at once, looks like a thief and loses the session. The safer
    choice: a grace would need the next token kept readable server-side, and tokens are hashes only.
    """
    presented = token_hash(session_token)
    row = (
        await db.execute(
            select(EndUserSession, EndUser)
            .join(EndUser, EndUser.id == EndUserSession.user_id)
            .where(EndUserSession.refresh_hash == presented)
        )
    ).one_or_none()
    if row is None:
        raise await _replayed(db, sessionmaker, scope, presented, ip)
    session, user = row
    if (session.project_id, session.environment) != (scope.project_id, scope.environment) or (
        client_id is not None and session.client_id != client_id
    ):
        raise Unauthorized("the session token is unknown")
    reason = dead_reason(session, user)
    if reason is not None:
        raise Unauthorized(f"the session has ended ({reason})", reason=reason)
    next_token, now = secrets.token_urlsafe(32), clock.now()
    # Guarded on the presented hash: of two concurrent refreshes with one token, one rotates; the
    # other then finds the token retired, which is a reuse like any other.
    rotated = await db.execute(
        update(EndUserSession)
        .where(EndUserSession.id == session.id, EndUserSession.refresh_hash == presented)
        .values(refresh_hash=token_hash(next_token), last_seen_at=now)
        .execution_options(synchronize_session=False)
    )
    if rotated.rowcount != 1:  # type: ignore[attr-defined]
        raise await _replayed(db, sessionmaker, scope, presented, ip)
    db.add(RetiredRefreshToken(token_hash=presented, session_id=session.id, retired_at=now))
    return session, user, next_token


async def _replayed(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    scope: ProjectEnvironment,
    presented: str,
    ip: str | None,
) -> Unauthorized:
    """The error for a token that is not the current one of a session. A retired one was copied
    (RFC 9700 4.14.2; G29 suspicious access): its session is revoked."""
    retired = await db.get(RetiredRefreshToken, presented)
    session = await db.get(EndUserSession, retired.session_id) if retired else None
    if session is None or (session.project_id, session.environment) != (scope.project_id, scope.environment):
        return Unauthorized("the session token is unknown")
    if not await _revoke_for_reuse(db, sessionmaker, session, REUSE_REASON, ip):
        return Unauthorized("the session has ended (revoked)", reason="revoked")
    return Unauthorized(
        "this session token was already used once, so it may have been copied: the session is revoked; "
        "sign the user in again",
        reason="refresh-token-reuse",
    )


async def _revoke_for_reuse(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    session: EndUserSession,
    reason: str,
    ip: str | None,
) -> bool:
    """Revoke a session whose code or token was presented again (G29 suspicious access), audited with
    `reason` (the `session.revoked` event's reason too), in a transaction of its own: committed although
    the request answers an error. The request's transaction is rolled back first (SQLite takes the write
    lock at BEGIN); nothing else is written. False if the session was revoked already (no second audit
    event, no second `session.revoked`)."""
    session_id, user_id, project_id = session.id, session.user_id, session.project_id
    org_id = await db.scalar(select(Project.org_id).where(Project.id == project_id))
    await db.rollback()
    async with transaction(sessionmaker) as own:
        revoked = await own.scalar(
            update(EndUserSession)
            .where(EndUserSession.id == session_id, EndUserSession.revoked_at.is_(None))
            .values(revoked_at=clock.now())
            .returning(EndUserSession)
        )
        if revoked is None:
            return False
        events.emit_sessions_revoked(own, [revoked], reason=reason)
        await record(
            own,
            AuditAction.END_USER_SESSION_REVOKED,
            actor=Actor(SYSTEM.id, ip),
            org_id=org_id,
            project_id=project_id,
            target=session_id,
            metadata={"user_id": user_id, "reason": reason},
        )
    return True
