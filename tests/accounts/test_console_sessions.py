"""Console sessions: sign-in, sign-out, /me, cookie flags, CSRF, expiry, revocation, G11-G14."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from silver_auth.accounts.sessions import ConsoleSessionCodec
from silver_auth.app import create_app
from silver_auth.core import clock
from silver_auth.settings import Settings
from tests.accounts.support import changes
from tests.conftest import base_settings
from tests.dbstate import chain_head_seq, row_count, snapshot
from tests.factories import PASSWORD, Harness

PROBLEM = "application/problem+json"
CSRF_FAILED = "https://seqn.in/problems/csrf-failed"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
ME = "/console/api/me"


@contextmanager
def running(settings: Settings) -> Iterator[Harness]:
    """Another app (a second worker) on the given settings, with its own client and loop."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Harness(client, settings)


def same_secrets(settings: Settings, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for the same database and keys as `settings`, with `overrides` on top."""
    assert settings.database_url is not None and settings.key_pepper and settings.sealing_keys
    values: dict[str, Any] = {
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "SESSION_SECRET": settings.secret("session_secret").decode(),
        "SILVER_KEY_PEPPER": settings.key_pepper.get_secret_value(),
        "SILVER_SEALING_KEYS": settings.sealing_keys.get_secret_value(),
    }
    values.update(overrides)
    return base_settings(tmp_path, **values)


def with_cookie(client: TestClient[Any], settings: Settings, cookie: str, path: str = ME) -> httpx.Response:
    client.cookies.clear()
    return client.get(path, headers={"cookie": f"{settings.session_cookie_name}={cookie}"})


def sign_in_raw(
    client: TestClient[Any], email: str, password: str = PASSWORD, **kwargs: Any
) -> httpx.Response:
    client.cookies.clear()
    response = client.post("/console/api/sign-in", json={"email": email, "password": password}, **kwargs)
    client.cookies.clear()
    return response


def session_cookie(response: httpx.Response, name: str) -> Any:
    """The Set-Cookie morsel for the session cookie (attributes included)."""
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    assert name in jar, response.headers
    return jar[name]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


# --- sign-in, /me, sign-out -------------------------------------------------------------------------


def test_sign_in_answer_and_me_carry_account_and_csrf_token(harness: Harness) -> None:
    email = "Dev.Person@Example.com"
    account_id = harness.create_account(email)
    response = sign_in_raw(harness.client, "  dev.person@example.COM ")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"account", "session_id", "mfa", "csrf_token"}
    assert body["account"]["id"] == account_id
    assert body["account"]["email"] == "dev.person@example.com"
    assert body["account"]["groups"] == []
    datetime.fromisoformat(body["account"]["created_at"])
    assert body["session_id"].startswith("sess")
    assert body["mfa"] is False
    assert isinstance(body["csrf_token"], str) and len(body["csrf_token"]) >= 32

    cookie = session_cookie(response, harness.settings.session_cookie_name).value
    assert cookie not in response.text and PASSWORD not in response.text
    me = with_cookie(harness.client, harness.settings, cookie)
    assert me.status_code == 200, me.text
    assert me.json() == body  # the same account, session and CSRF token
    assert "password" not in me.text and "hash" not in me.text


def test_sign_in_puts_platform_admins_group_in_me(harness: Harness) -> None:
    admin = harness.user(platform_admin=True)
    assert admin.ok("GET", ME)["account"]["groups"] == ["SEQN-A"]


def test_wrong_password_and_unknown_email_get_the_same_401(harness: Harness) -> None:
    email = "known@example.com"
    harness.create_account(email)
    before = snapshot(harness)
    wrong_password = sign_in_raw(harness.client, email, "not the password at all")
    unknown_email = sign_in_raw(harness.client, "nobody@example.com", "not the password at all")
    malformed_email = sign_in_raw(harness.client, "not-an-email", "not the password at all")
    for response in (wrong_password, unknown_email, malformed_email):
        assert_problem(response, 401)
        assert "set-cookie" not in response.headers
        assert response.json() == wrong_password.json()
    assert "known@example.com" not in wrong_password.text
    # No session row; each failure is counted and audited, the same way for all three.
    changed = changes(before, snapshot(harness))
    assert set(changed) == {"auth_failures", "audit_events", "audit_chain_head"}, changed
    assert changed["audit_events"] == (3, 0)


def test_no_cookie_and_anonymous_console_requests_get_401(harness: Harness) -> None:
    harness.client.cookies.clear()
    for path in (ME, "/console/api/sessions", "/console/api/orgs"):
        assert_problem(harness.client.get(path), 401)
    before = snapshot(harness)
    assert_problem(harness.client.post("/console/api/orgs", json={"name": "x"}), 401)
    assert_problem(harness.client.post("/console/api/sign-out"), 401)
    assert snapshot(harness) == before


def test_sign_out_makes_the_cookie_unusable(harness: Harness) -> None:
    user = harness.user()
    other = harness.sign_in(user.email)  # a second session of the same account
    signed_out_id = user.ok("GET", ME)["session_id"]
    response = user.post("/console/api/sign-out")
    assert response.status_code == 204, response.text
    documented = harness.client.get("/openapi.json").json()["paths"]["/console/api/sign-out"]["post"]
    assert set(documented["responses"]) >= {"204"} and "200" not in documented["responses"]  # as answered
    cleared = session_cookie(response, harness.settings.session_cookie_name)
    assert cleared.value == "" and cleared["max-age"] == "0"
    assert cleared["httponly"] and cleared["path"] == "/"

    assert_problem(user.get(ME), 401)
    assert_problem(user.post("/console/api/sign-out"), 401)
    assert_problem(user.post("/console/api/orgs", json={"name": "after sign-out"}), 401)
    assert other.ok("GET", ME)["session_id"] != signed_out_id  # the other session lives on
    assert [item["id"] for item in other.ok("GET", "/console/api/sessions")["items"]] != [signed_out_id]
    assert len(other.ok("GET", "/console/api/sessions")["items"]) == 1


# --- cookie flags (G11, G12) -------------------------------------------------------------------------


def test_session_cookie_is_httponly_lax_and_not_secure_by_default_in_development(harness: Harness) -> None:
    email = "flags@example.com"
    harness.create_account(email)
    response = sign_in_raw(harness.client, email)
    cookie = session_cookie(response, harness.settings.session_cookie_name)
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "lax"
    assert not cookie["secure"]
    assert cookie["path"] == "/"
    assert int(cookie["max-age"]) == harness.settings.session_absolute_hours * 3600
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}\.[A-Za-z0-9_-]{40,}", cookie.value)


def test_g11_session_cookie_is_secure_when_session_cookie_secure(tmp_path: Path, database_url: str) -> None:
    settings = base_settings(tmp_path, DATABASE_URL=database_url, SESSION_COOKIE_SECURE=True)
    with running(settings) as harness:
        email = "secure@example.com"
        harness.create_account(email)
        response = sign_in_raw(harness.client, email)
        cookie = session_cookie(response, settings.session_cookie_name)
        assert cookie["secure"] is True and cookie["httponly"] is True
        assert cookie["samesite"].lower() == "lax"
        signed_out = harness.sign_in(email).post("/console/api/sign-out")
        assert session_cookie(signed_out, settings.session_cookie_name)["secure"] is True


@pytest.mark.parametrize("samesite", ["Strict", "None"])
def test_g12_samesite_follows_settings(tmp_path: Path, database_url: str, samesite: str) -> None:
    settings = base_settings(
        tmp_path, DATABASE_URL=database_url, SESSION_COOKIE_SAMESITE=samesite, SESSION_COOKIE_SECURE=True
    )
    with running(settings) as harness:
        harness.create_account("site@example.com")
        cookie = session_cookie(sign_in_raw(harness.client, "site@example.com"), settings.session_cookie_name)
        assert cookie["samesite"].lower() == samesite.lower()


# --- CSRF and Origin ---------------------------------------------------------------------------------

PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/console/api/orgs"): {"name": "Made through CSRF"},
    ("PATCH", "/console/api/orgs/{org_id}"): {"name": "Renamed through CSRF"},
    ("PATCH", "/console/api/orgs/{org_id}/members/{account_id}"): {"role": "viewer"},
    ("POST", "/console/api/orgs/{org_id}/invitations"): {"role": "viewer"},
    ("POST", "/console/api/orgs/{org_id}/projects"): {"name": "Made through CSRF"},
    ("PATCH", "/console/api/projects/{project_id}"): {"name": "Renamed through CSRF"},
    ("POST", "/console/api/projects/{project_id}/keys"): {"kind": "secret", "environment": "test"},
    ("POST", "/console/api/keys/{key_id}/rotate"): {"grace_seconds": 0},
}
LAST = ("/leave", "/console/api/orgs/{org_id}", "revoke-others", "/sign-out")


def unsafe_console_routes(app: Litestar) -> list[tuple[str, str]]:
    """Every unsafe console method the app serves, sign-in excepted, as (method, path template)."""
    found = set()
    for route in app.routes:
        if not route.path.startswith("/console/api/"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if handler.opt.get("access") == "public":
                continue
            for method in handler.http_methods:
                if method in UNSAFE:
                    found.add((method, PARAM.sub(lambda m: "{" + m.group(1) + "}", route.path)))

    def destructive_last(item: tuple[str, str]) -> tuple[int, int, str, str]:
        method, path = item
        rank = next((i + 1 for i, end in enumerate(LAST) if path.endswith(end) and method != "PATCH"), 0)
        return (rank, method == "DELETE", path, method)

    return sorted(found, key=destructive_last)


def test_csrf_every_unsafe_console_route_refuses_missing_wrong_and_foreign_tokens(harness: Harness) -> None:
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    key = harness.key(owner, project["id"])
    member = harness.member(owner, org["id"], "developer")
    invitation = owner.ok("POST", f"/console/api/orgs/{org['id']}/invitations", 201, json={"role": "viewer"})
    stranger = harness.user()
    stranger_org = harness.org(stranger, "Elsewhere")
    foreign_invite = stranger.ok(
        "POST", f"/console/api/orgs/{stranger_org['id']}/invitations", 201, json={"role": "viewer"}
    )
    owner_elsewhere = harness.sign_in(owner.email)  # the same account, another session
    other_session_id = owner_elsewhere.ok("GET", ME)["session_id"]
    ids = {
        "org_id": org["id"],
        "project_id": project["id"],
        "key_id": key["id"],
        "account_id": member.account_id,
        "invitation_id": invitation["id"],
        "session_id": other_session_id,
    }
    bodies = {**BODIES, ("POST", "/console/api/invitations/accept"): {"token": foreign_invite["token"]}}

    routes = unsafe_console_routes(harness.client.app)
    assert ("POST", "/console/api/orgs") in routes and ("POST", "/console/api/sign-out") in routes
    assert ("DELETE", "/console/api/keys/{key_id}") in routes
    assert ("POST", "/console/api/sign-in") not in routes
    assert routes[-1] == ("POST", "/console/api/sign-out")

    bad_tokens = {
        "missing": None,
        "empty": "",
        "wrong": secrets.token_urlsafe(32),
        "another session's": owner_elsewhere.csrf_token,
        "another account's": stranger.csrf_token,
        "non-ascii": "\u00e9" * 43,
    }
    for method, template in routes:
        path = PARAM.sub(lambda m: ids.get(m.group(1), f"{m.group(1)}_unknown"), template)
        body = bodies.get((method, template), {})
        before = snapshot(harness)
        for label, token in bad_tokens.items():
            headers = {} if token is None else {"x-csrf-token": token.encode("latin-1")}
            response = owner.request(method, path, csrf=False, headers=headers, json=body)
            problem = assert_problem(response, 403)
            assert problem["type"] == CSRF_FAILED, (method, template, label, problem)
        assert snapshot(harness) == before, (method, template)

        # The same request with the session's own token passes the CSRF check.
        control = owner.request(method, path, json=body)
        assert control.status_code != 401, (method, template, control.text)
        if control.status_code == 403:
            assert control.json()["type"] != CSRF_FAILED, (method, template)


def test_csrf_token_is_not_needed_for_safe_methods(harness: Harness) -> None:
    user = harness.user()
    for path in (ME, "/console/api/sessions", "/console/api/orgs"):
        assert user.request("GET", path, csrf=False).status_code == 200


def test_sign_in_with_a_foreign_origin_is_refused(harness: Harness) -> None:
    email = "origin@example.com"
    harness.create_account(email)
    before = snapshot(harness)
    for origin in ("https://evil.example", "null", "http://127.0.0.1:8001", "https://127.0.0.1:8000"):
        response = sign_in_raw(harness.client, email, headers={"origin": origin})
        assert assert_problem(response, 403)["type"] == CSRF_FAILED
        assert "set-cookie" not in response.headers
    assert snapshot(harness) == before

    own = harness.settings.accounts_url
    for origin in (own, own + "/"):
        assert sign_in_raw(harness.client, email, headers={"origin": origin}).status_code == 200
    assert sign_in_raw(harness.client, email).status_code == 200  # non-browser clients send no Origin


def test_unsafe_console_request_from_a_foreign_origin_is_refused_even_with_the_token(
    harness: Harness,
) -> None:
    user = harness.user()
    before = snapshot(harness)
    response = user.post("/console/api/orgs", json={"name": "x"}, headers={"origin": "https://evil.example"})
    assert assert_problem(response, 403)["type"] == CSRF_FAILED
    assert snapshot(harness) == before
    own = user.post(
        "/console/api/orgs", json={"name": "x"}, headers={"origin": harness.settings.accounts_url}
    )
    assert own.status_code == 201, own.text


# --- forged cookies and SESSION_SECRET (G14) -----------------------------------------------------------


def test_forged_and_tampered_cookies_get_401(harness: Harness, tmp_path: Path) -> None:
    user = harness.user()
    token, _, signature = user.cookie.partition(".")
    codec = harness.runtime.sessions
    foreign_codec = ConsoleSessionCodec(base_settings(tmp_path / "other"))
    flip = {"A": "B"}

    def flipped(text: str) -> str:
        return text[:-1] + flip.get(text[-1], "A")

    forged = {
        "garbage": "garbage",
        "empty": "",
        "token without signature": token,
        "token and dot": token + ".",
        "signature only": "." + signature,
        "tampered signature": f"{token}.{flipped(signature)}",
        "tampered token": f"{flipped(token)}.{signature}",
        "extra part": f"{user.cookie}.x",
        "signed with another secret": foreign_codec.cookie_for(token),
        "validly signed, never issued": codec.cookie_for(secrets.token_urlsafe(32)),
        "non-ascii signature": f"{token}.{chr(233) * len(signature)}",
    }
    before = snapshot(harness)
    for label, cookie in forged.items():
        response = harness.client.get(
            ME, headers={"cookie": f"{harness.settings.session_cookie_name}={cookie}".encode("latin-1")}
        )
        assert response.status_code == 401, (label, response.text)
        assert_problem(response, 401)
        harness.client.cookies.clear()
    forged_user = replace(user, cookie=f"{token}.{flipped(signature)}")
    assert_problem(forged_user.post("/console/api/orgs", json={"name": "forged"}), 401)
    assert snapshot(harness) == before
    assert user.get(ME).status_code == 200  # the real cookie still works


def test_g14_changing_session_secret_signs_everyone_out(harness: Harness, tmp_path: Path) -> None:
    user = harness.user()
    assert user.get(ME).status_code == 200

    # A second app on the same database and the same secret accepts the cookie...
    with running(same_secrets(harness.settings, tmp_path / "same")) as same:
        assert replace(user, client=same.client).get(ME).status_code == 200

    # ...one with a new SESSION_SECRET refuses it and its CSRF token, and lets the account sign in again.
    rotated_settings = same_secrets(
        harness.settings, tmp_path / "rotated", SESSION_SECRET=secrets.token_urlsafe(40)
    )
    with running(rotated_settings) as rotated:
        stale = replace(user, client=rotated.client)
        assert_problem(stale.get(ME), 401)
        assert_problem(stale.get("/console/api/sessions"), 401)
        before = chain_head_seq(rotated)
        assert_problem(stale.post("/console/api/orgs", json={"name": "stale"}), 401)
        assert chain_head_seq(rotated) == before
        fresh = rotated.sign_in(user.email)
        assert fresh.get(ME).status_code == 200
        assert fresh.csrf_token != user.csrf_token
        # the cookie issued under the new secret means nothing under the old one
        assert_problem(replace(fresh, client=harness.client).get(ME), 401)


# --- expiry ------------------------------------------------------------------------------------------


@pytest.fixture
def short_sessions(tmp_path: Path, database_url: str) -> Iterator[Harness]:
    settings = base_settings(
        tmp_path, DATABASE_URL=database_url, SESSION_IDLE_MINUTES=30, SESSION_ABSOLUTE_HOURS=2
    )
    with running(settings) as harness:
        yield harness


def test_idle_session_expires_and_activity_keeps_it_alive(short_sessions: Harness) -> None:
    user = short_sessions.user()
    clock.advance(29 * 60)
    assert user.get(ME).status_code == 200  # 29 idle minutes: fine, and the activity counts
    clock.advance(29 * 60)
    assert user.get(ME).status_code == 200  # 58 minutes after sign-in, 29 after the last request
    clock.advance(30 * 60 + 1)
    assert_problem(user.get(ME), 401)  # idle for more than 30 minutes
    assert_problem(user.get("/console/api/sessions"), 401)


def test_idle_expiry_also_applies_to_a_session_never_used_after_sign_in(short_sessions: Harness) -> None:
    user = short_sessions.user()
    clock.advance(30 * 60)
    assert_problem(user.get(ME), 401)


def test_absolute_expiry_ends_even_an_active_session(short_sessions: Harness) -> None:
    user = short_sessions.user()
    for _ in range(4):  # active every 25 minutes: never idle
        clock.advance(25 * 60)
        assert user.get(ME).status_code == 200
    clock.advance(19 * 60)  # 119 minutes after sign-in
    assert user.get(ME).status_code == 200
    clock.advance(2 * 60)  # 121 minutes: past the 2-hour absolute lifetime
    assert_problem(user.get(ME), 401)
    again = short_sessions.sign_in(user.email)  # signing in again starts a fresh session
    assert again.get(ME).status_code == 200


# --- the account's sessions ----------------------------------------------------------------------------


def test_sessions_list_and_revoke_one(harness: Harness) -> None:
    first = harness.user()
    harness.client.headers["user-agent"] = "second-browser/1.0"
    try:
        second = harness.sign_in(first.email)
    finally:
        del harness.client.headers["user-agent"]
    third = harness.sign_in(first.email)

    listed = first.ok("GET", "/console/api/sessions")["items"]
    assert len(listed) == 3
    assert {item["id"] for item in listed} == {u.ok("GET", ME)["session_id"] for u in (first, second, third)}
    first_id = first.ok("GET", ME)["session_id"]
    second_id = second.ok("GET", ME)["session_id"]
    assert [item["current"] for item in listed if item["id"] == first_id] == [True]
    assert sum(item["current"] for item in listed) == 1
    for item in listed:
        assert set(item) == {
            "id",
            "current",
            "created_at",
            "last_seen_at",
            "expires_at",
            "ip",
            "user_agent",
            "device",
            "mfa",
        }
    assert [i["user_agent"] for i in listed if i["id"] == second_id] == ["second-browser/1.0"]
    assert second.cookie.split(".")[0] not in str(listed)

    response = first.delete(f"/console/api/sessions/{second_id}")
    assert response.status_code == 204, response.text
    assert_problem(second.get(ME), 401)  # the revoked cookie fails on its very next request
    assert first.get(ME).status_code == 200 and third.get(ME).status_code == 200
    remaining = {item["id"] for item in first.ok("GET", "/console/api/sessions")["items"]}
    assert second_id not in remaining and len(remaining) == 2
    assert_problem(first.delete(f"/console/api/sessions/{second_id}"), 404)  # already revoked


def test_revoking_another_accounts_session_is_404_and_changes_nothing(harness: Harness) -> None:
    victim = harness.user()
    attacker = harness.user()
    victim_session = victim.ok("GET", ME)["session_id"]
    before = snapshot(harness)
    assert_problem(attacker.delete(f"/console/api/sessions/{victim_session}"), 404)
    assert_problem(attacker.delete("/console/api/sessions/sess_doesnotexist"), 404)
    assert snapshot(harness) == before
    assert victim.get(ME).status_code == 200


def test_revoke_others_keeps_only_the_current_session(harness: Harness) -> None:
    keep = harness.user()
    others = [harness.sign_in(keep.email) for _ in range(2)]
    stranger = harness.user()
    assert keep.ok("POST", "/console/api/sessions/revoke-others") == {"revoked": 2}
    for other in others:
        assert_problem(other.get(ME), 401)
    assert keep.get(ME).status_code == 200
    assert stranger.get(ME).status_code == 200  # another account's sessions are untouched
    items = keep.ok("GET", "/console/api/sessions")["items"]
    assert [item["current"] for item in items] == [True]
    assert keep.ok("POST", "/console/api/sessions/revoke-others") == {"revoked": 0}


def test_revoking_the_current_session_ends_it(harness: Harness) -> None:
    user = harness.user()
    own = user.ok("GET", ME)["session_id"]
    assert user.delete(f"/console/api/sessions/{own}").status_code == 204
    assert_problem(user.get(ME), 401)


def test_revoked_session_fails_on_another_worker_sharing_the_database(
    harness: Harness, tmp_path: Path
) -> None:
    user = harness.user()
    spare = harness.sign_in(user.email)
    with running(same_secrets(harness.settings, tmp_path / "worker2")) as worker2:
        on_worker2 = replace(user, client=worker2.client)
        spare_on_worker2 = replace(spare, client=worker2.client)
        assert on_worker2.get(ME).status_code == 200
        assert spare_on_worker2.get(ME).status_code == 200

        # sign-out on worker 1: worker 2 refuses the cookie at once
        assert user.post("/console/api/sign-out").status_code == 204
        assert_problem(on_worker2.get(ME), 401)

        # revocation through worker 2: worker 1 refuses at once
        spare_id = spare.ok("GET", ME)["session_id"]
        fresh = worker2.sign_in(user.email)
        assert fresh.delete(f"/console/api/sessions/{spare_id}").status_code == 204
        assert_problem(spare.get(ME), 401)
        assert_problem(spare_on_worker2.get(ME), 401)


def test_session_rows_store_no_cookie_token(harness: Harness) -> None:
    user = harness.user()
    token = user.cookie.split(".")[0]
    state = snapshot(harness)
    assert row_count(harness, "console_sessions") == 1
    dump = repr(state)
    assert token not in dump and user.cookie not in dump and user.csrf_token not in dump
