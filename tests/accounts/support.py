"""Helpers for console MFA tests: enrol through the API, sign in with a second factor, read the audit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
from sqlalchemy import select

from silver_auth.accounts.service import deactivate_account, reset_account_mfa
from silver_auth.audit.models import AuditEvent
from silver_auth.audit.service import CLI_ACTOR
from silver_auth.core import clock
from silver_auth.db.session import transaction
from tests.dbstate import snapshot
from tests.factories import PASSWORD, ConsoleUser, Harness

API = "/console/api"


@dataclass
class Mfa:
    secret: str
    recovery_codes: list[str]


def next_code(secret: str) -> str:
    """A code of the next 30-second step: each accepted code is used up (no replay), so move on."""
    clock.advance(31)
    return pyotp.TOTP(secret).at(clock.now())


def enable_mfa(user: ConsoleUser, password: str = PASSWORD) -> Mfa:
    secret = user.ok("POST", f"{API}/mfa/totp", json={"password": password})["secret"]
    codes = user.ok("POST", f"{API}/mfa/totp/confirm", json={"code": next_code(secret)})["recovery_codes"]
    return Mfa(secret, codes)


def post_sign_in(harness: Harness, body: dict[str, Any], cookie: str | None = None) -> httpx.Response:
    harness.client.cookies.clear()
    headers = {"cookie": f"{harness.settings.session_cookie_name}={cookie}"} if cookie else {}
    response = harness.client.post(f"{API}/sign-in", json=body, headers=headers)
    harness.client.cookies.clear()
    return response


def cookie_of(harness: Harness, response: httpx.Response) -> str:
    value: str = response.cookies[harness.settings.session_cookie_name]
    return value


def start(harness: Harness, email: str, password: str = PASSWORD) -> str:
    """Step one for an account with MFA: answers the pending cookie."""
    response = post_sign_in(harness, {"email": email, "password": password})
    assert response.status_code == 200, response.text
    assert response.json()["mfa_required"] is True, response.text
    return cookie_of(harness, response)


def as_user(harness: Harness, response: httpx.Response, email: str) -> ConsoleUser:
    assert response.status_code == 200, response.text
    body = response.json()
    return ConsoleUser(
        harness.client,
        harness.settings.session_cookie_name,
        cookie_of(harness, response),
        body["csrf_token"],
        body["account"]["id"],
        email,
    )


def mfa_sign_in(harness: Harness, email: str, secret: str) -> ConsoleUser:
    pending = start(harness, email)
    return as_user(harness, post_sign_in(harness, {"code": next_code(secret)}, pending), email)


def events(harness: Harness, target: str, action: str | None = None) -> list[AuditEvent]:
    """Audit events about one account, oldest first (account events belong to no org)."""

    async def work() -> list[AuditEvent]:
        async with harness.runtime.sessionmaker() as db:
            query = select(AuditEvent).where(AuditEvent.target == target).order_by(AuditEvent.row_id)
            if action:
                query = query.where(AuditEvent.action == action)
            return list((await db.scalars(query)).all())

    return harness.run(work)


def changes(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, tuple[int, int]]:
    """Per changed table: (rows added, rows removed)."""
    changed = {}
    for table, rows in before.items():
        added = len(set(after[table]) - set(rows))
        removed = len(set(rows) - set(after[table]))
        if added or removed:
            changed[table] = (added, removed)
    return changed


def only_failure_written(harness: Harness, before: dict[str, list[str]], *, failures: int = 2) -> None:
    """Nothing but the failure records (account and IP) and one audit event (and the chain head)."""
    changed = changes(before, snapshot(harness))
    assert changed == {"auth_failures": (failures, 0), "audit_events": (1, 0), "audit_chain_head": (1, 1)}, (
        changed
    )


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug), body
    return body


def deactivate(harness: Harness, account_id: str) -> int:
    async def work() -> int:
        async with transaction(harness.runtime.sessionmaker) as db:
            return await deactivate_account(db, account_id, actor=CLI_ACTOR)

    return harness.run(work)


def reset_mfa(harness: Harness, account_id: str) -> int:
    async def work() -> int:
        async with transaction(harness.runtime.sessionmaker) as db:
            return await reset_account_mfa(db, account_id, actor=CLI_ACTOR)

    return harness.run(work)


__all__ = ["PASSWORD"]
