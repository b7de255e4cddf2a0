"""Console sign-in through Authentik: start, come back, find or create the account, sync its groups,
and start a console session whose MFA flag follows authentik-notes "Admin MFA" (G6, G7).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.accounts.models import Account, AccountGroup
from silver_auth.accounts.service import PLATFORM_ADMIN_GROUP, normalize_email
from silver_auth.accounts.sessions import IssuedSession, SessionCodec, start_session
from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.authentik.models import OidcLogin
from silver_auth.authentik.oidc import OidcClient, SignInFailed
from silver_auth.core import clock
from silver_auth.core.crypto import sign, token_hash, verify_signature
from silver_auth.core.errors import Conflict, Forbidden, InvalidInput, NotFound, ProblemError
from silver_auth.core.ids import new_id
from silver_auth.core.text import has_control_characters
from silver_auth.db.session import transaction
from silver_auth.settings import Settings

if TYPE_CHECKING:
    from silver_auth.identity.providers.authentik import AuthentikProvider

LOGIN_TTL = timedelta(minutes=10)
STATE_COOKIE = "silver_oidc"
STATE_COOKIE_PATH = "/console/api/oidc"
SSO_PASSWORD_HASH = "!sso"  # noqa: S105 - not an argon2 hash: no password ever verifies against it
SOURCE = "authentik"
MAX_GROUPS = 200


def log() -> structlog.typing.FilteringBoundLogger:
    # Looked up per use: a logger cached at import would keep the stderr of the first configuration.
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(__name__)
    return logger


class StateInvalid(ProblemError):
    status, slug, title = 400, "sso-state-invalid", "Sign-in state is not valid"


class UseSingleSignOn(ProblemError):
    status, slug, title = 403, "sso-required", "Sign in through Authentik"


class SsoNotEnabled(NotFound):
    """The service runs the builtin identity backend: there is no single sign-on to start."""


def refuse_password_sign_in(settings: Settings) -> None:
    """With Authentik as the identity engine, console passwords live there, not here."""
    if settings.identity == "authentik":
        raise UseSingleSignOn(
            "this console signs in through Authentik: open GET /console/api/oidc/start",
            sso="/console/api/oidc/start",
        )


def clean_next(next_path: str | None) -> str:
    """Only a path on the console itself (no scheme, no `//host`): no open redirect after sign-in."""
    if not next_path:
        return "/"
    bad = (
        not next_path.startswith("/")
        or next_path.startswith("//")
        or "\\" in next_path
        or has_control_characters(next_path)
        or any(c.isspace() for c in next_path)
        or len(next_path) > 300
    )
    if bad:
        raise InvalidInput("next must be a path on the console, such as /orgs")
    return next_path


@dataclass(frozen=True, slots=True)
class Started:
    authorization_url: str
    cookie_value: str
    """`state.signature`, HttpOnly: binds the sign-in to the browser that started it (login CSRF)."""


class LoginStates:
    """Browser-bound, single-use OIDC login states (state, nonce, PKCE verifier), shared by the console
    and the projects' hosted pages; the state rides in a signed cookie and its row is deleted on return."""

    def __init__(self, settings: Settings) -> None:
        self._secret = settings.secret("session_secret")

    def cookie_for(self, state: str) -> str:
        return f"{state}.{sign(self._secret, 'oidc-state:' + state)}"

    def state_from_cookie(self, cookie: str | None) -> str | None:
        state, dot, signature = (cookie or "").partition(".")
        if not dot or not state or not verify_signature(self._secret, "oidc-state:" + state, signature):
            return None
        return state

    async def begin(self, db: AsyncSession, **where: str | None) -> tuple[OidcLogin, str]:
        """A new login (fresh nonce and verifier) in the caller's transaction, and its clear state (only
        its hash is stored); `where` says where it returns (next_path for the console; project_id,
        environment, redirect_url, client_state, client_challenge for hosted pages)."""
        now = clock.now()
        await db.execute(delete(OidcLogin).where(OidcLogin.expires_at < now))
        state = secrets.token_urlsafe(32)
        login = OidcLogin(
            id=new_id("oidc"),
            state_hash=token_hash(state),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),
            created_at=now,
            expires_at=now + LOGIN_TTL,
            **{"next_path": "", **where},
        )
        db.add(login)
        return login, state

    async def _consume(self, sessionmaker: async_sessionmaker[AsyncSession], state: str) -> OidcLogin:
        """Single use, committed on its own: a failed callback must not leave the state reusable."""
        async with transaction(sessionmaker) as db:
            login = await db.scalar(select(OidcLogin).where(OidcLogin.state_hash == token_hash(state)))
            if login is None:
                raise StateInvalid("this sign-in is unknown or was already used; start again")
            deleted = await db.execute(delete(OidcLogin).where(OidcLogin.id == login.id))
            if deleted.rowcount != 1:  # type: ignore[attr-defined]  # a concurrent callback won
                raise StateInvalid("this sign-in was already used; start again")
            db.expunge(login)
        if clock.now() >= login.expires_at:
            raise StateInvalid("this sign-in took too long; start again")
        return login

    async def claim(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        state: str | None,
        cookie: str | None,
        project_id: str | None,
    ) -> OidcLogin:
        """The login this browser started here (console: project_id None), used up at once. Call it
        before the request's own transaction starts: on SQLite that one would hold the write lock."""
        bound = self.state_from_cookie(cookie)
        if not state or bound is None or not secrets.compare_digest(bound.encode(), state.encode()):
            raise StateInvalid("the sign-in state does not match this browser; start again")
        login = await self._consume(sessionmaker, state)
        if login.project_id != project_id:  # a console state at a project's callback, or another project's
            raise StateInvalid("this sign-in was started somewhere else; start again")
        return login

    async def exchange(
        self, client: OidcClient, login: OidcLogin, *, code: str | None, error: str | None
    ) -> dict[str, Any]:
        """Trade the code (with the login's PKCE verifier) and verify the ID token (with its nonce)."""
        if error:  # an RFC 6749 error code is [a-z_]; anything else is not echoed back
            code_name = error if error.isascii() and error.replace("_", "").isalpha() else "error"
            raise SignInFailed(f"Authentik did not sign you in ({code_name[:40]})")
        if not code:
            raise SignInFailed("the identity provider sent no code")
        return await client.exchange(code, code_verifier=login.code_verifier, nonce=login.nonce)


