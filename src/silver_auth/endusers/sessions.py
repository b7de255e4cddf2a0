"""End-user sessions: server-side rows behind the hosted pages' cookie, one-time redirect codes, and the
backend's views and verification (revocation shows at once). Redeeming codes and session tokens: grants.py.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock, urls
from silver_auth.core.crypto import sign, token_hash, verify_signature
from silver_auth.core.errors import InvalidInput, NotFound
from silver_auth.core.ids import looks_like, new_id
from silver_auth.endusers import events
from silver_auth.endusers.models import EndUser, EndUserSession, RedirectCode
from silver_auth.endusers.service import ProjectEnvironment, revoke_user_sessions
from silver_auth.projects.models import Project
from silver_auth.settings import Settings
from silver_auth.signing import service as signing
from silver_auth.signing.service import TokenRejected


def redirect_allowed(project: Project, redirect_url: str, accounts_url: str) -> bool:
    """Exact string equality with one of the project's redirect URLs: no normalisation at all, so
    `//evil`, other hosts, ports, paths, userinfo or a trailing slash never match (open redirects).

    One URL more is always allowed, exactly and only for this project: the console's Try sign-in callback
    of this very project on the accounts host (`urls.console_try_callback`). It is safe without the
    developer registering it: the host is the platform's own, not a customer's or anyone else's; the
    page answers only a signed-in member of the project's org, redirects nowhere, and redeems the code
    only with the PKCE verifier sealed in the cookie of the browser that started the try, with a
    matching `state`. So a code sent there by a forged link is useless to whoever forged it, and no other
    console path, nor another project's callback, is let through.
    """
    allowed = (*project.redirect_urls, urls.console_try_callback(accounts_url, project.id))
    return any(hmac.compare_digest(redirect_url.encode(), url.encode()) for url in allowed)


# --- the hosted pages' cookie -----------------------------------------------------------------


def cookie_value(settings: Settings, token: str) -> str:
    """`token.signature` under SESSION_SECRET (G14: rotating the secret signs every end-user out)."""
    return f"{token}.{sign(settings.secret('session_secret'), 'end_user_session:' + token)}"


def token_from_cookie(settings: Settings, cookie: str | None) -> str | None:
    token, dot, signature = (cookie or "").partition(".")
    if not dot or not token:
        return None
    valid = verify_signature(settings.secret("session_secret"), "end_user_session:" + token, signature)
    return token if valid else None


@dataclass(frozen=True, slots=True)
class EndUserSessionStarted:
    session: EndUserSession
    cookie: str


async def start_end_user_session(
    db: AsyncSession,
    settings: Settings,
    user: EndUser,
    *,
    mfa: bool,
    ip: str | None,
    user_agent: str | None,
    via: str,
) -> EndUserSessionStarted:
    """A signed-in session behind the hosted pages' cookie, with its `session.created` event; `via`
    names the sign-in (`hosted-page`, `authentik`)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    sign_in = _SignIn(
        user.id,
        user.project_id,
        user.environment,
        mfa=mfa,
        ip=ip,
        user_agent=(user_agent or "")[:300] or None,
        at=now,
        ends=now + timedelta(hours=settings.end_user_session_hours),
    )
    session = _new_session(db, sign_in, cookie_token=token, via=via)
    user.last_sign_in_at = now
    await db.flush()
    return EndUserSessionStarted(session, cookie_value(settings, token))


def single_sign_on_session(db: AsyncSession, signed_in: EndUserSession) -> EndUserSession:
    """A new session for the user of the browser session `signed_in`, from the same sign-in (its time,
    two-step and end), with a cookie token nobody holds: what a further app's code starts."""
    sign_in = _SignIn(
        signed_in.user_id,
        signed_in.project_id,
        signed_in.environment,
        mfa=signed_in.mfa,
        ip=signed_in.ip,
        user_agent=signed_in.user_agent,
        at=signed_in.created_at,
        ends=signed_in.expires_at,
    )
    return _new_session(db, sign_in, cookie_token=secrets.token_urlsafe(32), via=events.SINGLE_SIGN_ON)


