"""Console sign-in through OIDC against a real OpenID provider on loopback (npm oidc-provider): code +
PKCE S256, state, nonce, issuer, audience, expiry, groups sync, admin MFA (G6, G7, G10)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from silver_auth.accounts.models import Account, AccountGroup
from silver_auth.authentik.admin_standing import ADMIN_RECHECK_SECONDS
from silver_auth.authentik.login_states import STATE_COOKIE
from silver_auth.core import clock
from tests.authentik.conftest import authentik_settings
from tests.authentik.support import all_rows_text, audit_rows
from tests.conftest import AppPool
from tests.dbstate import snapshot
from tests.factories import Harness
from tests.peers.authentik_contract import RunningContract
from tests.peers.oidc_provider import OpenIdProvider, run_oidc_provider

ACCOUNTS_URL = "http://127.0.0.1:8000"
CALLBACK = ACCOUNTS_URL + "/console/api/oidc/callback"


@pytest.fixture(scope="session")
def op() -> Iterator[OpenIdProvider]:
    yield from run_oidc_provider(CALLBACK)


@pytest.fixture
def sso(
    apps: AppPool,
    tmp_path: Path,
    database_url: str,
    contract: RunningContract,
    provisioning_token: str,
    op: OpenIdProvider,
) -> Iterator[Harness]:
    settings = authentik_settings(
        tmp_path,
        database_url,
        contract.url,
        provisioning_token,
        SILVER_ACCOUNTS_URL=ACCOUNTS_URL,
        SILVER_CONSOLE_OIDC_ISSUER=op.issuer,
        SILVER_CONSOLE_OIDC_CLIENT_ID=op.client_id,
        SILVER_CONSOLE_OIDC_CLIENT_SECRET=op.client_secret,
    )
    with apps.serve(settings) as client:
        yield Harness(client, settings)


@dataclass
class Person:
    sub: str
    email: str
    groups: list[str]


def person(op: OpenIdProvider, groups: list[str] | None = None, sub: str | None = None) -> Person:
    sub = sub or str(uuid.uuid4())
    email = f"{sub[:8]}@example.com"
    op.account(sub, email=email, name="Ada", preferred_username=sub[:8], groups=groups or [])
    return Person(sub, email, groups or [])


@dataclass
class Started:
    authorization_url: str
    cookie: str


def start(harness: Harness, next_path: str | None = None) -> Started:
    harness.client.cookies.clear()
    params = {"next": next_path} if next_path else {}
    response = harness.client.get("/console/api/oidc/start", params=params, follow_redirects=False)
    assert response.status_code == 303, response.text
    cookie = response.cookies[STATE_COOKIE]
    harness.client.cookies.clear()
    return Started(response.headers["location"], cookie)


def callback(harness: Harness, back: str, cookie: str | None) -> httpx.Response:
    parts = urlsplit(back)
    harness.client.cookies.clear()
    headers = {"cookie": f"{STATE_COOKIE}={cookie}"} if cookie else {}
    return harness.client.get(f"{parts.path}?{parts.query}", headers=headers, follow_redirects=False)


def sign_in(
    harness: Harness,
    op: OpenIdProvider,
    who: Person,
    *,
    amr: str = "pwd",
    tamper: dict[str, Any] | None = None,
) -> httpx.Response:
    started = start(harness)
    back = op.authorize(started.authorization_url, who.sub, amr)
    if tamper is not None:
        op.tamper(**tamper)
    return callback(harness, back, started.cookie)


def me(harness: Harness, response: httpx.Response) -> dict[str, Any]:
    name = harness.settings.session_cookie_name
    harness.client.cookies.clear()
    answer = harness.client.get("/console/api/me", headers={"cookie": f"{name}={response.cookies[name]}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def accounts(harness: Harness) -> list[Account]:
    async def work() -> list[Account]:
        async with harness.runtime.sessionmaker() as db:
            return list((await db.scalars(select(Account))).all())

    return harness.run(work)


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/" + slug), body
    assert harness_cookie_not_set(response)
    return body


def harness_cookie_not_set(response: httpx.Response) -> bool:
    return "silver_session" not in response.cookies


def test_start_sends_pkce_s256_state_and_nonce(sso: Harness, op: OpenIdProvider) -> None:
    started = start(sso)
    query = parse_qs(urlsplit(started.authorization_url).query)
    assert started.authorization_url.startswith(op.issuer)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [op.client_id]
    assert query["redirect_uri"] == [CALLBACK]
    assert set(query["scope"][0].split()) == {"openid", "email", "profile"}
    assert query["state"][0] and query["nonce"][0]
    assert started.cookie.startswith(query["state"][0] + ".")  # the browser holds the state, signed
    assert (
        "client_secret" not in started.authorization_url and op.client_secret not in started.authorization_url
    )


def test_happy_path_creates_the_account_syncs_groups_and_starts_a_session(
    sso: Harness, op: OpenIdProvider
) -> None:
    ada = person(op, ["engineering", "support"])
    response = sign_in(sso, op, ada)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == ACCOUNTS_URL + "/"
    session_cookie = response.cookies[sso.settings.session_cookie_name]
    assert session_cookie
    body = me(sso, response)
    assert body["account"]["email"] == ada.email
    assert body["account"]["groups"] == ["engineering", "support"]
    assert body["mfa"] is False
    [account] = accounts(sso)
    assert (account.source, account.external_subject) == ("authentik", ada.sub)
    actions = [a for a, _ in audit_rows(sso)]
    assert actions.count("account.created") == 1 and actions.count("account.groups_synced") == 1

    # Groups follow Authentik at every sign-in; the account is found again by `sub`.
    op.account(ada.sub, email=ada.email, name="Ada", groups=["engineering"])
    again = sign_in(sso, op, ada)
    assert me(sso, again)["account"]["groups"] == ["engineering"]
    assert len(accounts(sso)) == 1


def test_next_path_is_honoured_and_open_redirects_are_refused(sso: Harness, op: OpenIdProvider) -> None:
    ada = person(op)
    started = start(sso, "/orgs?tab=projects")
    response = callback(sso, op.authorize(started.authorization_url, ada.sub, "pwd"), started.cookie)
    assert response.headers["location"] == ACCOUNTS_URL + "/orgs?tab=projects"
    for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        sso.client.cookies.clear()
        refused = sso.client.get("/console/api/oidc/start", params={"next": hostile}, follow_redirects=False)
        assert refused.status_code == 422, hostile


@pytest.mark.parametrize(
    ("case", "tamper"),
    [
        ("wrong issuer", {"set": {"iss": "https://evil.example"}}),
        ("wrong audience", {"set": {"aud": "someone-else"}}),
        ("expired", {"exp_offset": -600}),
        ("bad nonce", {"set": {"nonce": "not-the-one-we-sent"}}),
        ("no nonce", {"unset": ["nonce"]}),
        ("signed by an unknown key", {"foreign_key": True}),
    ],
)
def test_a_bad_id_token_is_refused_and_writes_nothing(
    sso: Harness, op: OpenIdProvider, case: str, tamper: dict[str, Any]
) -> None:
    ada = person(op, ["SEQN-A"])
    started = start(sso)
    back = op.authorize(started.authorization_url, ada.sub, "pwd,mfa")
    before = snapshot(sso)
    op.tamper(**tamper)
    response = callback(sso, back, started.cookie)
    problem(response, 401, "sso-failed")
    after = snapshot(sso)
    assert after.pop("oidc_logins") == [] and before.pop("oidc_logins") != []  # the state was spent
    assert after == before, case
    assert accounts(sso) == []


def test_a_replayed_state_is_refused(sso: Harness, op: OpenIdProvider) -> None:
    ada = person(op)
    started = start(sso)
    back = op.authorize(started.authorization_url, ada.sub, "pwd")
    assert callback(sso, back, started.cookie).status_code == 303
    before = snapshot(sso)
    problem(callback(sso, back, started.cookie), 400, "sso-state-invalid")
    assert snapshot(sso) == before


def test_a_state_from_another_browser_is_refused(sso: Harness, op: OpenIdProvider) -> None:
    """Login CSRF: an attacker's code and state, delivered to a victim whose browser never started it."""
    ada = person(op)
    attacker = start(sso)
    back = op.authorize(attacker.authorization_url, ada.sub, "pwd")
    victim = start(sso)
    problem(callback(sso, back, None), 400, "sso-state-invalid")
    problem(callback(sso, back, victim.cookie), 400, "sso-state-invalid")
    problem(callback(sso, back, attacker.cookie.split(".")[0] + ".forged"), 400, "sso-state-invalid")


