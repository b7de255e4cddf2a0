"""Console users for the Authentik backend, whose sign-in is OIDC only: built directly through the
services (the sign-in itself is tested in test_console_oidc.py against a real OpenID provider)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy import select, text

from silver_auth.accounts.models import Account
from silver_auth.accounts.sessions import start_console_session
from silver_auth.core import clock
from silver_auth.core.ids import new_id
from silver_auth.db.migrations.env import target_metadata
from silver_auth.db.session import transaction
from tests.factories import ConsoleUser, Harness


def sso_user(harness: Harness, *, subject: str | None = None) -> ConsoleUser:
    """An Authentik-backed console account with a live session."""
    email = f"sso-{secrets.token_hex(4)}@example.com"

    async def work() -> tuple[str, str, str]:
        runtime = harness.runtime
        async with transaction(runtime.sessionmaker) as db:
            existing = await db.scalar(select(Account).where(Account.external_subject == subject))
            account = existing or Account(
                id=new_id("acc"),
                email=email,
                password_hash="!sso",
                is_active=True,
                created_at=clock.now(),
                source="authentik",
                external_subject=subject or str(uuid.uuid4()),
            )
            if existing is None:
                db.add(account)
                await db.flush()
            issued = await start_console_session(
                db, runtime.sessions, runtime.settings, account, ip=None, user_agent="tests"
            )
            return account.id, issued.cookie_value, runtime.sessions.csrf_token(issued.session.id)

    account_id, cookie, csrf = harness.run(work)
    return ConsoleUser(harness.client, harness.settings.session_cookie_name, cookie, csrf, account_id, email)


def member(harness: Harness, owner: ConsoleUser, org_id: str, role: str) -> ConsoleUser:
    invite = owner.ok("POST", f"/console/api/orgs/{org_id}/invitations", 201, json={"role": role})
    user = sso_user(harness)
    user.ok("POST", "/console/api/invitations/accept", json={"token": invite["token"]})
    return user


def all_rows_text(harness: Harness) -> str:
    """Every row of every table as text, to search for secrets that must not be stored in clear."""

    async def work() -> str:
        chunks = []
        async with harness.runtime.engine.connect() as connection:
            for table in target_metadata.sorted_tables:
                for row in (await connection.execute(select(table))).all():
                    chunks.append(repr(tuple(row)))
        return "\n".join(chunks)

    return harness.run(work)


def audit_rows(harness: Harness) -> list[Any]:
    async def work() -> list[Any]:
        async with harness.runtime.engine.connect() as connection:
            return list((await connection.execute(text("SELECT action, metadata FROM audit_events"))).all())

    return harness.run(work)
