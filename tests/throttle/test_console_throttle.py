"""Failure throttles of the console: attempts are reserved before the
secret is checked, so parallel requests cannot outrun the count; password sign-in is throttled per
email and IP, per IP and per email, and audited."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select

from silver_auth.app import create_app
from silver_auth.audit.models import AuditEvent
from silver_auth.core import clock
from silver_auth.throttle.models import AuthFailure
from tests.accounts.support import API, changes, enable_mfa, events, problem, start
from tests.concurrent import send, send_together
from tests.conftest import base_settings
from tests.dbstate import snapshot
from tests.factories import PASSWORD, Harness

WRONG = "wrong password 123456"
IP_A, IP_B = "198.51.100.1", "198.51.100.2"


def failure_rows(harness: Harness, scope_prefix: str) -> int:
    async def work() -> int:
        async with harness.runtime.sessionmaker() as db:
            query = select(func.count()).where(AuthFailure.scope.like(f"{scope_prefix}%"))
            return int(await db.scalar(query) or 0)

    return harness.run(work)


def sign_in_body(email: str, password: str) -> dict[str, object]:
    return {"json": {"email": email, "password": password}}


def events_by_action(harness: Harness, action: str) -> list[AuditEvent]:
    async def work() -> list[AuditEvent]:
        async with harness.runtime.sessionmaker() as db:
            query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.row_id)
            return list((await db.scalars(query)).all())

    return harness.run(work)


# --- parallel attempts: reserved before the check ---------------------------------------------------


def test_parallel_wrong_codes_are_checked_at_most_max_failures_times(harness: Harness) -> None:
    user = harness.user()
    enable_mfa(user)
    pending = start(harness, user.email)
    cookie = {"cookie": f"{harness.settings.session_cookie_name}={pending}"}
    limit = harness.settings.console_mfa_max_failures
    codes = [f"{i:06d}" for i in range(limit * 3)]
    answers = send_together(
        harness, [("POST", f"{API}/sign-in", {"json": {"code": c}, "headers": cookie}) for c in codes]
    )
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {401, 429}, statuses
    assert 0 < statuses[401] <= limit, statuses
    assert len(events(harness, user.account_id, "mfa.failed")) == statuses[401]
    # The refused ones left nothing behind; each evaluated one left its record per limit.
    assert failure_rows(harness, "console_mfa_account") == statuses[401]


def test_parallel_wrong_passwords_are_checked_at_most_max_failures_times(harness: Harness) -> None:
    user = harness.user()
    harness.client.cookies.clear()
    limit = harness.settings.console_sign_in_max_failures
    answers = send_together(
        harness, [("POST", f"{API}/sign-in", sign_in_body(user.email, WRONG)) for _ in range(limit * 2)]
    )
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {401, 429}, statuses
    assert 0 < statuses[401] <= limit, statuses
    assert len(events(harness, user.account_id, "account.sign_in_failed")) == statuses[401]


# --- console password sign-in: throttled, audited, no lock-out from elsewhere -------------------------


@pytest.fixture
def strict(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    settings = base_settings(
        tmp_path,
        DATABASE_URL=database_url,
        CONSOLE_SIGN_IN_MAX_FAILURES=3,
        CONSOLE_SIGN_IN_IP_MAX_FAILURES=5,
        CONSOLE_SIGN_IN_EMAIL_MAX_FAILURES=6,
        CONSOLE_MFA_FAILURE_WINDOW_MINUTES=10,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Harness(client, settings)


def sign_in_from(harness: Harness, ip: str, email: str, password: str) -> httpx.Response:
    return send(harness, "POST", f"{API}/sign-in", ip, json={"email": email, "password": password})


def test_wrong_console_passwords_are_throttled_and_audited(strict: Harness) -> None:
    harness = strict
    account_id = harness.create_account("admin@example.com", platform_admin=True)
    for _ in range(3):
        problem(sign_in_from(harness, IP_A, "Admin@Example.com ", WRONG), 401, "unauthorized")
    locked = sign_in_from(harness, IP_A, "admin@example.com", PASSWORD)
    problem(locked, 429, "too-many-attempts")
    assert 0 < int(locked.headers["retry-after"]) <= 600
    failed = events(harness, account_id, "account.sign_in_failed")
    assert len(failed) == 3
    assert all(e.actor == account_id and e.actor_ip == IP_A and e.metadata_ == {} for e in failed)
    # The window passes: the right password works again, and clears the count for this address.
    clock.advance(10 * 60 + 1)
    assert sign_in_from(harness, IP_A, "admin@example.com", PASSWORD).status_code == 200


def test_unknown_emails_count_the_same_and_are_audited_by_keyed_hash(strict: Harness) -> None:
    harness = strict
    email = "nobody-here@example.com"
    answers = [sign_in_from(harness, IP_A, email, WRONG) for _ in range(4)]
    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    problem(sign_in_from(harness, IP_B, email, WRONG), 401, "unauthorized")  # another address
    failed = events_by_action(harness, "account.sign_in_failed")
    assert len(failed) == 4  # 3 from A, 1 from B
    for event in failed:
        assert event.target is None and event.actor == "anonymous"
        assert set(event.metadata_) == {"email_hash"}
        assert email not in str(event.metadata_) and WRONG not in str(event.metadata_)


def test_guessing_from_elsewhere_does_not_lock_the_owner_out(strict: Harness) -> None:
    harness = strict
    harness.create_account("owner@example.com")
    for _ in range(3):
        problem(sign_in_from(harness, IP_A, "owner@example.com", WRONG), 401, "unauthorized")
    problem(sign_in_from(harness, IP_A, "owner@example.com", PASSWORD), 429, "too-many-attempts")
    assert sign_in_from(harness, IP_B, "owner@example.com", PASSWORD).status_code == 200


def test_per_ip_limit_spans_emails_and_per_email_limit_spans_ips(strict: Harness) -> None:
    harness = strict
    harness.create_account("victim@example.com")
    # One address trying many emails: 5 failures per IP, then 429 for any email.
    for i in range(5):
        problem(sign_in_from(harness, IP_A, f"guess{i}@example.com", WRONG), 401, "unauthorized")
    problem(sign_in_from(harness, IP_A, "victim@example.com", PASSWORD), 429, "too-many-attempts")
    # Many addresses trying one email: 6 failures per email across IPs, then 429 from anywhere.
    for i in range(6):
        problem(sign_in_from(harness, f"192.0.2.{i + 10}", "victim@example.com", WRONG), 401, "unauthorized")
    problem(sign_in_from(harness, IP_B, "victim@example.com", PASSWORD), 429, "too-many-attempts")


def test_asvs_v6_3_8_unknown_and_known_emails_get_the_same_answer(strict: Harness) -> None:
    strict.create_account("known@example.com")
    known = sign_in_from(strict, IP_A, "known@example.com", WRONG)
    unknown = sign_in_from(strict, IP_B, "unknown@example.com", WRONG)
    assert known.status_code == unknown.status_code == 401
    assert known.json() == unknown.json()


def test_an_attempt_refused_before_its_secret_is_checked_is_not_counted(harness: Harness) -> None:
    user = harness.user()
    enable_mfa(user)
    before = snapshot(harness)
    # The right password, then no code at all: 422, and the password's reservation is released.
    problem(user.post(f"{API}/mfa/disable", json={"password": PASSWORD}), 422, "invalid-request")
    assert "auth_failures" not in changes(before, snapshot(harness))
    # A wrong password is counted (one row per limit) and audited.
    refused = user.post(f"{API}/mfa/disable", json={"password": WRONG, "code": "000000"})
    problem(refused, 403, "reauthentication-failed")
    assert changes(before, snapshot(harness))["auth_failures"] == (2, 0)
    assert len(events(harness, user.account_id, "account.reauth_failed")) == 1