def test_an_error_from_the_provider_is_a_clear_refusal(sso: Harness, op: OpenIdProvider) -> None:
    started = start(sso)
    state = started.cookie.split(".")[0]
    response = callback(sso, f"{CALLBACK}?error=access_denied&state={state}", started.cookie)
    assert "access_denied" in problem(response, 401, "sso-failed")["detail"]


def _seqn_a(contract: RunningContract, op: OpenIdProvider, *, device: bool) -> Person:
    user = contract.state.add_user(f"admin{uuid.uuid4().hex[:6]}", groups=("SEQN-A",))
    if device:
        contract.state.add_device(user["pk"], "totp")
    return person(op, ["SEQN-A"], sub=user["uuid"])


def test_g6_seqn_a_with_mfa_and_a_confirmed_device_gets_an_mfa_session(
    sso: Harness, op: OpenIdProvider, contract: RunningContract
) -> None:
    admin = _seqn_a(contract, op, device=True)
    body = me(sso, sign_in(sso, op, admin, amr="pwd,mfa"))
    assert body["mfa"] is True and "SEQN-A" in body["account"]["groups"]


def test_g6_seqn_a_without_amr_mfa_is_not_an_mfa_session(
    sso: Harness, op: OpenIdProvider, contract: RunningContract
) -> None:
    admin = _seqn_a(contract, op, device=True)
    assert me(sso, sign_in(sso, op, admin, amr="pwd"))["mfa"] is False


