"""Table rows to answers (never a row itself)."""

from __future__ import annotations

from silver_auth.endusers.models import EndUser, EndUserSession
from silver_auth.endusers.schemas import EndUserPublic, EndUserSessionPublic
from silver_auth.endusers.sessions import session_status


def user_public(user: EndUser, *, mfa: bool) -> EndUserPublic:
    return EndUserPublic(
        id=user.id,
        project_id=user.project_id,
        environment=user.environment,
        email=user.email,
        has_password=user.password_hash is not None,
        mfa=mfa,
        banned=user.banned_at is not None,
        banned_at=user.banned_at,
        created_at=user.created_at,
        updated_at=user.updated_at,
        last_sign_in_at=user.last_sign_in_at,
    )


def session_public(session: EndUserSession, user: EndUser) -> EndUserSessionPublic:
    return EndUserSessionPublic(
        id=session.id,
        user_id=session.user_id,
        environment=session.environment,
        status=session_status(session, user),
        mfa=session.mfa,
        ip=session.ip,
        user_agent=session.user_agent,
        created_at=session.created_at,
        last_seen_at=session.last_seen_at,
        expires_at=session.expires_at,
        revoked_at=session.revoked_at,
    )
