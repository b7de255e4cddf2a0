"""End-user throttles: sign-in failures counted per email and IP, per
IP and per email; parallel attempts cannot outrun the count; hosted sign-up limited per IP and per
project; a wrong password while disabling two-step verification is counted and audited."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from silver_auth.app import create_app
from silver_auth.audit.models import AuditEvent
from tests.concurrent import send_together
from tests.conftest import base_settings
from tests.dbstate import row_count
from tests.endusers.support import (
    END_USER_PASSWORD,
    REDIRECT,
    Browser,
    CustomerProject,
    customer_project,
    sign_up,
)
from tests.factories import Harness

WRONG = "wrong password 123456"


def audit(harness: Harness, action: str) -> list[AuditEvent]:
    async def work() -> list[AuditEvent]:
        async with harness.runtime.sessionmaker() as db:
            query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.row_id)
            return list((await db.scalars(query)).all())

    return harness.run(work)


def sign_in(harness: Harness, project: CustomerProject, email: str, password: str, ip: str) -> int:
    browser = Browser(harness, ip=ip)
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT, state="s")
    return browser.submit(project.pages("sign-in"), {"email": email, "password": password}).status_code


def test_guessing_from_elsewhere_does_not_lock_the_end_user_out(harness: Harness) -> None:
    project = customer_project(harness)
    sign_up(harness, project, "frank@example.com")
    tries = harness.settings.end_user_sign_in_max_failures + 1
    attacker = [sign_in(harness, project, "frank@example.com", WRONG, "198.51.100.9") for _ in range(tries)]
    assert attacker == [401] * harness.settings.end_user_sign_in_max_failures + [429]
    assert sign_in(harness, project, "frank@example.com", END_USER_PASSWORD, "203.0.113.50") == 303
    assert sign_in(harness, project, "frank@example.com", END_USER_PASSWORD, "198.51.100.9") == 429
    assert len(audit(harness, "end_user.sign_in_failed")) == harness.settings.end_user_sign_in_max_failures


def test_parallel_end_user_sign_ins_are_checked_at_most_max_failures_times(harness: Harness) -> None:
    project = customer_project(harness)
    sign_up(harness, project, "race@example.com")
    browser = Browser(harness, ip="198.51.100.20")
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT, state="s")
    form = {**browser.hidden(), "email": "race@example.com", "password": WRONG}
    cookie = {"cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items())}
    attempts = 2 * harness.settings.end_user_sign_in_max_failures
    answers = send_together(
        harness,
        [("POST", project.pages("sign-in"), {"data": form, "headers": cookie}) for _ in range(attempts)],
        ip="198.51.100.20",
    )
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {401, 429}, statuses
    assert 0 < statuses[401] <= harness.settings.end_user_sign_in_max_failures, statuses
    assert len(audit(harness, "end_user.sign_in_failed")) == statuses[401]


@pytest.fixture
def strict(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    settings = base_settings(
        tmp_path,
        DATABASE_URL=database_url,
        SILVER_END_USER_SIGN_UP_IP_MAX=3,
        SILVER_END_USER_SIGN_UP_PROJECT_MAX=5,
        SILVER_END_USER_SIGN_UP_WINDOW_MINUTES=60,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Harness(client, settings)


def sign_up_from(harness: Harness, project: CustomerProject, email: str, ip: str) -> tuple[int, str]:
    browser = Browser(harness, ip=ip)
    browser.get(project.pages("sign-up"), redirect_url=REDIRECT, state="s")
    answer = browser.submit(project.pages("sign-up"), {"email": email, "password": END_USER_PASSWORD})
    return answer.status_code, answer.text


def test_hosted_sign_up_is_limited_per_ip_then_per_project(strict: Harness) -> None:
    project = customer_project(strict)
    for i in range(3):
        assert sign_up_from(strict, project, f"bot{i}@example.com", "198.51.100.30")[0] == 303
    status, page = sign_up_from(strict, project, "bot3@example.com", "198.51.100.30")
    assert status == 429
    assert "too many accounts were created" in page and "<form" in page, page[page.find("<main") :]
    # A taken email counts too (no free probing); other addresses may sign up until the project's limit.
    assert sign_up_from(strict, project, "bot0@example.com", "198.51.100.31")[0] == 409
    assert sign_up_from(strict, project, "human@example.com", "198.51.100.32")[0] == 303
    assert sign_up_from(strict, project, "late@example.com", "198.51.100.33")[0] == 429
    assert row_count(strict, "end_users") == 4
    # Invalid input is refused as before and not counted.
    other = customer_project(strict)
    assert sign_up_from(strict, other, "not-an-email", "198.51.100.40")[0] == 422
    assert sign_up_from(strict, other, "ok@example.com", "198.51.100.40")[0] == 303


def test_a_wrong_password_when_disabling_two_step_is_counted_and_audited(harness: Harness) -> None:
    project = customer_project(harness)
    browser, _code = sign_up(harness, project, "disabling@example.com")
    browser.get(project.pages("account/two-step/"))
    started = browser.submit(project.pages("account/two-step/start"), {})
    secret = started.text.split('<p class="secret"><code>', 1)[1].split("<", 1)[0]
    assert (
        browser.submit(
            project.pages("account/two-step/confirm"), {"code": pyotp.TOTP(secret).now()}
        ).status_code
        == 200
    )
    statuses = []
    for _ in range(harness.settings.end_user_mfa_max_failures + 1):
        browser.get(project.pages("account/two-step/"))
        statuses.append(
            browser.submit(
                project.pages("account/two-step/disable"), {"password": WRONG, "code": "000000"}
            ).status_code
        )
    assert statuses == [401] * harness.settings.end_user_mfa_max_failures + [429]
    failed = audit(harness, "end_user.reauth_failed")
    assert len(failed) == harness.settings.end_user_mfa_max_failures
    assert all(WRONG not in str(event.metadata_) for event in failed)
    assert row_count(harness, "totp_factors") == 1


def test_end_user_limits_come_from_settings(tmp_path: Path, database_url: str) -> None:
    """Every limit policy is a setting: a tighter sign-in limit bites at its own number."""
    settings = base_settings(tmp_path, DATABASE_URL=database_url, SILVER_END_USER_SIGN_IN_MAX_FAILURES=3)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        harness = Harness(client, settings)
        project = customer_project(harness)
        sign_up(harness, project, "grace@example.com")
        attempts = [sign_in(harness, project, "grace@example.com", WRONG, "198.51.100.10") for _ in range(4)]
        assert attempts == [401, 401, 401, 429]