def test_g6_amr_mfa_alone_is_not_enough_without_a_confirmed_device(
    sso: Harness, op: OpenIdProvider, contract: RunningContract
) -> None:
    admin = _seqn_a(contract, op, device=False)
    assert me(sso, sign_in(sso, op, admin, amr="pwd,mfa"))["mfa"] is False


def test_password_sign_in_points_to_single_sign_on(sso: Harness) -> None:
    response = sso.client.post("/console/api/sign-in", json={"email": "a@example.com", "password": "x" * 20})
    body = problem(response, 403, "sso-required")
    assert "/console/api/oidc/start" in body["detail"]


def test_an_email_taken_by_another_account_is_not_linked(sso: Harness, op: OpenIdProvider) -> None:
    ada = person(op)
    assert sign_in(sso, op, ada).status_code == 303
    impostor = person(op, sub=str(uuid.uuid4()))
    op.account(impostor.sub, email=ada.email, name="Not Ada", groups=["SEQN-A"])
    problem(sign_in(sso, op, impostor), 409, "conflict")
    assert len(accounts(sso)) == 1


def test_g10_g18_canary_no_client_secret_token_or_code_leaks(
    sso: Harness, op: OpenIdProvider, contract: RunningContract, capfd: pytest.CaptureFixture[str]
) -> None:
    admin = _seqn_a(contract, op, device=True)
    started = start(sso)
    back = op.authorize(started.authorization_url, admin.sub, "pwd,mfa")
    code = parse_qs(urlsplit(back).query)["code"][0]
    response = callback(sso, back, started.cookie)
    answers = [response.text, str(response.headers), str(me(sso, response))]
    answers.append(sso.client.get("/openapi.json").text)
    logs = capfd.readouterr()
    stored = all_rows_text(sso)
    for canary in (op.client_secret, code, sso.settings.authentik_token.get_secret_value()):  # type: ignore[union-attr]
        for where, text in (("answers", "".join(answers)), ("logs", logs.out + logs.err), ("rows", stored)):
            assert canary not in text, f"a secret leaked into {where}"
    assert "eyJ" not in stored  # no ID or access token stored


