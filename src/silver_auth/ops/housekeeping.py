"""Housekeeping: drop rows that can no longer do anything — expired sessions, codes and login states,
failure records older than every throttle window, alerts cleared half a year ago, webhook events past
their plan's retention — and audit events past their org's plan retention (L7), in a way `audit verify`
still checks (see `audit.retention`). Run by `silver-auth purge` (and, later, by the worker on a schedule)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.sessions import purge_expired_sessions
from silver_auth.alerts import records as alert_records
from silver_auth.audit.retention import purge_past_retention
from silver_auth.authentik.models import OidcLogin
from silver_auth.core import clock
from silver_auth.endusers.models import EndUserSession, RedirectCode
from silver_auth.throttle import service as throttle
from silver_auth.webhooks.retention import purge_expired_events

# Long enough for an incident review and for `doctor` to see the channel's last delivery (L2).
ALERT_RETENTION = timedelta(days=180)
# Longer than any throttle window (the longest, sign-up, defaults to an hour): a failure this old no
# longer counts against anyone, so keeping it only grows the table.
FAILURE_RETENTION = timedelta(days=1)


async def purge_expired(db: AsyncSession) -> dict[str, int]:
    """Delete what has expired; returns how many rows went, per kind."""
    now = clock.now()
    counts = {
        "console_sessions": await purge_expired_sessions(db),
        "auth_failures": await throttle.purge_older_than(db, FAILURE_RETENTION),
        "webhook_events": await purge_expired_events(db),  # with their deliveries and attempts
        "alerts": await alert_records.purge_cleared_before(db, now - ALERT_RETENTION),
    }
    # An expired end-user session takes its codes and retired refresh-token hashes with it (cascade).
    for name, table, column in (
        ("end_user_codes", RedirectCode, RedirectCode.expires_at),
        ("end_user_sessions", EndUserSession, EndUserSession.expires_at),
        ("oidc_logins", OidcLogin, OidcLogin.expires_at),
    ):
        result = await db.execute(delete(table).where(column < now))
        counts[name] = int(result.rowcount)  # type: ignore[attr-defined]
    # Last: it holds the audit chain head's lock (sealing waits) until the transaction ends.
    counts["audit_events"] = await purge_past_retention(db)
    return counts
