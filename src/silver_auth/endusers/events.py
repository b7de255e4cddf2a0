"""What the end-user and session webhook events carry: built here once for every path that emits them.

Only public fields (G18): never the password hash, the cookie or session token hashes, the external
subject. The keys are those of `silver_auth.webhooks.events.SAMPLES` for each type.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core.metrics import count_session_created, count_sessions_revoked
from silver_auth.db.session import on_commit
from silver_auth.endusers.models import EndUser, EndUserSession
from silver_auth.webhooks.events import EventType
from silver_auth.webhooks.outbox import emit

END_USER = "end_user"
"""The kind label of end-user sessions in the session metrics."""
HOSTED_PAGE = "hosted-page"
"""`via` of a sign-up or sign-in on the builtin hosted pages (audit records and events alike)."""
SINGLE_SIGN_ON = "single-sign-on"
"""`via` of a session a further app's code starts from a browser that was signed in already."""

SIGNED_OUT = "signed_out"
REVOKED = "revoked"
"""Revoked on request: by the customer's backend (one session or all of a user's)."""
BANNED = "banned"
CREDENTIALS_CHANGED = "password_changed"
"""A new password ends every session (ASVS V7.4.3)."""


def user_event_data(user: EndUser, *, mfa: bool) -> dict[str, Any]:
    return {
        "id": user.id,
        "project_id": user.project_id,
        "environment": user.environment,
        "email": user.email,
        "banned": user.banned_at is not None,
        "mfa_enabled": mfa,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
        "last_sign_in_at": user.last_sign_in_at,
    }


def session_event_data(session: EndUserSession) -> dict[str, Any]:
    return {
        "id": session.id,
        "user_id": session.user_id,
        "project_id": session.project_id,
        "environment": session.environment,
        "mfa": session.mfa,
        "created_at": session.created_at,
        "expires_at": session.expires_at,
        "revoked_at": session.revoked_at,
    }


def emit_user_event(db: AsyncSession, kind: EventType, user: EndUser, data: dict[str, Any]) -> None:
    emit(db, kind, data, project_id=user.project_id, environment=user.environment)


def emit_session_created(db: AsyncSession, session: EndUserSession, *, via: str) -> None:
    on_commit(db, partial(count_session_created, END_USER))
    emit(
        db,
        EventType.SESSION_CREATED,
        {**session_event_data(session), "via": via},
        project_id=session.project_id,
        environment=session.environment,
    )


def emit_sessions_revoked(db: AsyncSession, ended: Iterable[EndUserSession], *, reason: str) -> None:
    """One `session.revoked` per session that ended before its expiry (the caller set `revoked_at`)."""
    ended = list(ended)
    on_commit(db, partial(count_sessions_revoked, END_USER, reason, len(ended)))
    for session in ended:
        emit(
            db,
            EventType.SESSION_REVOKED,
            {**session_event_data(session), "reason": reason},
            project_id=session.project_id,
            environment=session.environment,
        )