def test_group_rows_mirror_authentik(sso: Harness, op: OpenIdProvider) -> None:
    ada = person(op, ["a", "b"])
    sign_in(sso, op, ada)

    async def work() -> list[str]:
        async with sso.runtime.sessionmaker() as db:
            return sorted((await db.scalars(select(AccountGroup.group_name))).all())

    assert sso.run(work) == ["a", "b"]


def test_groups_come_from_userinfo_when_the_id_token_has_none(sso: Harness, op: OpenIdProvider) -> None:
    ada = person(op, ["from-userinfo"])
    response = sign_in(sso, op, ada, tamper={"unset": ["groups"]})
    assert me(sso, response)["account"]["groups"] == ["from-userinfo"]


def test_an_unreachable_identity_provider_is_a_503_and_writes_nothing(ak_harness: Harness) -> None:
    before = snapshot(ak_harness)
    ak_harness.client.cookies.clear()
    response = ak_harness.client.get("/console/api/oidc/start", follow_redirects=False)
    problem(response, 503, "identity-provider-unavailable")
    assert STATE_COOKIE not in response.cookies
    assert snapshot(ak_harness) == before


def test_with_the_builtin_backend_the_sso_routes_are_not_there(harness: Harness) -> None:
    for path in ("/console/api/oidc/start", "/console/api/oidc/callback?code=c&state=s"):
        harness.client.cookies.clear()
        body = problem(harness.client.get(path, follow_redirects=False), 404, "not-found")
        assert "builtin" in body["detail"]


def test_g10_public_config_never_carries_authentik_secrets(sso: Harness, op: OpenIdProvider) -> None:
    sso.client.cookies.clear()
    text = sso.client.get("/v1/config").text + sso.client.get("/openapi.json").text
    assert op.client_secret not in text
    assert sso.settings.authentik_token.get_secret_value() not in text  # type: ignore[union-attr]


def test_g6_local_totp_cannot_stand_in_for_authentik_mfa(
    sso: Harness, op: OpenIdProvider, contract: RunningContract
) -> None:
    """With Authentik as the identity engine, passwords and MFA devices are Authentik's: the console's own
    TOTP and password routes are refused, so an SEQN-A session signed in without MFA at Authentik cannot
    bind a device here and become an admin session."""
    admin = _seqn_a(contract, op, device=False)
    response = sign_in(sso, op, admin, amr="pwd")
    body = me(sso, response)
    assert body["mfa"] is False
    name = sso.settings.session_cookie_name
    headers = {"cookie": f"{name}={response.cookies[name]}", "x-csrf-token": body["csrf_token"]}
    sso.client.cookies.clear()
    before = snapshot(sso)
    for path, payload in (
        ("/console/api/mfa/totp", {"password": "whatever-it-may-be"}),
        ("/console/api/mfa/totp/confirm", {"code": "123456"}),
        ("/console/api/me/password", {"current_password": "a" * 12, "new_password": "b" * 12}),
    ):
        refused = sso.client.post(path, headers=headers, json=payload)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("/sso-required")
    assert sso.client.get("/console/api/mfa", headers=headers).json()["type"].endswith("/sso-required")
    assert snapshot(sso) == before
    still = sso.client.get("/admin/api/orgs/", headers=headers)
    assert still.status_code == 403 and still.json()["type"].endswith("/mfa-required")


