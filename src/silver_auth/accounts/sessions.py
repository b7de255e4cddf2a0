"""Console sessions: server-side rows behind an opaque signed cookie (G14, G29); issue, resolve, revoke."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import ForeignKey, Index, String, delete, false, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from silver_auth.accounts.models import Account
from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.crypto import sign, token_hash, verify_signature
from silver_auth.core.errors import NotFound
from silver_auth.core.ids import new_id
from silver_auth.core.metrics import count_session_created, count_sessions_revoked
from silver_auth.db.base import Base
from silver_auth.db.session import after_settle, on_commit
from silver_auth.settings import Settings

CONSOLE = "console"
"""The kind label of console sessions in the session metrics."""


class ConsoleSession(Base):
    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_account", "account_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of the opaque cookie token; the token itself is never stored."""
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    """Absolute lifetime end; the idle limit is checked against last_seen_at."""
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    mfa: Mapped[bool] = mapped_column(default=False)
    """Whether this session passed a second factor."""
    awaiting_mfa: Mapped[bool] = mapped_column(default=False, server_default=false())
    """A pending sign-in: the password was right, the second factor is still due. Such a row is good
    for nothing but finishing that sign-in (resolve_session ignores it) and expires within minutes."""


LAST_SEEN_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class ConsoleSessionIssued:
    session: ConsoleSession
    cookie_value: str
    """`token.signature`, signed with SESSION_SECRET (G14: a new secret invalidates every cookie)."""


