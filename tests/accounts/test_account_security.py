"""Password change, deactivation and MFA reset of console accounts: each ends the account's other
sessions (ASVS V6.2.3; G29) and is audited (G27)."""

from __future__ import annotations

import pytest

from silver_auth.accounts.service import deactivate_account, reset_account_mfa
from silver_auth.audit.service import CLI_ACTOR
from silver_auth.core.errors import NotFound
from silver_auth.db.session import transaction
from tests.accounts.support import (
    API,
    changes,
    deactivate,
    enable_mfa,
    events,
    mfa_sign_in,
    only_failure_written,
    post_sign_in,
    problem,
    reset_mfa,
)
from tests.dbstate import snapshot
from tests.factories import PASSWORD, Harness

NEW_PASSWORD = "a brand new passphrase 42"
ME = f"{API}/me"


def test_password_change_keeps_this_session_and_ends_the_others(harness: Harness) -> None:
    user = harness.user()
    others = [harness.sign_in(user.email) for _ in range(2)]
    stranger = harness.user()
    body = user.ok(
        "POST", f"{API}/me/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert body == {"sessions_revoked": 2}
    assert user.get(ME).status_code == 200
    for other in others:
        problem(other.get(ME), 401, "unauthorized")
    assert stranger.get(ME).status_code == 200
    problem(post_sign_in(harness, {"email": user.email, "password": PASSWORD}), 401, "unauthorized")
    harness.sign_in(user.email, NEW_PASSWORD)
    (event,) = events(harness, user.account_id, "account.password_changed")
    assert event.actor == user.account_id and event.metadata_ == {"sessions_revoked": 2}


def test_password_change_with_a_wrong_current_password_writes_only_the_failure(harness: Harness) -> None:
    user = harness.user()
    other = harness.sign_in(user.email)
    before = snapshot(harness)
    response = user.post(
        f"{API}/me/password", json={"current_password": "not my password!!", "new_password": NEW_PASSWORD}
    )
    problem(response, 403, "reauthentication-failed")
    only_failure_written(harness, before)
    (event,) = events(harness, user.account_id, "account.reauth_failed")
    assert event.metadata_ == {"purpose": "password_change"}
    assert other.get(ME).status_code == 200  # nothing was revoked
    harness.sign_in(user.email)  # the old password still works


@pytest.mark.parametrize("new_password", ["short", "qwerty123456", "x" * 129])
def test_password_change_applies_the_policy_and_writes_nothing(harness: Harness, new_password: str) -> None:
    user = harness.user()
    before = snapshot(harness)
    response = user.post(
        f"{API}/me/password", json={"current_password": PASSWORD, "new_password": new_password}
    )
    body = problem(response, 422, "invalid-request")
    assert new_password not in response.text and PASSWORD not in response.text
    assert body["detail"]
    assert changes(before, snapshot(harness)) == {}


def test_password_change_reauthentication_is_throttled(harness: Harness) -> None:
    user = harness.user()
    limit = harness.settings.console_mfa_max_failures
    wrong = {"current_password": "not my password!!", "new_password": NEW_PASSWORD}
    for _ in range(limit):
        problem(user.post(f"{API}/me/password", json=wrong), 403, "reauthentication-failed")
    before = snapshot(harness)
    right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    refused = user.post(f"{API}/me/password", json=right)
    problem(refused, 429, "too-many-attempts")
    assert int(refused.headers["retry-after"]) > 0
    assert changes(before, snapshot(harness)) == {}


def test_deactivate_account_ends_every_session_and_sign_in(harness: Harness) -> None:
    user = harness.user()
    harness.sign_in(user.email)
    assert deactivate(harness, user.account_id) == 2
    problem(user.get(ME), 401, "unauthorized")
    problem(post_sign_in(harness, {"email": user.email, "password": PASSWORD}), 401, "unauthorized")
    (event,) = events(harness, user.account_id, "account.deactivated")
    assert event.actor == "cli" and event.metadata_ == {"sessions_revoked": 2}


def test_reset_account_mfa_removes_factors_and_ends_every_session(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    again = mfa_sign_in(harness, user.email, mfa.secret)
    assert reset_mfa(harness, user.account_id) == 1
    for session in (user, again):
        problem(session.get(ME), 401, "unauthorized")
    # signing in now needs only the password; the account can enrol again
    fresh = harness.sign_in(user.email)
    assert fresh.ok("GET", f"{API}/mfa")["enabled"] is False
    (event,) = events(harness, user.account_id, "account.mfa_reset")
    assert event.metadata_ == {"factors_removed": 1, "sessions_revoked": 2}
    tables = snapshot(harness)
    assert tables["totp_factors"] == [] and tables["recovery_codes"] == []


def test_deactivate_and_reset_refuse_unknown_accounts(harness: Harness) -> None:
    before = snapshot(harness)

    async def work() -> None:
        for operation in (deactivate_account, reset_account_mfa):
            with pytest.raises(NotFound):
                async with transaction(harness.runtime.sessionmaker) as db:
                    await operation(db, "acc_doesnotexist", actor=CLI_ACTOR)

    harness.run(work)
    assert changes(before, snapshot(harness)) == {}
