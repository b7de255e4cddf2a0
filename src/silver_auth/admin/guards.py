"""The platform-admin guard: `/admin/api/…` only for `SEQN-A` members whose session passed MFA (G6, G7).

Every admin route declares `opt=PLATFORM_ADMIN`; a route without it (or with any other rule) is refused,
so a new route cannot be public or merely signed-in by accident.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import CONSOLE_ACCESS, ConsoleContext, console_context
from silver_auth.accounts.models import Account
from silver_auth.accounts.service import PLATFORM_ADMIN_GROUP, is_platform_admin
from silver_auth.core.errors import Forbidden, IdentityProviderUnavailable, ProblemError
from silver_auth.runtime import runtime_of
from silver_auth.web.deps import request_db
from silver_auth.web.http import refuse_options
from silver_auth.web.openapi import documents_access

if TYPE_CHECKING:
    from silver_auth.authentik.admin_standing import AdminStandingCheck

PLATFORM_ADMIN_ACCESS = "platform-admin"
PLATFORM_ADMIN = {"access": PLATFORM_ADMIN_ACCESS}
documents_access(
    PLATFORM_ADMIN_ACCESS,
    CONSOLE_ACCESS.refusing(
        (403, "not a member of SEQN-A (`forbidden`), or the session did not pass MFA (`mfa-required`)"),
        (503, "Authentik could not confirm the platform admin (`identity-provider-unavailable`)"),
    ),
)


class AdminMfaRequired(ProblemError):
    """A platform admin whose current session did not pass a second factor (G6, L5)."""

    status, slug, title = 403, "mfa-required", "Multi-factor sign-in required"


async def platform_admin_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    if handler.opt.get("access") != PLATFORM_ADMIN_ACCESS:  # fail closed
        refuse_options(connection)  # Litestar's own OPTIONS handler: 405
        raise Forbidden("this admin route has no platform-admin access rule")
    db = request_db(connection)  # the handler's transaction too
    context = await console_context(connection, db)  # 401 without a session; CSRF and Origin
    await require_platform_admin(connection, db, context)
    connection.state.console = context


async def require_platform_admin(
    connection: ASGIConnection[Any, Any, Any, Any], db: AsyncSession, context: ConsoleContext
) -> None:
    """The platform-admin rule on an authenticated console session, for the admin API and the
    console's admin pages alike: SEQN-A membership, MFA in this session, Authentik's word when it
    holds the accounts (G6, G7)."""
    # Group rows are the identity backend's: builtin manages them; Authentik's sign-in syncs them.
    if not await is_platform_admin(db, context.account.id):
        raise Forbidden(f"platform admins only: this needs membership of the {PLATFORM_ADMIN_GROUP} group")
    if not context.session.mfa:
        raise AdminMfaRequired(
            f"{PLATFORM_ADMIN_GROUP} members need a session that passed multi-factor sign-in (G6): "
            "enrol a TOTP authenticator (POST /console/api/mfa/totp, then "
            "/console/api/mfa/totp/confirm), then sign out and sign in again with a code from it"
        )
    admin_standing = runtime_of(connection).admin_standing
    if admin_standing is not None:  # Authentik: its word now, not the groups synced at sign-in
        await _confirm_with_authentik(admin_standing, db, context.account)


async def _confirm_with_authentik(check: AdminStandingCheck, db: AsyncSession, account: Account) -> None:
    standing = await check.standing(db, account)  # (G7, G29)
    if standing == "ok":
        return
    if standing == "no-device":
        raise AdminMfaRequired("Authentik holds no confirmed MFA device for this account any more (G6)")
    if standing == "unknown":
        raise IdentityProviderUnavailable(  # fail closed
            "Authentik could not confirm this platform admin now; try again shortly"
        )
    raise Forbidden(f"Authentik no longer holds this account active in {PLATFORM_ADMIN_GROUP} (G7)")