class ConsoleSessionCodec:
    """Signs and checks the opaque cookie token and derives the session's CSRF token."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.secret("session_secret")

    def cookie_for(self, token: str) -> str:
        return f"{token}.{sign(self._secret, 'session:' + token)}"

    def token_from_cookie(self, cookie: str) -> str | None:
        token, dot, signature = cookie.partition(".")
        if not dot or not token or not verify_signature(self._secret, "session:" + token, signature):
            return None
        return token

    def csrf_token(self, session_id: str) -> str:
        return sign(self._secret, "csrf:" + session_id)

    def csrf_valid(self, session_id: str, presented: str | None) -> bool:
        return presented is not None and verify_signature(self._secret, "csrf:" + session_id, presented)


async def start_console_session(
    db: AsyncSession,
    codec: ConsoleSessionCodec,
    settings: Settings,
    account: Account,
    *,
    ip: str | None,
    user_agent: str | None,
    mfa: bool = False,
    awaiting_mfa: bool = False,
) -> ConsoleSessionIssued:
    """A new session with a new token (never a reused one: no fixation). `awaiting_mfa` issues the
    short-lived pending session of a sign-in whose second factor is still due."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    lifetime = (
        timedelta(minutes=settings.console_mfa_pending_minutes)
        if awaiting_mfa
        else timedelta(hours=settings.session_absolute_hours)
    )
    session = ConsoleSession(
        id=new_id("sess"),
        account_id=account.id,
        token_hash=token_hash(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        revoked_at=None,
        ip=ip,
        user_agent=(user_agent or "")[:300] or None,
        mfa=mfa,
        awaiting_mfa=awaiting_mfa,
    )
    db.add(session)
    if not awaiting_mfa:  # G27, G29: every console sign-in is on record, whichever way it came
        on_commit(db, partial(count_session_created, CONSOLE))
        await record(
            db,
            AuditAction.ACCOUNT_SIGNED_IN,
            actor=Actor(account.id, ip),
            target=session.id,
            metadata={"mfa": mfa, "source": account.source},
        )
    return ConsoleSessionIssued(session, codec.cookie_for(token))


async def resolve_session(
    db: AsyncSession, codec: ConsoleSessionCodec, settings: Settings, cookie: str | None
) -> tuple[ConsoleSession, Account] | None:
    """The live session behind a cookie, or None (forged, rotated secret, revoked, idle or expired,
    or a pending sign-in still awaiting its second factor)."""
    found = await _lookup(db, codec, cookie)
    if found is None or found[0].awaiting_mfa:
        return None
    session, account = found
    now = clock.now()
    idle_limit = session.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    if (
        session.revoked_at is not None
        or now >= session.expires_at
        or now >= idle_limit
        or not account.is_active
    ):
        return None
    if now - session.last_seen_at >= LAST_SEEN_RESOLUTION:
        # Seen now by this request, without making the row dirty here (no write in the guard).
        set_committed_value(session, "last_seen_at", now)
        after_settle(db, partial(_touch, db.bind, session.id, now))
    return session, account


async def _touch(engine: AsyncEngine | AsyncConnection | None, session_id: str, seen_at: datetime) -> None:
    """Record the session's last activity in a short transaction of its own, after the request's: a
    guard that only read holds no write lock meanwhile (SQLite), and a refused request still counts."""
    async with AsyncSession(engine) as db, db.begin():
        await db.execute(
            update(ConsoleSession)
            .where(ConsoleSession.id == session_id, ConsoleSession.last_seen_at < seen_at)
            .values(last_seen_at=seen_at)
        )


async def resolve_pending(
    db: AsyncSession, codec: ConsoleSessionCodec, cookie: str | None
) -> tuple[ConsoleSession, Account] | None:
    """The pending sign-in behind a cookie (awaiting its second factor, not expired), or None."""
    found = await _lookup(db, codec, cookie)
    if found is None:
        return None
    session, account = found
    if (
        not session.awaiting_mfa
        or session.revoked_at is not None
        or clock.now() >= session.expires_at
        or not account.is_active
    ):
        return None
    return session, account


async def finish_pending(db: AsyncSession, pending: ConsoleSession) -> bool:
    """Drop a pending sign-in once its second factor passed; its token is never promoted to a real
    session (no fixation): the caller issues a new one."""
    result = await db.execute(delete(ConsoleSession).where(ConsoleSession.id == pending.id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _lookup(
    db: AsyncSession, codec: ConsoleSessionCodec, cookie: str | None
) -> tuple[ConsoleSession, Account] | None:
    token = codec.token_from_cookie(cookie) if cookie else None
    if token is None:
        return None
    row = (
        await db.execute(
            select(ConsoleSession, Account)
            .join(Account, Account.id == ConsoleSession.account_id)
            .where(ConsoleSession.token_hash == token_hash(token))
        )
    ).one_or_none()
    if row is None:
        return None
    session, account = row
    return session, account


async def revoke_session(
    db: AsyncSession, session_id: str, *, actor: Actor, signing_out: bool = False
) -> None:
    """Revoke one of the actor's own sessions (G29): signing out, or ending one from the session list."""
    result = await db.execute(
        update(ConsoleSession)
        .where(
            ConsoleSession.id == session_id,
            ConsoleSession.account_id == actor.id,
            ConsoleSession.revoked_at.is_(None),
        )
        .values(revoked_at=clock.now())
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("no such active session")
    action = AuditAction.ACCOUNT_SIGNED_OUT if signing_out else AuditAction.ACCOUNT_SESSION_REVOKED
    on_commit(db, partial(count_sessions_revoked, CONSOLE, "signed_out" if signing_out else "revoked"))
    await record(db, action, actor=actor, target=session_id)


async def revoke_other_sessions(db: AsyncSession, keep_session_id: str, *, actor: Actor) -> int:
    """Sign the actor out everywhere but here (G29)."""
    revoked = await revoke_all_sessions(db, actor.id, keep_session_id=keep_session_id)
    await record(
        db,
        AuditAction.ACCOUNT_SESSIONS_REVOKED,
        actor=actor,
        target=actor.id,
        metadata={"revoked": revoked, "kept": keep_session_id},
    )
    return revoked


async def revoke_all_sessions(
    db: AsyncSession, account_id: str, *, keep_session_id: str | None = None
) -> int:
    """Revoke every live session of an account (G29: lost device, offboarding, suspicious access),
    optionally keeping the caller's own. Revoked rows fail on their next request on every worker."""
    query = update(ConsoleSession).where(
        ConsoleSession.account_id == account_id, ConsoleSession.revoked_at.is_(None)
    )
    if keep_session_id is not None:
        query = query.where(ConsoleSession.id != keep_session_id)
    result = await db.execute(query.values(revoked_at=clock.now()))
    revoked = int(result.rowcount)  # type: ignore[attr-defined]
    on_commit(db, partial(count_sessions_revoked, CONSOLE, "revoked", revoked))
    return revoked


async def list_sessions(db: AsyncSession, account_id: str) -> list[ConsoleSession]:
    now = clock.now()
    rows = await db.scalars(
        select(ConsoleSession)
        .where(
            ConsoleSession.account_id == account_id,
            ConsoleSession.revoked_at.is_(None),
            ConsoleSession.awaiting_mfa.is_(False),
            ConsoleSession.expires_at > now,
        )
        .order_by(ConsoleSession.created_at.desc())
    )
    return list(rows.all())


async def purge_expired_sessions(db: AsyncSession) -> int:
    result = await db.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < clock.now()))
    return int(result.rowcount)  # type: ignore[attr-defined]