# How long a platform admin's standing in Authentik (active, SEQN-A, a confirmed device) is trusted
# before the admin guard asks again: removal in Authentik ends admin access within this bound (G7, G29).
ADMIN_RECHECK_SECONDS = 60.0
AdminStanding = Literal["ok", "inactive", "not-member", "no-device", "unknown"]


class ConsoleSso:
    def __init__(self, settings: Settings, client: OidcClient, directory: AuthentikProvider | None) -> None:
        self.settings = settings
        self.client = client
        self.directory = directory
        self.states = LoginStates(settings)
        self._standing: dict[str, tuple[float, AdminStanding]] = {}

    async def admin_standing(self, db: AsyncSession, account: Account) -> AdminStanding:
        """Whether Authentik still holds this account active, in SEQN-A, with a confirmed device; group
        rows here are only synced at sign-in. Cached briefly; "unknown" (fail closed) when Authentik
        cannot answer."""
        cached = self._standing.get(account.id)
        if cached is not None and cached[0] > clock.monotonic():
            return cached[1]
        standing = await self._ask_standing(db, account)
        if standing != "unknown":  # an outage is asked again next time, not remembered
            self._standing[account.id] = (clock.monotonic() + ADMIN_RECHECK_SECONDS, standing)
        return standing

    async def _ask_standing(self, db: AsyncSession, account: Account) -> AdminStanding:
        if self.directory is None or account.external_subject is None:
            return "unknown"
        try:
            pk = await self.directory.user_pk_for_subject(account.external_subject)
            if pk is None:
                return "inactive"
            user = await self.directory.get_user(db, pk)
        except ProblemError as exc:
            log().warning("admin_standing_unknown", detail=exc.detail)
            return "unknown"
        if not user.is_active:
            return "inactive"
        if PLATFORM_ADMIN_GROUP not in user.groups:
            return "not-member"
        return "ok" if user.mfa_devices > 0 else "no-device"

    async def start(self, db: AsyncSession, next_path: str | None) -> Started:
        login, state = await self.states.begin(db, next_path=clean_next(next_path))
        url = await self.client.authorization_url(
            state=state, nonce=login.nonce, code_verifier=login.code_verifier
        )
        return Started(url, self.states.cookie_for(state))

    async def finish(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        code: str | None,
        state: str | None,
        error: str | None,
        cookie: str | None,
    ) -> tuple[dict[str, Any], str]:
        """Check state (browser-bound, single-use), trade the code, verify the ID token: (claims, next)."""
        login = await self.states.claim(sessionmaker, state=state, cookie=cookie, project_id=None)
        return await self.states.exchange(self.client, login, code=code, error=error), login.next_path

    async def sign_in(
        self,
        db: AsyncSession,
        codec: SessionCodec,
        claims: dict[str, Any],
        *,
        ip: str | None,
        user_agent: str | None,
    ) -> IssuedSession:
        subject = str(claims["sub"])
        groups = _groups(claims)
        account = await _find_or_create(db, subject, claims, ip)
        if not account.is_active:
            raise Forbidden("this console account is deactivated")
        await _sync_groups(db, account, groups, ip)
        mfa = await self._mfa(db, subject, claims, groups)
        return await start_session(db, codec, self.settings, account, ip=ip, user_agent=user_agent, mfa=mfa)

    async def _mfa(self, db: AsyncSession, subject: str, claims: dict[str, Any], groups: list[str]) -> bool:
        """`amr` only hints; for SEQN-A members Authentik must also show a confirmed device (G6)."""
        amr = claims.get("amr")
        hinted = isinstance(amr, list) and "mfa" in amr
        if not hinted or PLATFORM_ADMIN_GROUP not in groups:
            return hinted
        if self.directory is None:
            return False
        try:
            pk = await self.directory.user_pk_for_subject(subject)
            return pk is not None and await self.directory.has_confirmed_mfa(db, pk)
        except ProblemError as exc:  # fail closed: no admin MFA when Authentik can't confirm it
            log().warning("admin_mfa_unconfirmed", detail=exc.detail)
            return False