@pytest.mark.parametrize("change", ["left-group", "device-removed", "deactivated"])
def test_g7_g29_offboarding_in_authentik_ends_admin_access_within_the_recheck_bound(
    sso: Harness, op: OpenIdProvider, contract: RunningContract, change: str
) -> None:
    """Group rows are synced at sign-in only; the admin guard asks Authentik again (at most
    ADMIN_RECHECK_SECONDS later), so offboarding there ends admin access."""
    admin = _seqn_a(contract, op, device=True)
    response = sign_in(sso, op, admin, amr="pwd,mfa")
    name = sso.settings.session_cookie_name
    cookie = {"cookie": f"{name}={response.cookies[name]}"}
    sso.client.cookies.clear()
    assert sso.client.get("/admin/api/orgs/", headers=cookie).status_code == 200
    state = contract.state
    user = next(u for u in state.users.values() if u["uuid"] == admin.sub)
    if change == "left-group":
        state.group_named("SEQN-A")["users"].remove(user["pk"])
    elif change == "device-removed":
        state.devices[:] = [d for d in state.devices if d["user"] != user["pk"]]
    else:
        user["is_active"] = False
    # Within the bound the cached standing may still answer; past it, Authentik's word counts.
    clock.advance(ADMIN_RECHECK_SECONDS + 1)
    later = sso.client.get("/admin/api/orgs/", headers=cookie)
    expected = {"left-group": "forbidden", "device-removed": "mfa-required", "deactivated": "forbidden"}
    assert later.status_code == 403, later.text
    assert later.json()["type"].endswith("/" + expected[change])


def test_admin_access_fails_closed_when_authentik_cannot_answer(
    sso: Harness, op: OpenIdProvider, contract: RunningContract
) -> None:
    admin = _seqn_a(contract, op, device=True)
    response = sign_in(sso, op, admin, amr="pwd,mfa")
    name = sso.settings.session_cookie_name
    cookie = {"cookie": f"{name}={response.cookies[name]}"}
    sso.client.cookies.clear()
    clock.advance(ADMIN_RECHECK_SECONDS + 1)
    contract.state.fail_next[("GET", "/core/users/")] = 503
    refused = sso.client.get("/admin/api/orgs/", headers=cookie)
    assert refused.status_code == 503 and refused.json()["type"].endswith("/identity-provider-unavailable")


def test_g7_the_console_admin_pages_ask_authentik_as_the_admin_api_does(
    sso: Harness, op: OpenIdProvider, contract: RunningContract
) -> None:
    """The console's admin pages run the admin API's guard: Authentik's directory on the page, and
    its word on the admin's standing (refused as HTML pages when it is gone or cannot be had)."""
    admin = _seqn_a(contract, op, device=True)
    response = sign_in(sso, op, admin, amr="pwd,mfa")
    name = sso.settings.session_cookie_name
    cookie = {"cookie": f"{name}={response.cookies[name]}"}
    sso.client.cookies.clear()
    directory = sso.client.get("/console/admin/directory", headers=cookie)
    assert directory.status_code == 200, directory.text
    assert "<strong>authentik</strong>" in directory.text and admin.email in directory.text
    clock.advance(ADMIN_RECHECK_SECONDS + 1)
    contract.state.fail_next[("GET", "/core/users/")] = 503
    down = sso.client.get("/console/admin", headers=cookie)
    assert down.status_code == 503 and down.headers["content-type"].startswith("text/html"), down.text
    user = next(u for u in contract.state.users.values() if u["uuid"] == admin.sub)
    contract.state.group_named("SEQN-A")["users"].remove(user["pk"])
    clock.advance(ADMIN_RECHECK_SECONDS + 1)
    gone = sso.client.get("/console/admin", headers=cookie)
    assert gone.status_code == 403 and gone.headers["content-type"].startswith("text/html"), gone.text
