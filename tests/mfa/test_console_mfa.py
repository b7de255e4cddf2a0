"""Console TOTP MFA: enrolment, the sign-in second step, recovery codes, disabling,
throttling (per account and per IP), and canaries for every secret involved (G17, G28)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from litestar.testing import TestClient

from silver_auth.app import create_app
from silver_auth.core import clock
from silver_auth.core.crypto import Sealer, SealError
from tests.accounts.support import (
    API,
    as_user,
    changes,
    cookie_of,
    enable_mfa,
    events,
    mfa_sign_in,
    next_code,
    only_failure_written,
    post_sign_in,
    problem,
    start,
)
from tests.conftest import base_settings
from tests.dbstate import snapshot
from tests.factories import PASSWORD, ConsoleUser, Harness

ME = f"{API}/me"


def status(user: ConsoleUser) -> dict[str, object]:
    body: dict[str, object] = user.ok("GET", f"{API}/mfa")
    return body


# --- enrolment ---------------------------------------------------------------------------------------


def test_enrolment_answers_secret_uri_and_qr_once_then_a_first_code_enables_mfa(harness: Harness) -> None:
    user = harness.user("enrol@example.com")
    assert status(user) == {
        "enabled": False,
        "confirmed_at": None,
        "pending": False,
        "recovery_codes_remaining": 0,
    }
    started = user.ok("POST", f"{API}/mfa/totp", json={"password": PASSWORD})
    secret = started["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert started["otpauth_uri"].startswith("otpauth://totp/SEQN%20Auth:enrol%40example.com?")
    assert f"secret={secret}" in started["otpauth_uri"] and "issuer=SEQN%20Auth" in started["otpauth_uri"]
    assert started["qr_svg"].startswith("<svg") and "http" not in started["qr_svg"].split(">")[1]
    assert status(user)["pending"] is True and status(user)["enabled"] is False
    assert secret not in str(status(user))

    codes = user.ok("POST", f"{API}/mfa/totp/confirm", json={"code": next_code(secret)})["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", code) for code in codes)
    after = status(user)
    assert after["enabled"] is True and after["pending"] is False and after["confirmed_at"]
    assert after["recovery_codes_remaining"] == 10
    # G6: binding a device mid-session does not make this session an MFA one; a new sign-in with a code does.
    assert user.ok("GET", ME)["mfa"] is False
    (listed,) = user.ok("GET", f"{API}/sessions")["items"]
    assert listed["mfa"] is False
    assert mfa_sign_in(harness, user.email, secret).ok("GET", ME)["mfa"] is True
    (event,) = events(harness, user.account_id, "mfa.enrolled")
    assert event.metadata_ == {"method": "totp"}
    # Already enabled: a new enrolment is refused until MFA is disabled.
    problem(user.post(f"{API}/mfa/totp", json={"password": PASSWORD}), 409, "conflict")


def test_restarting_enrolment_replaces_the_pending_secret(harness: Harness) -> None:
    user = harness.user()
    first = user.ok("POST", f"{API}/mfa/totp", json={"password": PASSWORD})["secret"]
    second = user.ok("POST", f"{API}/mfa/totp", json={"password": PASSWORD})["secret"]
    assert first != second
    assert len(snapshot(harness)["totp_factors"]) == 1
    problem(user.post(f"{API}/mfa/totp/confirm", json={"code": next_code(first)}), 403, "code-refused")
    user.ok("POST", f"{API}/mfa/totp/confirm", json={"code": next_code(second)})


def test_wrong_enrolment_code_writes_only_the_failure(harness: Harness) -> None:
    user = harness.user()
    secret = user.ok("POST", f"{API}/mfa/totp", json={"password": PASSWORD})["secret"]
    right = next_code(secret)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    before = snapshot(harness)
    problem(user.post(f"{API}/mfa/totp/confirm", json={"code": wrong}), 403, "code-refused")
    only_failure_written(harness, before)
    (event,) = events(harness, user.account_id, "mfa.failed")
    assert event.metadata_ == {"stage": "enrolment", "method": "totp"}
    assert status(user)["pending"] is True
    user.ok("POST", f"{API}/mfa/totp/confirm", json={"code": right})


def test_confirm_regenerate_and_disable_without_the_right_state_are_409(harness: Harness) -> None:
    user = harness.user()
    before = snapshot(harness)
    problem(user.post(f"{API}/mfa/totp/confirm", json={"code": "123456"}), 409, "conflict")
    problem(user.post(f"{API}/mfa/recovery-codes", json={"code": "123456"}), 409, "conflict")
    body = {"password": PASSWORD, "code": "123456"}
    problem(user.post(f"{API}/mfa/disable", json=body), 409, "conflict")
    assert changes(before, snapshot(harness)) == {}


def test_g17_secret_is_sealed_to_its_owner_and_recovery_codes_are_keyed_hashes(harness: Harness) -> None:
    user = harness.user()
    other = harness.user()
    mfa = enable_mfa(user)
    enable_mfa(other)
    tables = snapshot(harness)
    dump = repr(tables)
    assert mfa.secret not in dump
    for code in mfa.recovery_codes:
        assert code not in dump and code.replace("-", "") not in dump
    assert len(tables["recovery_codes"]) == 20

    async def sealed() -> dict[str, str]:
        from sqlalchemy import select  # noqa: PLC0415

        from silver_auth.mfa.models import TotpFactor  # noqa: PLC0415

        async with harness.runtime.sessionmaker() as db:
            rows = (await db.scalars(select(TotpFactor))).all()
            return {row.owner_id: row.secret_sealed for row in rows}

    rows = harness.run(sealed)
    ring = harness.settings.sealing_key_ring()
    assert Sealer(ring).unseal(rows[user.account_id], f"totp:{user.account_id}") == mfa.secret
    with pytest.raises(SealError):  # moved onto another owner's row, it does not open
        Sealer(ring).unseal(rows[user.account_id], f"totp:{other.account_id}")


# --- sign-in with a second factor ------------------------------------------------------------------


def test_sign_in_asks_for_the_code_and_the_pending_cookie_is_good_for_nothing_else(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    first = post_sign_in(harness, {"email": user.email, "password": PASSWORD})
    assert first.status_code == 200
    assert first.json() == {"mfa_required": True, "methods": ["totp", "recovery_code"], "expires_in": 300}
    pending = cookie_of(harness, first)
    # The pending cookie is no session: not for reading, not for writing, not in the session list.
    for method, path in (("GET", ME), ("GET", f"{API}/sessions"), ("POST", f"{API}/sessions/revoke-others")):
        harness.client.cookies.clear()
        response = harness.client.request(
            method, path, headers={"cookie": f"{harness.settings.session_cookie_name}={pending}"}
        )
        problem(response, 401, "unauthorized")
    assert len(user.ok("GET", f"{API}/sessions")["items"]) == 1

    done = post_sign_in(harness, {"code": next_code(mfa.secret)}, pending)
    signed_in = as_user(harness, done, user.email)
    body = done.json()
    assert body["mfa"] is True and body["account"]["id"] == user.account_id and body["csrf_token"]
    assert signed_in.cookie != pending  # a new token: the pending one is never promoted
    assert signed_in.ok("GET", ME)["mfa"] is True
    assert len(user.ok("GET", f"{API}/sessions")["items"]) == 2
    # The pending sign-in is used up.
    problem(post_sign_in(harness, {"code": next_code(mfa.secret)}, pending), 401, "unauthorized")


def test_wrong_password_for_an_mfa_account_answers_like_any_wrong_password(harness: Harness) -> None:
    with_mfa = harness.user()
    enable_mfa(with_mfa)
    without = harness.user()
    answers = [
        post_sign_in(harness, {"email": user.email, "password": "not the password!"})
        for user in (with_mfa, without)
    ]
    assert problem(answers[0], 401, "unauthorized") == problem(answers[1], 401, "unauthorized")
    assert all("mfa" not in a.text for a in answers)


def test_wrong_totp_code_at_sign_in_writes_only_the_failure_and_its_audit_event(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    pending = start(harness, user.email)
    right = next_code(mfa.secret)
    wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"
    before = snapshot(harness)
    response = post_sign_in(harness, {"code": wrong}, pending)
    body = problem(response, 401, "mfa-failed")
    assert wrong not in response.text and body["detail"]
    only_failure_written(harness, before)
    (event,) = events(harness, user.account_id, "mfa.failed")
    assert event.actor == user.account_id and event.metadata_ == {"stage": "sign_in", "method": "totp"}
    as_user(harness, post_sign_in(harness, {"code": right}, pending), user.email)  # pending still works


def test_replayed_totp_code_is_refused(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    code = next_code(mfa.secret)
    as_user(harness, post_sign_in(harness, {"code": code}, start(harness, user.email)), user.email)
    pending = start(harness, user.email)
    before = snapshot(harness)
    problem(post_sign_in(harness, {"code": code}, pending), 401, "mfa-failed")  # same step: replay
    only_failure_written(harness, before)


def test_recovery_code_signs_in_once(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    code = mfa.recovery_codes[3]
    done = post_sign_in(
        harness, {"recovery_code": code.upper().replace("-", " ")}, start(harness, user.email)
    )
    assert as_user(harness, done, user.email).ok("GET", ME)["mfa"] is True
    (used,) = events(harness, user.account_id, "mfa.recovery_code_used")
    assert used.metadata_ == {"stage": "sign_in", "remaining": 9}
    assert status(user)["recovery_codes_remaining"] == 9

    pending = start(harness, user.email)
    before = snapshot(harness)
    response = post_sign_in(harness, {"recovery_code": code}, pending)
    problem(response, 401, "mfa-failed")
    assert code not in response.text
    only_failure_written(harness, before)
    (event,) = events(harness, user.account_id, "mfa.failed")
    assert event.metadata_ == {"stage": "sign_in", "method": "recovery_code"}
    done = post_sign_in(harness, {"recovery_code": mfa.recovery_codes[4]}, pending)
    as_user(harness, done, user.email)


def test_expired_pending_sign_in_is_refused_and_writes_nothing(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    pending = start(harness, user.email)
    clock.advance(harness.settings.console_mfa_pending_minutes * 60 + 1)
    before = snapshot(harness)
    code = pyotp.TOTP(mfa.secret).at(clock.now())
    response = post_sign_in(harness, {"code": code}, pending)
    assert "expired" in problem(response, 401, "unauthorized")["detail"]
    assert changes(before, snapshot(harness)) == {}


def test_a_code_without_a_pending_sign_in_or_mixed_with_a_password_is_refused(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    before = snapshot(harness)
    problem(post_sign_in(harness, {"code": "123456"}), 401, "unauthorized")
    problem(post_sign_in(harness, {"code": "123456"}, user.cookie), 401, "unauthorized")  # a real session
    mixed = {"email": user.email, "password": PASSWORD, "code": next_code(mfa.secret)}
    problem(post_sign_in(harness, mixed, start(harness, user.email)), 422, "invalid-request")
    both = {"code": "123456", "recovery_code": mfa.recovery_codes[0]}
    after_start = snapshot(harness)
    problem(post_sign_in(harness, both, start(harness, user.email)), 422, "invalid-request")
    assert changes(after_start, snapshot(harness))["console_sessions"] == (1, 0)  # the new pending row
    assert "auth_failures" not in changes(before, snapshot(harness))


# --- throttling ----------------------------------------------------------------------------------------


@pytest.fixture
def strict(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    settings = base_settings(
        tmp_path,
        DATABASE_URL=database_url,
        CONSOLE_MFA_MAX_FAILURES=3,
        CONSOLE_MFA_IP_MAX_FAILURES=5,
        CONSOLE_MFA_FAILURE_WINDOW_MINUTES=10,
        CONSOLE_MFA_PENDING_MINUTES=30,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Harness(client, settings)


def test_failed_codes_are_throttled_per_account_then_per_ip(strict: Harness) -> None:
    harness = strict
    alice, bob, carol = (harness.user() for _ in range(3))
    secrets = {user.email: enable_mfa(user).secret for user in (alice, bob, carol)}
    pending = {user.email: start(harness, user.email) for user in (alice, bob, carol)}
    for _ in range(3):
        problem(post_sign_in(harness, {"code": "000000"}, pending[alice.email]), 401, "mfa-failed")
    # Alice's account is locked for codes, even the right one; nothing is written while it is.
    before = snapshot(harness)
    locked = post_sign_in(harness, {"code": next_code(secrets[alice.email])}, pending[alice.email])
    problem(locked, 429, "too-many-attempts")
    assert 0 < int(locked.headers["retry-after"]) <= 600
    assert changes(before, snapshot(harness)) == {}
    assert len(events(harness, alice.account_id, "mfa.failed")) == 3
    # Bob is fine (3 failures from this IP so far, the IP limit is 5) until this IP reaches 5.
    for _ in range(2):
        problem(post_sign_in(harness, {"code": "000000"}, pending[bob.email]), 401, "mfa-failed")
    for user in (bob, carol):
        code = next_code(secrets[user.email])
        problem(post_sign_in(harness, {"code": code}, pending[user.email]), 429, "too-many-attempts")
    # The window passes: everyone may try again, and a success clears the account's count.
    clock.advance(10 * 60)
    for user in (alice, bob, carol):
        as_user(
            harness,
            post_sign_in(harness, {"code": next_code(secrets[user.email])}, pending[user.email]),
            user.email,
        )


def test_management_codes_count_against_the_same_throttle(strict: Harness) -> None:
    user = strict.user()
    mfa = enable_mfa(user)
    for _ in range(3):
        problem(user.post(f"{API}/mfa/recovery-codes", json={"code": "000000"}), 403, "code-refused")
    refused = user.post(f"{API}/mfa/recovery-codes", json={"code": next_code(mfa.secret)})
    problem(refused, 429, "too-many-attempts")
    problem(
        post_sign_in(strict, {"code": next_code(mfa.secret)}, start(strict, user.email)),
        429,
        "too-many-attempts",
    )


# --- recovery codes and disabling ------------------------------------------------------------------


def test_regenerating_recovery_codes_needs_a_current_code_and_replaces_the_old_ones(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    before = snapshot(harness)
    problem(user.post(f"{API}/mfa/recovery-codes", json={"code": "000000"}), 403, "code-refused")
    only_failure_written(harness, before)
    new = user.ok("POST", f"{API}/mfa/recovery-codes", json={"code": next_code(mfa.secret)})["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(mfa.recovery_codes)
    assert len(events(harness, user.account_id, "mfa.recovery_codes_regenerated")) == 1
    problem(
        post_sign_in(harness, {"recovery_code": mfa.recovery_codes[0]}, start(harness, user.email)),
        401,
        "mfa-failed",
    )
    as_user(harness, post_sign_in(harness, {"recovery_code": new[0]}, start(harness, user.email)), user.email)


def test_disabling_needs_password_and_code_and_ends_the_other_sessions(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    other = mfa_sign_in(harness, user.email, mfa.secret)
    stranger = harness.user()

    wrong_password = {"password": "not the password!", "code": next_code(mfa.secret)}
    user.get(ME)  # the guard's last-seen bump (after moving the clock) is not the refusal's doing
    before = snapshot(harness)
    problem(user.post(f"{API}/mfa/disable", json=wrong_password), 403, "reauthentication-failed")
    only_failure_written(harness, before)
    before = snapshot(harness)
    problem(
        user.post(f"{API}/mfa/disable", json={"password": PASSWORD, "code": "000000"}), 403, "code-refused"
    )
    only_failure_written(harness, before)
    problem(user.post(f"{API}/mfa/disable", json={"password": PASSWORD}), 422, "invalid-request")

    body = user.ok("POST", f"{API}/mfa/disable", json={"password": PASSWORD, "code": next_code(mfa.secret)})
    assert body == {"sessions_revoked": 1}
    problem(other.get(ME), 401, "unauthorized")
    assert user.get(ME).status_code == 200 and stranger.get(ME).status_code == 200
    assert status(user)["enabled"] is False
    tables = snapshot(harness)
    assert tables["totp_factors"] == [] and tables["recovery_codes"] == []
    (event,) = events(harness, user.account_id, "mfa.disabled")
    assert event.metadata_ == {"sessions_revoked": 1}
    assert post_sign_in(harness, {"email": user.email, "password": PASSWORD}).json()["mfa"] is False


def test_disabling_with_a_recovery_code(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    body = {"password": PASSWORD, "recovery_code": mfa.recovery_codes[0]}
    assert user.ok("POST", f"{API}/mfa/disable", json=body) == {"sessions_revoked": 0}
    assert status(user)["enabled"] is False


# --- canaries ----------------------------------------------------------------------------------------


def test_g28_secrets_never_appear_in_answers_logs_or_audit_rows(
    harness: Harness, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Password, new password, TOTP secret and recovery codes: shown only where they must be (the
    enrolment and confirmation answers), never in a later answer, a log line or an audit row."""
    password = "canary-password-" + "k" * 8
    new_password = "canary-new-password-" + "m" * 8
    email = "canary@example.com"
    harness.create_account(email, password=password)
    user = harness.sign_in(email, password)
    org_id = harness.org(user)["id"]
    mfa = enable_mfa(user, password)
    canaries = {"password": password, "new_password": new_password, "secret": mfa.secret}
    canaries.update({f"recovery_{i}": code for i, code in enumerate(mfa.recovery_codes)})

    answers = []
    # Failures of every kind, then successes of every kind.
    answers.append(post_sign_in(harness, {"email": email, "password": password + "x"}))
    pending = start(harness, email, password)
    answers.append(post_sign_in(harness, {"code": "000000"}, pending))
    answers.append(post_sign_in(harness, {"recovery_code": "aaaaa-bbbbb"}, pending))
    answers.append(post_sign_in(harness, {"recovery_code": mfa.recovery_codes[0]}, pending))
    second = as_user(harness, answers[-1], email)
    answers.append(
        post_sign_in(harness, {"recovery_code": mfa.recovery_codes[0]}, start(harness, email, password))
    )
    answers.append(
        user.post(f"{API}/me/password", json={"current_password": new_password, "new_password": password})
    )
    answers.append(
        user.post(f"{API}/me/password", json={"current_password": password, "new_password": new_password})
    )
    answers.append(user.post(f"{API}/mfa/disable", json={"password": password, "code": "000000"}))
    shown_once = user.post(f"{API}/mfa/recovery-codes", json={"code": next_code(mfa.secret)})
    fresh_codes = shown_once.json()["recovery_codes"]
    canaries.update({f"fresh_{i}": code for i, code in enumerate(fresh_codes)})
    for path in (ME, f"{API}/mfa", f"{API}/sessions", f"{API}/orgs/{org_id}/audit", f"{API}/orgs"):
        answers.append(user.get(path))
    answers.append(second.get(ME))  # revoked by the password change: a 401 problem
    answers.append(
        user.post(f"{API}/mfa/disable", json={"password": new_password, "recovery_code": fresh_codes[1]})
    )

    out, err = capfd.readouterr()
    logs = out + err + caplog.text
    audit_rows = repr(snapshot(harness)["audit_events"])
    database = repr(snapshot(harness))
    for name, canary in canaries.items():
        for response in answers:
            assert canary not in response.text, (name, response.request.url, response.text)
            assert canary not in str(response.headers), name
        assert canary not in logs, name
        assert canary not in audit_rows, name
        assert canary not in database, name  # hashes and sealed values only (G17)
    actions = [event.action for event in events(harness, user.account_id)]
    for action in (
        "mfa.enrolled",
        "mfa.failed",
        "mfa.recovery_code_used",
        "account.reauth_failed",
        "account.password_changed",
        "mfa.recovery_codes_regenerated",
        "mfa.disabled",
    ):
        assert action in actions, action


def test_starting_enrolment_needs_the_password(harness: Harness) -> None:
    """A stolen cookie alone must not bind the thief's authenticator to the account."""
    user = harness.user()
    before = snapshot(harness)
    refused = user.post(f"{API}/mfa/totp", json={"password": PASSWORD + "x"})
    problem(refused, 403, "reauthentication-failed")
    only_failure_written(harness, before)
    assert status(user)["pending"] is False
    problem(user.post(f"{API}/mfa/totp", json={}), 422, "invalid-request")


def test_g6_disabling_mfa_downgrades_the_session_that_did_it(harness: Harness) -> None:
    """The kept session no longer stands on a second factor the account has."""
    admin = harness.user(platform_admin=True)
    mfa = enable_mfa(admin)
    upgraded = mfa_sign_in(harness, admin.email, mfa.secret)
    assert upgraded.get("/admin/api/orgs").status_code == 200
    body = {"password": PASSWORD, "code": next_code(mfa.secret)}
    upgraded.ok("POST", f"{API}/mfa/disable", json=body)
    assert upgraded.ok("GET", ME)["mfa"] is False
    problem(upgraded.get("/admin/api/orgs"), 403, "mfa-required")
