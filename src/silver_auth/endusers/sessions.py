"""End-user sessions: server-side rows behind the hosted pages' cookie, one-time redirect codes, the
exchange for a session token and JWT, refresh, and the backend's verification (revocation shows at once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.crypto import sign, token_hash, verify_signature
from silver_auth.core.errors import InvalidInput, NotFound, ProblemError, Unauthorized
from silver_auth.core.ids import looks_like, new_id
from silver_auth.endusers.models import EndUser, EndUserSession, RedirectCode
from silver_auth.endusers.service import Scope, revoke_user_sessions
from silver_auth.projects.models import Project
from silver_auth.settings import Settings
from silver_auth.signing import service as signing
from silver_auth.signing.service import SessionClaims, TokenRejected

SYSTEM = Actor("system")


class InvalidGrant(ProblemError):
    status, slug, title = 400, "invalid-grant", "The code or session token is not valid"


def redirect_allowed(project: Project, redirect_url: str) -> bool:
    """Exact string equality with one of the project's redirect URLs: no normalisation at all, so
    `//evil`, other hosts, ports, paths, userinfo or a trailing slash never match (open redirects)."""
    return any(
        hmac.compare_digest(redirect_url.encode(), allowed.encode()) for allowed in project.redirect_urls
    )


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
class Started:
    session: EndUserSession
    cookie: str


async def start_session(
    db: AsyncSession, settings: Settings, user: EndUser, *, mfa: bool, ip: str | None, user_agent: str | None
) -> Started:
    token = secrets.token_urlsafe(32)
    now = clock.now()
    session = EndUserSession(
        id=new_id("sess"),
        user_id=user.id,
        project_id=user.project_id,
        environment=user.environment,
        cookie_hash=token_hash(token),
        refresh_hash=None,
        mfa=mfa,
        ip=ip,
        user_agent=(user_agent or "")[:300] or None,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.end_user_session_hours),
        revoked_at=None,
    )
    user.last_sign_in_at = now
    db.add(session)
    await db.flush()
    return Started(session, cookie_value(settings, token))


def _dead_reason(session: EndUserSession, user: EndUser) -> str | None:
    if session.revoked_at is not None:
        return "revoked"
    if user.banned_at is not None:
        return "banned"
    if clock.now() >= session.expires_at:
        return "session-expired"
    return None


async def session_from_cookie(
    db: AsyncSession, settings: Settings, scope: Scope, cookie: str | None
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
    return None if _dead_reason(session, user) else (session, user)


async def end_session(db: AsyncSession, session: EndUserSession) -> None:
    if session.revoked_at is None:
        session.revoked_at = clock.now()


# --- one-time codes ---------------------------------------------------------------------------


async def issue_code(
    db: AsyncSession,
    settings: Settings,
    session: EndUserSession,
    redirect_url: str,
    code_challenge: str | None,
) -> str:
    """A single-use code for the redirect, bound to project, environment and redirect URL; hashed at rest."""
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
            expires_at=clock.now() + timedelta(seconds=settings.end_user_code_seconds),
            used_at=None,
        )
    )
    return code


def pkce_s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class IssuedSession:
    session: EndUserSession
    user: EndUser
    session_token: str | None
    jwt: str
    jwt_expires_at: datetime


async def _jwt_for(db: AsyncSession, settings: Settings, session: EndUserSession) -> tuple[str, datetime]:
    project = await db.get(Project, session.project_id)
    if project is None:
        raise InvalidGrant("the project of this session no longer exists")
    key = await signing.current_key(db, settings, project, actor=SYSTEM)
    claims = SessionClaims(session.project_id, session.environment, session.user_id, session.id)
    return signing.issue_jwt(settings, key, claims)


async def exchange_code(
    db: AsyncSession,
    settings: Settings,
    scope: Scope,
    code: str,
    *,
    redirect_url: str | None,
    code_verifier: str | None,
) -> IssuedSession:
    """Code -> session token (refresh) + session JWT. Every refusal is the same problem and writes nothing."""
    row = await db.scalar(select(RedirectCode).where(RedirectCode.code_hash == token_hash(code)))
    refused = InvalidGrant("the code is unknown, expired, already used, or belongs elsewhere")
    if row is None or row.used_at is not None or clock.now() >= row.expires_at:
        raise refused
    if (row.project_id, row.environment) != (scope.project_id, scope.environment):
        raise refused
    if redirect_url is not None and redirect_url != row.redirect_url:
        raise refused
    if row.code_challenge is not None and not (
        code_verifier and hmac.compare_digest(pkce_s256(code_verifier), row.code_challenge)
    ):
        raise refused
    session = await db.get(EndUserSession, row.session_id)
    user = await db.get(EndUser, session.user_id) if session else None
    if session is None or user is None or _dead_reason(session, user):
        raise refused
    # Single use even under a race: only the request that flips used_at goes on.
    claimed = await db.execute(
        update(RedirectCode)
        .where(RedirectCode.id == row.id, RedirectCode.used_at.is_(None))
        .values(used_at=clock.now())
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise refused
    session_token = secrets.token_urlsafe(32)
    session.refresh_hash = token_hash(session_token)
    token, expires = await _jwt_for(db, settings, session)
    return IssuedSession(session, user, session_token, token, expires)


async def refresh(db: AsyncSession, settings: Settings, scope: Scope, session_token: str) -> IssuedSession:
    row = (
        await db.execute(
            select(EndUserSession, EndUser)
            .join(EndUser, EndUser.id == EndUserSession.user_id)
            .where(EndUserSession.refresh_hash == token_hash(session_token))
        )
    ).one_or_none()
    if row is None or (row[0].project_id, row[0].environment) != (scope.project_id, scope.environment):
        raise Unauthorized("the session token is unknown")
    session, user = row
    reason = _dead_reason(session, user)
    if reason is not None:
        raise Unauthorized(f"the session has ended ({reason})", reason=reason)
    now = clock.now()
    if now - session.last_seen_at >= timedelta(seconds=60):
        session.last_seen_at = now
    token, expires = await _jwt_for(db, settings, session)
    return IssuedSession(session, user, None, token, expires)


# --- backend views ----------------------------------------------------------------------------


def session_status(session: EndUserSession, user: EndUser) -> str:
    return _dead_reason(session, user) or "active"


async def get_session(db: AsyncSession, scope: Scope, session_id: str) -> tuple[EndUserSession, EndUser]:
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
    count = await revoke_user_sessions(db, user.id)
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


async def verify_token(db: AsyncSession, settings: Settings, scope: Scope, token: str) -> Verdict:
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
    reason = _dead_reason(session, user)
    return Verdict(reason is None, reason, claims, session, user)
