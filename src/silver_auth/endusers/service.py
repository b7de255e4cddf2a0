"""End-users of a project environment: creation within the plan quota, sign-in, ban, TOTP.

Every function takes the project and environment the caller is bound to (a key, a hosted page) and
answers 404 for users outside them, exactly as for unknown ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.passwords import check_policy, hash_password, verify_password
from silver_auth.accounts.service import email_key, normalize_email
from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.core import clock
from silver_auth.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from silver_auth.core.ids import looks_like, new_id
from silver_auth.core.text import has_control_characters
from silver_auth.endusers import events
from silver_auth.endusers.models import EndUser, EndUserSession
from silver_auth.mfa.factors import confirmed_owners, remove_factors
from silver_auth.orgs.models import Org
from silver_auth.plans.service import check_quota, end_users_used, plan_for
from silver_auth.projects.models import Project
from silver_auth.projects.service import org_of_project
from silver_auth.settings import Settings
from silver_auth.throttle import policies
from silver_auth.throttle.service import Throttle, TooManyAttempts
from silver_auth.webhooks.events import EventType

ENVIRONMENTS = ("test", "live")
PAGE_SIZE_MAX = 100
WRONG_CREDENTIALS = "email or password is incorrect"


@dataclass(frozen=True, slots=True)
class ProjectEnvironment:
    """The project and environment a caller acts in."""

    project_id: str
    environment: str


async def _locked_org_plan(db: AsyncSession, project_id: str) -> tuple[Project, Org]:
    project = await db.get(Project, project_id)
    if project is None:
        raise NotFound("no such project")
    # Lock the org row (it holds the plan) so two concurrent sign-ups cannot both squeeze under the
    # quota, and a plan change waits for them.
    org = await db.scalar(select(Org).where(Org.id == project.org_id).with_for_update())
    if org is None:
        raise NotFound("no such project")
    return project, org


async def create_user(
    db: AsyncSession,
    scope: ProjectEnvironment,
    email: str,
    password: str | None,
    *,
    actor: Actor,
    via: str,
    external_subject: str | None = None,
) -> EndUser:
    """A new end-user (sign-up page, backend API, first sign-in through Authentik), counted against the
    plan's end-user quota of the project (both environments together); `via` names the path in the
    audit record and the `user.created` event. Every path that makes an end-user comes through here."""
    normalized = normalize_email(email)
    password_hash = (
        await hash_password(password, release=db) if password is not None else None
    )  # ASVS V6.2 policy
    project, org = await _locked_org_plan(db, scope.project_id)
    check_quota(plan_for(org.plan), "end_users", await end_users_used(db, project.id))
    now = clock.now()
    user = EndUser(
        id=new_id("usr"),
        project_id=scope.project_id,
        environment=scope.environment,
        email=normalized,
        password_hash=password_hash,
        external_subject=external_subject,
        banned_at=None,
        created_at=now,
        updated_at=now,
        last_sign_in_at=None,
    )
    try:
        async with db.begin_nested():
            db.add(user)
            await db.flush()
    except IntegrityError:
        raise Conflict("an end-user with this email already exists") from None
    await record(
        db,
        AuditAction.END_USER_CREATED,
        actor=actor,
        org_id=org.id,
        project_id=project.id,
        target=user.id,
        metadata={"environment": scope.environment, "via": via},
    )
    data = {**events.user_event_data(user, mfa=False), "via": via}
    events.emit_user_event(db, EventType.USER_CREATED, user, data)
    return user


async def get_user(db: AsyncSession, scope: ProjectEnvironment, user_id: str) -> EndUser:
    user = await db.get(EndUser, user_id) if looks_like("usr", user_id) else None
    if user is None or user.project_id != scope.project_id or user.environment != scope.environment:
        raise NotFound("no such end-user")
    return user


async def list_users(
    db: AsyncSession, scope: ProjectEnvironment, *, email: str | None, after: str | None, limit: int
) -> tuple[list[EndUser], str | None]:
    """A page of users, newest id last; `email` filters by substring (lower-cased)."""
    limit = max(1, min(limit, PAGE_SIZE_MAX))
    query = select(EndUser).where(
        EndUser.project_id == scope.project_id, EndUser.environment == scope.environment
    )
    if email and has_control_characters(email):
        raise InvalidInput("email filter: control characters are not allowed")
    if after and not looks_like("usr", after):
        raise InvalidInput("after: not an end-user id (use the `next` cursor of the previous page)")
    if email:
        escaped = email.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(EndUser.email.like(f"%{escaped}%", escape="\\"))
    if after:
        query = query.where(EndUser.id > after)
    rows = list((await db.scalars(query.order_by(EndUser.id).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more and rows else None


async def record_user_event(
    db: AsyncSession,
    action: AuditAction,
    user: EndUser,
    *,
    actor: Actor,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Audit an event about an end-user, in the org and project it belongs to."""
    await record(
        db,
        action,
        actor=actor,
        org_id=await org_of_project(db, user.project_id),
        project_id=user.project_id,
        target=user.id,
        metadata=metadata,
    )