def _groups(claims: dict[str, Any]) -> list[str]:
    raw = claims.get("groups") or []
    if not isinstance(raw, list):
        raise SignInFailed("the groups claim is not a list")
    names = sorted({str(g) for g in raw if isinstance(g, str) and 0 < len(g) <= 100})
    return names[:MAX_GROUPS]


async def _find_or_create(db: AsyncSession, subject: str, claims: dict[str, Any], ip: str | None) -> Account:
    account = await db.scalar(select(Account).where(Account.external_subject == subject))
    if account is not None:
        return account
    email_claim = claims.get("email")
    if not isinstance(email_claim, str) or not email_claim:
        raise SignInFailed("the ID token carries no email: grant the console application the email scope")
    try:
        email = normalize_email(email_claim)
    except InvalidInput:
        raise SignInFailed("the email claim is not a valid address") from None
    if await db.scalar(select(Account.id).where(Account.email == email)) is not None:
        # Never link by email: an Authentik user who can set any address would take the account over.
        raise Conflict(
            "a console account with this email exists already and is not linked to this Authentik user"
        )
    account = Account(
        id=new_id("acc"),
        email=email,
        password_hash=SSO_PASSWORD_HASH,
        is_active=True,
        created_at=clock.now(),
        source=SOURCE,
        external_subject=subject,
    )
    db.add(account)
    await db.flush()
    await record(
        db,
        AuditAction.ACCOUNT_CREATED,
        actor=Actor(account.id, ip),
        target=account.id,
        metadata={"source": SOURCE},
    )
    return account


async def _sync_groups(db: AsyncSession, account: Account, groups: list[str], ip: str | None) -> None:
    """Group membership (SEQN-A included, G7) comes from Authentik at every sign-in."""
    current = set(
        (await db.scalars(select(AccountGroup.group_name).where(AccountGroup.account_id == account.id))).all()
    )
    wanted = set(groups)
    added, removed = sorted(wanted - current), sorted(current - wanted)
    if not added and not removed:
        return
    if removed:
        await db.execute(
            delete(AccountGroup).where(
                AccountGroup.account_id == account.id, AccountGroup.group_name.in_(removed)
            )
        )
    for name in added:
        db.add(AccountGroup(account_id=account.id, group_name=name))
    await record(
        db,
        AuditAction.ACCOUNT_GROUPS_SYNCED,
        actor=Actor(account.id, ip),
        target=account.id,
        metadata={"added": added, "removed": removed, "source": SOURCE},
    )
