"""Session control (G29): readable devices, offboarding ends sessions, and every revocation holds on
every worker at the next request."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from silver_auth.accounts.devices import device_label
from tests.accounts.support import enable_mfa, events, mfa_sign_in, next_code, problem
from tests.accounts.test_console_sessions import running, same_secrets
from tests.factories import PASSWORD, ConsoleUser, Harness

API = "/console/api"
ME = f"{API}/me"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
EDGE_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "label"),
    [
        (FIREFOX_LINUX, "Firefox on Linux"),
        (CHROME_WINDOWS, "Chrome on Windows"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (EDGE_MAC, "Edge on macOS"),
        (CHROME_ANDROID, "Chrome on Android"),
        ("curl/8.5.0", "curl"),
        ("python-httpx/0.28.1", "Python"),
        ("something/1.0 (Windows NT 10.0)", "Windows"),
        ("", "Unknown device"),
        (None, "Unknown device"),
        ("\x00\x01 garbage", "Unknown device"),
    ],
)
def test_g29_device_label_from_user_agent(user_agent: str | None, label: str) -> None:
    assert device_label(user_agent) == label


def test_g29_session_list_shows_device_ip_times_and_mfa(harness: Harness) -> None:
    user = harness.user()
    mfa = enable_mfa(user)
    harness.client.headers["user-agent"] = FIREFOX_LINUX
    try:
        phone = mfa_sign_in(harness, user.email, mfa.secret)
    finally:
        del harness.client.headers["user-agent"]
    items = {item["id"]: item for item in user.ok("GET", f"{API}/sessions")["items"]}
    mine = items[user.ok("GET", ME)["session_id"]]
    other = items[phone.ok("GET", ME)["session_id"]]
    assert other["device"] == "Firefox on Linux" and other["user_agent"] == FIREFOX_LINUX
    assert other["mfa"] is True and other["current"] is False
    assert mine["current"] is True and mine["mfa"] is False  # confirming an enrolment is no MFA sign-in
    for item in (mine, other):
        assert item["ip"] and item["created_at"] and item["last_seen_at"] and item["expires_at"]
    plain = harness.user()
    (only,) = plain.ok("GET", f"{API}/sessions")["items"]
    assert only["mfa"] is False and only["device"] == "Unknown device"  # the test client says "testclient"


def test_g29_removing_a_member_ends_all_their_sessions(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    member = harness.member(owner, org_id, "developer")
    second = harness.sign_in(member.email)
    owner.ok("DELETE", f"{API}/orgs/{org_id}/members/{member.account_id}", 204)
    for session in (member, second):
        problem(session.get(ME), 401, "unauthorized")
    assert owner.get(ME).status_code == 200
    (removed,) = events(harness, member.account_id, "member.removed")
    assert removed.metadata_ == {"role": "developer", "sessions_revoked": 2}
    assert removed.org_id == org_id


def test_g29_leaving_an_org_ends_the_other_sessions_and_keeps_this_one(harness: Harness) -> None:
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    member = harness.member(owner, org_id, "viewer")
    elsewhere = harness.sign_in(member.email)
    member.ok("POST", f"{API}/orgs/{org_id}/leave", 204)
    assert member.get(ME).status_code == 200
    problem(elsewhere.get(ME), 401, "unauthorized")
    (removed,) = events(harness, member.account_id, "member.removed")
    assert removed.metadata_ == {"role": "viewer", "sessions_revoked": 1}


def test_g29_every_revocation_holds_on_another_worker_at_its_next_request(
    harness: Harness, tmp_path: Path
) -> None:
    """Two app instances over one database: whatever ends a session through one, the other refuses
    that cookie on its very next request (no cache of sessions anywhere)."""
    owner = harness.user()
    org_id = harness.org(owner)["id"]
    member = harness.member(owner, org_id, "admin")
    member_extra = harness.sign_in(member.email)
    user = harness.user()
    user_extra = harness.sign_in(user.email)
    with running(same_secrets(harness.settings, tmp_path / "worker2")) as worker2:

        def there(session: ConsoleUser) -> ConsoleUser:
            return replace(session, client=worker2.client)

        sessions = [there(s) for s in (member, member_extra, user, user_extra)]
        for session in sessions:
            assert session.get(ME).status_code == 200

        # revoke-others on worker 1 -> worker 2 refuses the other cookie
        assert user.ok("POST", f"{API}/sessions/revoke-others") == {"revoked": 1}
        problem(sessions[3].get(ME), 401, "unauthorized")
        # MFA disabled through worker 2 -> the session signed in through worker 1 is refused there
        on2 = sessions[2]
        mfa = enable_mfa(on2)
        phone = mfa_sign_in(harness, user.email, mfa.secret)  # signed in through worker 1
        body = {"password": PASSWORD, "code": next_code(mfa.secret)}
        assert on2.ok("POST", f"{API}/mfa/disable", json=body) == {"sessions_revoked": 1}
        problem(phone.get(ME), 401, "unauthorized")

        # offboarding through worker 2 -> both of the member's cookies fail on worker 1
        there_owner = there(owner)
        there_owner.ok("DELETE", f"{API}/orgs/{org_id}/members/{member.account_id}", 204)
        problem(member.get(ME), 401, "unauthorized")
        problem(member_extra.get(ME), 401, "unauthorized")


def _account_events(harness: Harness, account_id: str) -> list[tuple[str, str | None, str | None]]:
    async def work() -> list[tuple[str, str | None, str | None]]:
        async with harness.runtime.engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT action, target, actor_ip FROM audit_events WHERE actor = :a ORDER BY at"),
                {"a": account_id},
            )
            return [(row.action, row.target, row.actor_ip) for row in rows]

    return harness.run(work)


def test_g27_g29_console_sign_in_sign_out_and_revocations_are_audited(harness: Harness) -> None:
    first = harness.user("audited@example.com")
    second = harness.sign_in("audited@example.com")
    third = harness.sign_in("audited@example.com")
    sessions = {s["id"]: s for s in first.ok("GET", "/console/api/sessions")["items"]}
    current = next(s for s in sessions.values() if s["current"])["id"]
    other = next(s for s in sessions if s != current)
    first.ok("DELETE", f"/console/api/sessions/{other}", 204)
    first.ok("POST", "/console/api/sessions/revoke-others")
    assert (
        second.get("/console/api/me").status_code == 401 and third.get("/console/api/me").status_code == 401
    )
    first.ok("POST", "/console/api/sign-out", 204)
    actions = [action for action, _, _ in _account_events(harness, first.account_id)]
    assert actions.count("account.signed_in") == 3
    assert actions[-3:] == ["account.session_revoked", "account.sessions_revoked", "account.signed_out"]
    events = _account_events(harness, first.account_id)
    assert ("account.session_revoked", other) in [(a, t) for a, t, _ in events]
    assert all(ip is not None for _, _, ip in events)  # each names the source address
