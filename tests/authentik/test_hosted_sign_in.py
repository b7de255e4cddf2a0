"""Hosted end-user sign-in through the project's Authentik application (SILVER_IDENTITY=authentik).

The project is provisioned for real at the contract server; a real OpenID provider (npm oidc-provider)
then stands in for that application, with the client id and secret the contract server issued,
reached through the contract server's host at Authentik's paths (G10, G12, G18, G29).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import select

from silver_auth.authentik import applications as provisioning
from silver_auth.authentik.login_states import STATE_COOKIE
from silver_auth.core import clock
from silver_auth.core.errors import QuotaExceeded
from silver_auth.core.ids import new_id
from silver_auth.core.urls import session_jwt_issuer
from silver_auth.db.session import transaction
from silver_auth.endusers.grants import pkce_s256
from silver_auth.endusers.models import EndUser
from silver_auth.plans.service import allowance, plan_for
from tests.authentik.support import all_rows_text, audit_rows, sso_user
from tests.dbstate import snapshot
from tests.endusers.support import REDIRECT, Browser, CustomerProject, backend, code_from, exchange
from tests.factories import Harness
from tests.peers.authentik_contract import RunningContract
from tests.peers.oidc_provider import OpenIdProvider, run_oidc_provider

pytestmark = pytest.mark.slow  # each test starts its own OpenID provider (node) for its project


@dataclass
class World:
    harness: Harness
    contract: RunningContract
    project: CustomerProject
    op: OpenIdProvider
    client_secret: str
    seen: list[httpx.Response]
    """Every answer Silver gave in the test, for the canary."""

    def browser(self) -> Browser:
        return Browser(self.harness)

    def start(self, browser: Browser, page: str = "sign-in", **params: str) -> httpx.Response:
        query = {"redirect_url": REDIRECT, "state": "st-1", **params}
        response = browser.get(self.project.pages(page), **query)
        self.seen.append(response)
        return response

    def back(self, browser: Browser, url: str) -> httpx.Response:
        parts = urlsplit(url)
        response = browser.get(parts.path, **dict(parse_qsl(parts.query)))
        self.seen.append(response)
        return response

    def person(self, sub: str | None = None) -> tuple[str, str]:
        sub = sub or str(uuid.uuid4())
        email = f"{sub[:8]}@example.com"
        self.op.account(sub, email=email, name="Ada")
        return sub, email

    def sign_in(
        self, sub: str, *, amr: str = "pwd", tamper: dict[str, Any] | None = None, **params: str
    ) -> tuple[Browser, httpx.Response]:
        browser = self.browser()
        started = self.start(browser, **params)
        assert started.status_code == 303, started.text
        back = self.op.authorize(started.headers["location"], sub, amr)
        if tamper is not None:
            self.op.tamper(**tamper)
        return browser, self.back(browser, back)


@pytest.fixture
def world(ak_harness: Harness, contract: RunningContract) -> Iterator[World]:
    owner = sso_user(ak_harness)
    org_id = ak_harness.org(owner)["id"]
    project_id = ak_harness.project(owner, org_id, "Shop")["id"]
    owner.ok("PATCH", f"/console/api/projects/{project_id}", json={"redirect_urls": [REDIRECT]})
    publishable = ak_harness.key(owner, project_id, "publishable", "test")["key"]
    secret_key = ak_harness.key(owner, project_id, "secret", "test")["key"]
    project = CustomerProject(owner, org_id, project_id, "test", publishable, secret_key)
    [provider] = contract.state.providers.values()
    [slug] = contract.state.applications
    settings = ak_harness.settings
    for op in run_oidc_provider(
        provisioning.hosted_callback(settings, project_id),
        client_id=provider["client_id"],
        client_secret=provider["client_secret"],
        issuer=provisioning.authentik_issuer(settings, slug),
    ):
        contract.server.oidc_upstream = op.origin
        yield World(ak_harness, contract, project, op, provider["client_secret"], [])


def end_users(harness: Harness) -> list[EndUser]:
    async def work() -> list[EndUser]:
        async with harness.runtime.sessionmaker() as db:
            return list((await db.scalars(select(EndUser))).all())

    return harness.run(work)


def test_sign_in_goes_to_the_projects_application_with_pkce_state_and_nonce(world: World) -> None:
    browser = world.browser()
    started = world.start(browser, code_challenge="x" * 43, code_challenge_method="S256")
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    assert location.startswith(world.contract.url + "/application/o/authorize/?")
    query = parse_qs(urlsplit(location).query)
    assert query["client_id"] == [world.op.client_id]
    assert query["redirect_uri"] == [
        provisioning.hosted_callback(world.harness.settings, world.project.project_id)
    ]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["code_challenge"] != ["x" * 43]  # ours, not the customer's
    assert query["state"][0] != "st-1" and query["nonce"][0]
    assert browser.cookies[STATE_COOKIE].startswith(query["state"][0] + ".")
    assert world.client_secret not in location
    # Sign-up goes the same way (Authentik's flow decides about enrolment).
    assert world.start(world.browser(), "sign-up").status_code == 303


def test_happy_path_ends_with_a_session_jwt_the_customer_verifies(world: World) -> None:
    sub, email = world.person()
    browser, back = world.sign_in(sub, amr="pwd,mfa")
    code, query = code_from(back)
    assert query["state"] == ["st-1"]  # the customer's own state, passed through
    assert world.harness.settings.end_user_cookie_name in browser.cookies
    assert STATE_COOKIE not in browser.cookies  # single-use: cleared on the way back

    answer = exchange(world.harness, world.project, code)
    world.seen.append(answer)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    token = body["jwt"]
    world.harness.client.cookies.clear()
    jwks = world.harness.client.get(f"/v1/projects/{world.project.project_id}/jwks.json")
    key = jwt.PyJWKSet.from_dict(jwks.json())[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        audience=world.project.project_id,
        issuer=session_jwt_issuer(world.harness.settings.auth_url, world.project.project_id),
    )
    assert claims["sub"] == body["user_id"] and claims["env"] == "test"
    verdict = backend(world.harness, world.project, "POST", "/sessions/verify", json={"token": token}).json()
    assert verdict["valid"] is True and verdict["user"]["email"] == email
    assert verdict["session"]["mfa"] is True  # Authentik's amr said so

    [user] = end_users(world.harness)
    assert (user.external_subject, user.email, user.password_hash) == (sub, email, None)
    assert [a for a, _ in audit_rows(world.harness)].count("end_user.created") == 1

    # The next sign-in finds the same end-user by `sub`, even with another email at Authentik.
    world.op.account(sub, email="renamed@example.com", name="Ada")
    _, again = world.sign_in(sub)
    code_from(again)
    assert [u.id for u in end_users(world.harness)] == [user.id]


@pytest.mark.parametrize(
    "hostile",
    ["https://evil.example/callback", REDIRECT + "/", "//evil.example", REDIRECT.upper()],
)
def test_open_redirects_are_refused_before_anything_is_written(world: World, hostile: str) -> None:
    before = snapshot(world.harness)
    refused = world.start(world.browser(), redirect_url=hostile)
    assert refused.status_code == 400
    assert "location" not in refused.headers and "not registered" in refused.text
    assert snapshot(world.harness) == before


def test_a_replayed_state_is_refused(world: World) -> None:
    sub, _ = world.person()
    browser = world.browser()
    started = world.start(browser)
    back = world.op.authorize(started.headers["location"], sub, "pwd")
    cookie = browser.cookies[STATE_COOKIE]
    code_from(world.back(browser, back))
    browser.cookies[STATE_COOKIE] = cookie  # the same state, cookie and code once more
    replayed = world.back(browser, back)
    assert replayed.status_code == 400 and "already used" in replayed.text
    assert "location" not in replayed.headers


def test_a_state_from_another_browser_or_project_is_refused(world: World) -> None:
    sub, _ = world.person()
    browser = world.browser()
    started = world.start(browser)
    back = world.op.authorize(started.headers["location"], sub, "pwd")

    stranger = world.browser()  # login CSRF: no state cookie, or another browser's
    assert world.back(stranger, back).status_code == 400
    world.start(stranger)
    assert world.back(stranger, back).status_code == 400

    # The right browser, but the callback of another project: the state was not started there.
    other_id = world.harness.project(world.project.owner, world.project.org_id, "Other")["id"]
    foreign = back.replace(world.project.project_id, other_id)
    refused = world.back(browser, foreign)
    assert refused.status_code == 400 and "location" not in refused.headers
    assert end_users(world.harness) == []


@pytest.mark.parametrize(
    ("case", "tamper"),
    [
        ("wrong issuer", {"set": {"iss": "https://evil.example/application/o/shop/"}}),
        ("wrong audience", {"set": {"aud": "someone-else"}}),
        ("bad nonce", {"set": {"nonce": "not-the-one-we-sent"}}),
        ("expired", {"exp_offset": -600}),
        ("signed by an unknown key", {"foreign_key": True}),
    ],
)
def test_an_id_token_that_does_not_verify_is_refused(world: World, case: str, tamper: dict[str, Any]) -> None:
    sub, _ = world.person()
    browser, refused = world.sign_in(sub, tamper=tamper)
    assert refused.status_code == 401, (case, refused.text)
    assert "location" not in refused.headers
    assert world.harness.settings.end_user_cookie_name not in browser.cookies
    assert end_users(world.harness) == []


def test_g29_a_banned_end_user_is_refused(world: World) -> None:
    sub, _ = world.person()
    _, first = world.sign_in(sub)
    code_from(first)
    [user] = end_users(world.harness)
    banned = backend(world.harness, world.project, "POST", f"/users/{user.id}/ban")
    assert banned.status_code == 200, banned.text
    browser, refused = world.sign_in(sub)
    assert refused.status_code == 403 and "location" not in refused.headers
    assert world.harness.settings.end_user_cookie_name not in browser.cookies


def test_no_link_by_email_to_an_existing_end_user(world: World) -> None:
    sub, email = world.person()
    made = backend(world.harness, world.project, "POST", "/users", json={"email": email})
    assert made.status_code == 201, made.text
    _, refused = world.sign_in(sub)
    assert refused.status_code == 409 and "location" not in refused.headers
    assert len(end_users(world.harness)) == 1


def test_g10_the_client_secret_is_in_no_page_answer_log_or_audit_row(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    sub, _ = world.person()
    code_from(world.sign_in(sub)[1])
    world.sign_in(sub, tamper={"set": {"aud": "someone-else"}})
    browser = world.browser()  # Authentik says no: its error comes back to the callback
    started = world.start(browser)
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    callback = f"/p/{world.project.project_id}/oidc/callback?state={state}&error=access_denied"
    assert world.back(browser, callback).status_code == 401
    secret = world.client_secret
    for response in world.seen:
        assert secret not in response.text and secret not in str(response.headers)
    assert secret not in repr(audit_rows(world.harness))
    assert secret not in all_rows_text(world.harness)
    captured = capfd.readouterr()
    assert secret not in captured.out + captured.err


def test_a_first_sign_in_counts_against_the_plans_end_user_quota(world: World) -> None:
    limit = plan_for("free").end_users

    async def fill() -> None:  # the org is at its quota (rows written directly: 1,000 sign-ups is slow)
        async with transaction(world.harness.runtime.sessionmaker) as db:
            now = clock.now()
            db.add_all(
                EndUser(
                    id=new_id("usr"),
                    project_id=world.project.project_id,
                    environment="live",
                    email=f"filler-{n}@example.com",
                    password_hash=None,
                    banned_at=None,
                    created_at=now,
                    updated_at=now,
                    last_sign_in_at=None,
                )
                for n in range(limit)
            )

    world.harness.run(fill)
    sub, _ = world.person()
    browser, refused = world.sign_in(sub)
    assert refused.status_code == QuotaExceeded.status and "location" not in refused.headers
    assert allowance(plan_for("free"), "end_users") in refused.text  # per project (L7)
    assert world.harness.settings.end_user_cookie_name not in browser.cookies
    assert len(end_users(world.harness)) == limit


def test_sign_out_ends_the_session_here_and_account_pages_are_managed_in_authentik(world: World) -> None:
    sub, _ = world.person()
    browser, back = world.sign_in(sub)
    code_from(back)
    page = browser.get(world.project.pages("sign-out"), redirect_url=REDIRECT, state="bye")
    assert page.status_code == 200, page.text
    out = browser.submit(world.project.pages("sign-out"), {})
    assert out.status_code == 303 and out.headers["location"] == REDIRECT + "?state=bye"
    assert world.harness.settings.end_user_cookie_name not in browser.cookies
    managed = world.browser().get(world.project.pages("account/two-step/"))
    assert managed.status_code == 404 and "Managed in Authentik" in managed.text


def test_the_openid_provider_signs_in_through_the_projects_application(world: World) -> None:
    """The authorize endpoint hands the sign-in to Authentik like the hosted pages do, and the code it
    sends back redeems at the token endpoint, with the request's nonce in the ID token."""
    sub, email = world.person()
    browser, project, verifier = world.browser(), world.project, "v" * 50
    issuer = f"{world.harness.settings.auth_url.rstrip('/')}/p/{project.project_id}/test"
    authorize = browser.get(
        f"/p/{project.project_id}/test/oauth2/authorize",
        response_type="code",
        client_id=project.project_id,
        redirect_uri=REDIRECT,
        scope="openid email",
        state="st-9",
        nonce="n-9",
        code_challenge=pkce_s256(verifier),
        code_challenge_method="S256",
    )
    assert authorize.status_code == 303, authorize.text
    started = world.back(browser, authorize.headers["location"])
    assert started.status_code == 303 and started.headers["location"].startswith(world.contract.url)
    back = world.back(browser, world.op.authorize(started.headers["location"], sub, "pwd,mfa"))
    code, query = code_from(back)
    assert query["state"] == ["st-9"] and query["iss"] == [issuer]
    world.harness.client.cookies.clear()
    tokens = world.harness.client.post(
        f"/p/{project.project_id}/test/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=(project.project_id, project.secret),
    )
    world.seen.append(tokens)
    assert tokens.status_code == 200, tokens.text
    claims = jwt.decode(tokens.json()["id_token"], options={"verify_signature": False})
    assert (claims["nonce"], claims["email"], claims["amr"]) == ("n-9", email, ["mfa"])
    assert claims["iss"] == issuer and claims["aud"] == project.project_id