async def update_user(
    db: AsyncSession, user: EndUser, *, email: str | None, password: str | None, actor: Actor
) -> EndUser:
    changed: list[str] = []
    # Hashed before anything changes: the session still holds nothing, so its connection can go back.
    password_hash = await hash_password(password, release=db) if password is not None else None
    if email is not None and normalize_email(email) != user.email:
        user.email = normalize_email(email)
        changed.append("email")
    if password_hash is not None:
        user.password_hash = password_hash
        changed.append("password")
    if not changed:
        return user
    user.updated_at = clock.now()
    try:
        async with db.begin_nested():
            await db.flush()
    except IntegrityError:
        raise Conflict("an end-user with this email already exists") from None
    await record_user_event(
        db, AuditAction.END_USER_UPDATED, user, actor=actor, metadata={"changed": changed}
    )
    data = {**await _user_data(db, user), "changed": changed}
    events.emit_user_event(db, EventType.USER_UPDATED, user, data)
    if "password" in changed:  # a new password ends every session (ASVS V7.4.3)
        await revoke_user_sessions(db, user.id, reason=events.CREDENTIALS_CHANGED)
    return user


async def _user_data(db: AsyncSession, user: EndUser) -> dict[str, Any]:
    return events.user_event_data(user, mfa=bool(await confirmed_owners(db, [user.id])))


async def revoke_user_sessions(
    db: AsyncSession, user_id: str, *, reason: str, keep_session_id: str | None = None
) -> int:
    """End every live session of the user (but `keep_session_id`), each with its `session.revoked`
    event. RETURNING names the rows this one statement ended: no extra query, and no session started
    meanwhile escapes."""
    kept = () if keep_session_id is None else (EndUserSession.id != keep_session_id,)
    ended = list(
        (
            await db.scalars(
                update(EndUserSession)
                .where(EndUserSession.user_id == user_id, EndUserSession.revoked_at.is_(None), *kept)
                .values(revoked_at=clock.now())
                .returning(EndUserSession)
            )
        ).all()
    )
    events.emit_sessions_revoked(db, ended, reason=reason)
    return len(ended)


async def set_banned(db: AsyncSession, user: EndUser, banned: bool, *, actor: Actor) -> EndUser:
    """Ban (and end every session: G29) or unban; idempotent, audited when it changes something."""
    if banned == (user.banned_at is not None):
        return user
    now = clock.now()
    user.banned_at = now if banned else None
    user.updated_at = now
    revoked = await revoke_user_sessions(db, user.id, reason=events.BANNED) if banned else 0
    await record_user_event(
        db,
        AuditAction.END_USER_BANNED if banned else AuditAction.END_USER_UNBANNED,
        user,
        actor=actor,
        metadata={"sessions_revoked": revoked} if banned else {},
    )
    data = await _user_data(db, user)
    if banned:
        events.emit_user_event(db, EventType.USER_BANNED, user, {**data, "sessions_revoked": revoked})
    else:
        events.emit_user_event(db, EventType.USER_UNBANNED, user, data)
    return user


async def delete_user(db: AsyncSession, user: EndUser, *, actor: Actor) -> None:
    """The user goes with their sessions and factors: one `user.deleted`, no `session.revoked`."""
    await remove_factors(db, user.id)
    await record_user_event(
        db, AuditAction.END_USER_DELETED, user, actor=actor, metadata={"environment": user.environment}
    )
    identity = {"id": user.id, "project_id": user.project_id, "environment": user.environment}
    events.emit_user_event(db, EventType.USER_DELETED, user, identity)
    await db.execute(delete(EndUserSession).where(EndUserSession.user_id == user.id))
    await db.delete(user)


# --- sign-in ----------------------------------------------------------------------------------


