"""Console sign-in through Authentik: start, come back, find or create the account, sync its groups,
and start a console session whose MFA flag follows authentik-notes "Admin MFA" (G6, G7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.accounts.models import Account, AccountGroup
from silver_auth.accounts.service import PLATFORM_ADMIN_GROUP, normalize_email
from silver_auth.accounts.sessions import ConsoleSessionCodec, ConsoleSessionIssued, start_console_session
from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.authentik.login_states import LoginStarted, LoginStates
from silver_auth.authentik.oidc import OidcClient, SignInFailed
from silver_auth.core import clock, urls
from silver_auth.core.errors import Conflict, Forbidden, InvalidInput, NotFound, ProblemError
from silver_auth.core.ids import new_id
from silver_auth.core.text import has_control_characters
from silver_auth.settings import Settings

if TYPE_CHECKING:
    from silver_auth.identity.providers.authentik import AuthentikProvider

STATE_COOKIE_PATH = urls.CONSOLE_OIDC
SSO_PASSWORD_HASH = "!sso"  # noqa: S105 - not an argon2 hash: no password ever verifies against it
SOURCE = "authentik"
MAX_GROUPS = 200


def log() -> structlog.typing.FilteringBoundLogger:
    # Looked up per use: a logger cached at import would keep the stderr of the first configuration.
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(__name__)
    return logger


class SsoNotEnabled(NotFound):
    """The service runs the builtin identity backend: there is no single sign-on to start."""


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


class ConsoleSso:
    def __init__(self, settings: Settings, client: OidcClient, directory: AuthentikProvider | None) -> None:
        self.settings = settings
        self.client = client
        self.directory = directory
        self.states = LoginStates(settings)

    async def start(self, db: AsyncSession, next_path: str | None) -> LoginStarted:
        login, state = await self.states.begin(db, next_path=clean_next(next_path))
        url = await self.client.authorization_url(
            state=state, nonce=login.nonce, code_verifier=login.code_verifier
        )
        return LoginStarted(url, self.states.cookie_for(state))

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
        codec: ConsoleSessionCodec,
        claims: dict[str, Any],
        *,
        ip: str | None,
        user_agent: str | None,
    ) -> ConsoleSessionIssued:
        subject = str(claims["sub"])
        groups = _groups(claims)
        account = await _find_or_create(db, subject, claims, ip)
        if not account.is_active:
            raise Forbidden("this console account is deactivated")
        await _sync_groups(db, account, groups, ip)
        mfa = await self._mfa(db, subject, claims, groups)
        return await start_console_session(
            db, codec, self.settings, account, ip=ip, user_agent=user_agent, mfa=mfa
        )

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
