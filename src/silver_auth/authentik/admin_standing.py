"""Whether Authentik still holds a platform admin active, in SEQN-A, with a confirmed MFA device: the
admin guard asks it (briefly cached), so offboarding in Authentik ends admin access (G6, G7, G29)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.models import Account
from silver_auth.accounts.service import PLATFORM_ADMIN_GROUP
from silver_auth.core import clock
from silver_auth.core.errors import ProblemError

if TYPE_CHECKING:
    from silver_auth.identity.providers.authentik import AuthentikProvider

# How long a platform admin's standing in Authentik (active, SEQN-A, a confirmed device) is trusted
# before the admin guard asks again: removal in Authentik ends admin access within this bound (G7, G29).
ADMIN_RECHECK_SECONDS = 60.0
AdminStanding = Literal["ok", "inactive", "not-member", "no-device", "unknown"]


def log() -> structlog.typing.FilteringBoundLogger:
    # Looked up per use: a logger cached at import would keep the stderr of the first configuration.
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(__name__)
    return logger


class AdminStandingCheck:
    """One per process: the cache holds one entry per platform admin that signed in here."""

    def __init__(self, directory: AuthentikProvider) -> None:
        self.directory = directory
        self._standing: dict[str, tuple[float, AdminStanding]] = {}

    async def standing(self, db: AsyncSession, account: Account) -> AdminStanding:
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
        if account.external_subject is None:
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