async def sign_up(
    db: AsyncSession,
    throttle: Throttle,
    settings: Settings,
    scope: ProjectEnvironment,
    email: str,
    password: str,
    *,
    ip: str | None,
) -> EndUser:
    """A hosted sign-up: counted per IP and per project environment (429 past the limits)
    once the input is valid, whatever the outcome (a taken email counts too)."""
    normalize_email(email)
    check_policy(password)
    try:
        await throttle.reserve(policies.end_user_sign_up(settings, scope.project_id, scope.environment, ip))
    except TooManyAttempts as refused:
        detail = "too many accounts were created from here or for this app recently; try again later"
        raise TooManyAttempts(detail, headers=refused.headers) from None
    return await create_user(db, scope, email, password, actor=Actor("anonymous", ip), via=events.HOSTED_PAGE)


async def authenticate(
    db: AsyncSession,
    throttle: Throttle,
    settings: Settings,
    scope: ProjectEnvironment,
    email: str,
    password: str,
    *,
    ip: str | None,
) -> EndUser:
    """The user behind email + password; one answer, in about the same time, for every failure
    (ASVS V6.3.8): unknown email, wrong password, no password, banned. Failures are throttled
    (policies.end_user_sign_in: per email from one IP, per IP, per email) and audited."""
    normalized = email_key(email)
    sign_in_limits = policies.end_user_sign_in(
        settings, scope.project_id, scope.environment, throttle.email_subject(normalized), ip
    )
    async with throttle.attempt(db, sign_in_limits) as attempt:
        user = (
            await db.scalar(
                select(EndUser).where(
                    EndUser.project_id == scope.project_id,
                    EndUser.environment == scope.environment,
                    EndUser.email == normalized,
                )
            )
            if normalized
            else None
        )
        valid = await verify_password(
            user.password_hash if user else None, password, release=db
        )  # costs the same if None
        if user is None or not valid or user.banned_at is not None:
            user_id = user.id if user else None
            await attempt.failed(
                db,
                action=AuditAction.END_USER_SIGN_IN_FAILED,
                actor=Actor(user_id or "anonymous", ip),
                target=user_id,
                org_id=await org_of_project(db, scope.project_id),
                project_id=scope.project_id,
                metadata={"environment": scope.environment},
            )
            raise Unauthorized(WRONG_CREDENTIALS)
        await attempt.succeeded(db)
    return user


@dataclass(frozen=True, slots=True)
class UserPage:
    users: list[EndUser]
    next: str | None
    with_mfa: set[str]


async def user_page(
    db: AsyncSession, scope: ProjectEnvironment, *, email: str | None, after: str | None, limit: int
) -> UserPage:
    """A page of users and which of them have two-step verification on."""
    users, next_id = await list_users(db, scope, email=email, after=after, limit=limit)
    return UserPage(users, next_id, await confirmed_owners(db, [u.id for u in users]))


async def change_password(
    db: AsyncSession,
    throttle: Throttle,
    settings: Settings,
    user: EndUser,
    *,
    keep_session_id: str,
    current_password: str,
    new_password: str,
    ip: str | None,
) -> int:
    """The signed-in user's own password change: re-authenticated (throttled and audited like turning
    two-step verification off), the policy applied, and every other session ended (ASVS V7.4.3) while
    this one goes on; answers how many sessions were ended."""
    try:
        check_policy(new_password)  # before the attempt: a refused new password is not a failed guess
    except InvalidInput as refused:
        raise InvalidInput(f"the new password is refused: {refused.detail}; choose another") from None
    if new_password == current_password:
        raise InvalidInput("the new password is the same as the current one; choose a different one")
    actor = Actor(user.id, ip)
    async with throttle.attempt(
        db, policies.end_user_second_factor(settings, "reauth", user.id, ip)
    ) as attempt:
        if not await verify_password(user.password_hash, current_password, release=db):
            await attempt.failed(
                db,
                action=AuditAction.END_USER_REAUTH_FAILED,
                actor=actor,
                target=user.id,
                org_id=await org_of_project(db, user.project_id),
                project_id=user.project_id,
                metadata={"environment": user.environment, "purpose": "password_change"},
            )
            raise Unauthorized("the current password is not correct")
        await attempt.succeeded(db)
    user.password_hash = await hash_password(new_password, release=db)
    user.updated_at = clock.now()
    revoked = await revoke_user_sessions(
        db, user.id, reason=events.CREDENTIALS_CHANGED, keep_session_id=keep_session_id
    )
    await record_user_event(
        db, AuditAction.END_USER_PASSWORD_CHANGED, user, actor=actor, metadata={"sessions_revoked": revoked}
    )
    data = {**await _user_data(db, user), "changed": ["password"]}
    events.emit_user_event(db, EventType.USER_UPDATED, user, data)
    return revoked