@dataclass(frozen=True, slots=True)
class _SignIn:
    """What a session records of the sign-in behind it."""

    user_id: str
    project_id: str
    environment: str
    mfa: bool
    ip: str | None
    user_agent: str | None
    at: datetime
    ends: datetime


def _new_session(db: AsyncSession, sign_in: _SignIn, *, cookie_token: str, via: str) -> EndUserSession:
    """A session row for `sign_in`, added with its `session.created` event."""
    session = EndUserSession(
        id=new_id("sess"),
        user_id=sign_in.user_id,
        project_id=sign_in.project_id,
        environment=sign_in.environment,
        cookie_hash=token_hash(cookie_token),
        refresh_hash=None,
        mfa=sign_in.mfa,
        ip=sign_in.ip,
        user_agent=sign_in.user_agent,
        created_at=sign_in.at,
        last_seen_at=clock.now(),
        expires_at=sign_in.ends,
        revoked_at=None,
    )
    db.add(session)
    events.emit_session_created(db, session, via=via)
    return session


def dead_reason(session: EndUserSession, user: EndUser) -> str | None:
    if session.revoked_at is not None:
        return "revoked"
    if user.banned_at is not None:
        return "banned"
    if clock.now() >= session.expires_at:
        return "session-expired"
    return None


async def session_from_cookie(
    db: AsyncSession, settings: Settings, scope: ProjectEnvironment, cookie: str | None
) -> tuple[EndUserSession, EndUser] | None:
    """The live session of this project environment behind the hosted pages' cookie, else None."""
    token = token_from_cookie(settings, cookie)
    if token is None:
        return None
    row = (
        await db.execute(
            select(EndUserSession, EndUser)
            .join(EndUser, EndUser.id == EndUserSession.user_id)
            .where(EndUserSession.cookie_hash == token_hash(token))
        )
    ).one_or_none()
    if row is None:
        return None
    session, user = row
    if (session.project_id, session.environment) != (scope.project_id, scope.environment):
        return None
    return None if dead_reason(session, user) else (session, user)


async def end_session(db: AsyncSession, session: EndUserSession) -> None:
    """Sign-out on the hosted pages."""
    if session.revoked_at is None:
        session.revoked_at = clock.now()
        events.emit_sessions_revoked(db, [session], reason=events.SIGNED_OUT)


async def sign_out_with_token(db: AsyncSession, scope: ProjectEnvironment, session_token: str) -> None:
    """Sign-out by the client holding the session: ends the live session of this project environment
    whose CURRENT session token this is (the hosted pages' cookie session itself, or the session a
    further app's code started from it: single_sign_on_session).

    Anything else changes nothing and says nothing (RFC 7009 2.2: the caller learns no token's fate):
    an unknown token, another project's or environment's, a session already over, and a retired token.
    A retired one is no replay to act on here: sign-out acts only on what the session's holder holds
    now, and the reuse revocation (audited, a suspicious-access signal) is the refresh's to raise."""
    live = await live_by_session_token(db, scope, session_token)
    if live is not None:
        await end_session(db, live[0])


async def live_by_session_token(
    db: AsyncSession, scope: ProjectEnvironment, session_token: str
) -> tuple[EndUserSession, EndUser] | None:
    """The live session (and its user) of this project environment whose CURRENT session token this
    is, else None: a retired token finds nothing here (the refresh tells a replay apart)."""
    row = (
        await db.execute(
            select(EndUserSession, EndUser)
            .join(EndUser, EndUser.id == EndUserSession.user_id)
            .where(EndUserSession.refresh_hash == token_hash(session_token))
        )
    ).one_or_none()
    if row is None:
        return None
    session, user = row
    if (session.project_id, session.environment) != (scope.project_id, scope.environment):
        return None
    return None if dead_reason(session, user) else (session, user)


# --- one-time codes ---------------------------------------------------------------------------


async def issue_code(
    db: AsyncSession,
    settings: Settings,
    session: EndUserSession,
    redirect_url: str,
    code_challenge: str | None = None,
    *,
    client_id: str | None = None,
    nonce: str | None = None,
    scope: str | None = None,
) -> str:
    """A single-use code for the redirect, bound to project, environment, redirect URL and the PKCE S256
    challenge the page was opened with (grants.exchange_code: without one, only a secret key redeems it);
    hashed at rest. `client_id`, `nonce` and `scope`: an OpenID Provider authorization's, for its token
    endpoint only."""
    code = secrets.token_urlsafe(32)
    db.add(
        RedirectCode(
            id=new_id("code"),
            code_hash=token_hash(code),
            session_id=session.id,
            project_id=session.project_id,
            environment=session.environment,
            redirect_url=redirect_url,
            code_challenge=code_challenge,
            client_id=client_id,
            nonce=nonce,
            scope=scope,
            expires_at=clock.now() + timedelta(seconds=settings.end_user_code_seconds),
            used_at=None,
        )
    )
    return code


# --- backend views ----------------------------------------------------------------------------


def session_status(session: EndUserSession, user: EndUser) -> str:
    return dead_reason(session, user) or "active"


async def get_session(
    db: AsyncSession, scope: ProjectEnvironment, session_id: str
) -> tuple[EndUserSession, EndUser]:
    session = await db.get(EndUserSession, session_id) if looks_like("sess", session_id) else None
    if session is None or (session.project_id, session.environment) != (scope.project_id, scope.environment):
        raise NotFound("no such session")
    user = await db.get(EndUser, session.user_id)
    if user is None:
        raise NotFound("no such session")
    return session, user


async def list_sessions(db: AsyncSession, user: EndUser) -> list[EndUserSession]:
    rows = await db.scalars(
        select(EndUserSession)
        .where(EndUserSession.user_id == user.id)
        .order_by(EndUserSession.created_at.desc())
        .limit(200)
    )
    return list(rows.all())


async def revoke_one(db: AsyncSession, session: EndUserSession, user: EndUser, *, actor: Actor) -> None:
    if session.revoked_at is not None:
        return
    session.revoked_at = clock.now()
    events.emit_sessions_revoked(db, [session], reason=events.REVOKED)
    await record(
        db,
        AuditAction.END_USER_SESSION_REVOKED,
        actor=actor,
        org_id=await db.scalar(select(Project.org_id).where(Project.id == user.project_id)),
        project_id=user.project_id,
        target=session.id,
        metadata={"user_id": user.id},
    )


async def revoke_all(db: AsyncSession, user: EndUser, *, actor: Actor) -> int:
    count = await revoke_user_sessions(db, user.id, reason=events.REVOKED)
    await record(
        db,
        AuditAction.END_USER_SESSIONS_REVOKED,
        actor=actor,
        org_id=await db.scalar(select(Project.org_id).where(Project.id == user.project_id)),
        project_id=user.project_id,
        target=user.id,
        metadata={"count": count},
    )
    return count


@dataclass(frozen=True, slots=True)
class Verdict:
    valid: bool
    reason: str | None
    claims: dict[str, Any] | None
    session: EndUserSession | None
    user: EndUser | None


async def verify_token(
    db: AsyncSession, settings: Settings, scope: ProjectEnvironment, token: str
) -> Verdict:
    """The JWT check and a live check of its session row (so revocation and bans show at once)."""
    if not isinstance(token, str) or not token:
        raise InvalidInput("token is required")
    try:
        claims = await signing.verify_jwt(db, settings, scope.project_id, token)
    except TokenRejected as rejected:
        return Verdict(False, rejected.reason, None, None, None)
    if claims.get("env") != scope.environment:
        return Verdict(False, "wrong-environment", None, None, None)
    sid = claims.get("sid")
    session = await db.get(EndUserSession, sid) if isinstance(sid, str) and looks_like("sess", sid) else None
    user = await db.get(EndUser, session.user_id) if session else None
    if (
        session is None
        or user is None
        or session.project_id != scope.project_id
        or user.id != claims.get("sub")
    ):
        return Verdict(False, "unknown-session", claims, None, None)
    reason = dead_reason(session, user)
    return Verdict(reason is None, reason, claims, session, user)
