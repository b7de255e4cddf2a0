"""The OpenID Provider in-process: discovery, the authorize decisions (errors shown or sent back, SSO,
`prompt`, `max_age`, the sealed request), what each token is accepted for, CORS and end-session."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlsplit

import httpx

from silver_auth.core import clock
from silver_auth.endusers.grants import pkce_s256
from tests.endusers.support import (
    END_USER_PASSWORD,
    REDIRECT,
    Browser,
    CustomerProject,
    customer_project,
    exchange,
    sign_up,
)
from tests.factories import Harness
from tests.hosted.test_two_step import _enrol, _next_code
from tests.oidc_provider.support import query_of

VERIFIER = "v" * 50
ALLOWED_ORIGIN = "https://app.example.com"


def _issuer(harness: Harness, project: CustomerProject) -> str:
    return f"{harness.settings.auth_url.rstrip('/')}/p/{project.project_id}/{project.environment}"


def _path(project: CustomerProject, endpoint: str) -> str:
    return f"/p/{project.project_id}/{project.environment}/oauth2/{endpoint}"


def _authorize(browser: Browser, project: CustomerProject, **extra: str) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": project.project_id,
        "redirect_uri": REDIRECT,
        "scope": "openid email",
        "state": "st-42",
        "nonce": "n-42",
        "code_challenge": pkce_s256(VERIFIER),
        "code_challenge_method": "S256",
        **extra,
    }
    return browser.get(_path(project, "authorize"), **{k: v for k, v in params.items() if v})


def _sign_in_through(
    browser: Browser, project: CustomerProject, answer: httpx.Response, page: str = "sign-in"
) -> httpx.Response:
    """From the authorize endpoint's redirect to the hosted page, through its form, back out."""
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert urlsplit(location).path == project.pages(page), location
    opened = browser.get(location)
    assert opened.status_code == 200, opened.text
    return browser.submit(project.pages(page), {"email": "ada@example.com", "password": END_USER_PASSWORD})


def _token(harness: Harness, project: CustomerProject, code: str, **extra: str) -> httpx.Response:
    harness.client.cookies.clear()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        **extra,
    }
    return harness.client.post(_path(project, "token"), data=form, auth=(project.project_id, project.secret))


def _signed_in(harness: Harness, project: CustomerProject) -> tuple[Browser, dict[str, Any]]:
    """A browser signed up through authorize, and the token answer for its code."""
    browser = Browser(harness, pkce=False)
    first = _authorize(browser, project)
    location = first.headers["location"]
    browser.get(location.replace("/sign-in", "/sign-up"))
    answer = browser.submit(
        project.pages("sign-up"), {"email": "ada@example.com", "password": END_USER_PASSWORD}
    )
    assert answer.status_code == 303, answer.text
    back = query_of(answer.headers["location"])
    assert back["state"] == "st-42" and back["iss"] == _issuer(harness, project)
    tokens = _token(harness, project, back["code"])
    assert tokens.status_code == 200, tokens.text
    return browser, tokens.json()


def test_discovery_names_every_endpoint_and_is_public(harness: Harness) -> None:
    project = customer_project(harness)
    issuer = _issuer(harness, project)
    answer = harness.client.get(f"/p/{project.project_id}/test/.well-known/openid-configuration")
    assert answer.status_code == 200
    document = answer.json()
    assert document["issuer"] == issuer
    for name in ("authorization", "token", "userinfo", "introspection", "revocation", "end_session"):
        assert document[f"{name}_endpoint"].startswith(issuer + "/oauth2/"), name
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["id_token_signing_alg_values_supported"] == [harness.settings.signing_algorithm]
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "max-age" in answer.headers["cache-control"]
    keys = harness.client.get(f"/p/{project.project_id}/test/oauth2/jwks")
    assert keys.status_code == 200 and keys.headers["content-type"].startswith("application/jwk-set+json")
    for wrong in (
        f"/p/{project.project_id}/staging",
        "/p/prj_00000000000000000000000000/test",
        "/p/nope/test",
    ):
        missing = harness.client.get(f"{wrong}/.well-known/openid-configuration")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_unknown_clients_and_redirect_uris_are_pages_other_errors_go_back(harness: Harness) -> None:
    project = customer_project(harness)
    browser = Browser(harness, pkce=False)
    for extra in (
        {"client_id": "prj_00000000000000000000000000"},
        {"client_id": "pk_test_nope"},
        {"redirect_uri": "https://app.example.com/callback/"},
        {"redirect_uri": ""},
    ):
        page = _authorize(browser, project, **extra)
        assert page.status_code == 400 and page.headers["content-type"].startswith("text/html"), extra
        assert "location" not in page.headers
    for extra, error in (
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"request": "eyJ..."}, "request_not_supported"),
        ({"prompt": "none"}, "login_required"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
    ):
        back = _authorize(browser, project, **extra)
        assert back.status_code == 303, (extra, back.text)
        answer = query_of(back.headers["location"])
        assert answer["error"] == error and answer["state"] == "st-42", (extra, answer)
        assert back.headers["location"].startswith(REDIRECT + "?")
    public = _authorize(
        browser, project, client_id=project.publishable, code_challenge="", code_challenge_method=""
    )
    assert query_of(public.headers["location"])["error"] == "invalid_request"  # PKCE is a must for pk_


def test_a_signed_in_browser_comes_straight_back_unless_a_new_sign_in_is_asked(harness: Harness) -> None:
    project = customer_project(harness)
    browser, _ = _signed_in(harness, project)
    again = _authorize(browser, project, prompt="none")
    assert again.status_code == 303 and "code" in query_of(again.headers["location"])

    clock.advance(120)
    for extra in ({"prompt": "login"}, {"max_age": "60"}):
        asked = _authorize(browser, project, **extra)
        assert urlsplit(asked.headers["location"]).path == project.pages("sign-in"), extra
        page = browser.get(asked.headers["location"])
        assert "ada@example.com" not in page.text  # no "continue as": a new sign-in is asked
        continued = browser.submit(project.pages("sign-in/continue"), {})
        assert continued.status_code == 400
    fresh = _sign_in_through(browser, project, _authorize(browser, project, max_age="60"))
    code = query_of(fresh.headers["location"])["code"]
    tokens = _token(harness, project, code).json()
    claims = _claims(tokens["id_token"])
    assert claims["nonce"] == "n-42" and claims["auth_time"] >= int(clock.now().timestamp()) - 5


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def test_the_sealed_request_cannot_be_edited_or_moved(harness: Harness) -> None:
    project, other = customer_project(harness), customer_project(harness)
    browser = Browser(harness, pkce=False)
    location = _authorize(browser, project).headers["location"]
    sealed = query_of(location)["authorization"]
    payload, _, signature = sealed.partition(".")
    edited = _claims("x." + payload + ".x")
    edited["redirect_uri"] = "https://evil.example/"
    forged = base64.urlsafe_b64encode(json.dumps(edited).encode()).decode().rstrip("=") + "." + signature
    for page in (
        f"{project.pages('sign-in')}?authorization={forged}",
        f"{other.pages('sign-in')}?authorization={sealed}",
    ):
        refused = browser.get(page)
        assert refused.status_code == 400 and "sign in again" in refused.text, page


def test_each_token_is_good_for_its_own_purpose_only(harness: Harness) -> None:
    project = customer_project(harness)
    _, tokens = _signed_in(harness, project)
    harness.client.cookies.clear()
    userinfo = harness.client.get(
        _path(project, "userinfo"), headers={"authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 200 and userinfo.json()["email"] == "ada@example.com"
    assert userinfo.headers["cache-control"] == "no-store"
    # The ID token is no access token, and the access token is no session JWT.
    refused = harness.client.get(
        _path(project, "userinfo"), headers={"authorization": f"Bearer {tokens['id_token']}"}
    )
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
    verify = harness.client.post(
        "/v1/backend/sessions/verify",
        json={"token": tokens["access_token"]},
        headers={"authorization": f"Bearer {project.secret}"},
    )
    assert verify.status_code == 200 and verify.json()["valid"] is False
    # A refresh token belongs to the client it was issued to.
    harness.client.cookies.clear()
    stolen = harness.client.post(
        _path(project, "token"),
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": project.publishable,
        },
    )
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    # Introspection is for the secret key only.
    public = harness.client.post(
        _path(project, "introspect"), data={"token": tokens["access_token"], "client_id": project.publishable}
    )
    assert public.status_code == 401 and public.json()["error"] == "invalid_client"
    # A narrower scope on refresh is fine; a wider one is not.
    narrower = harness.client.post(
        _path(project, "token"),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "scope": "openid"},
        auth=(project.project_id, project.secret),
    )
    assert narrower.status_code == 200 and narrower.json()["scope"] == "openid"
    wider = harness.client.post(
        _path(project, "token"),
        data={
            "grant_type": "refresh_token",
            "refresh_token": narrower.json()["refresh_token"],
            "scope": "openid profile",
        },
        auth=(project.project_id, project.secret),
    )
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


def test_codes_redeem_only_where_they_were_issued(harness: Harness) -> None:
    project = customer_project(harness)
    _, hosted_code = sign_up(harness, project, "grace@example.com")
    refused = _token(harness, project, hosted_code, code_verifier="")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert exchange(harness, project, hosted_code).status_code == 200  # still good where it belongs

    browser = Browser(harness, pkce=False)
    location = _authorize(browser, project).headers["location"]
    browser.get(location.replace("/sign-in", "/sign-up"))
    answer = browser.submit(
        project.pages("sign-up"), {"email": "alan@example.com", "password": END_USER_PASSWORD}
    )
    code = query_of(answer.headers["location"])["code"]
    legacy = exchange(harness, project, code, secret=True, code_verifier=VERIFIER)
    assert legacy.status_code == 400 and legacy.json()["reason"] == "unknown-code"


def test_a_public_client_may_read_its_answers_from_an_allowed_origin(harness: Harness) -> None:
    project = customer_project(harness)
    project.owner.ok(
        "PATCH", f"/console/api/projects/{project.project_id}", json={"allowed_origins": [ALLOWED_ORIGIN]}
    )
    browser = Browser(harness, pkce=False)
    location = _authorize(browser, project, client_id=project.publishable).headers["location"]
    browser.get(location.replace("/sign-in", "/sign-up"))
    answer = browser.submit(
        project.pages("sign-up"), {"email": "ada@example.com", "password": END_USER_PASSWORD}
    )
    code = query_of(answer.headers["location"])["code"]
    harness.client.cookies.clear()
    tokens = harness.client.post(
        _path(project, "token"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
            "client_id": project.publishable,
        },
        headers={"origin": ALLOWED_ORIGIN},
    )
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "origin" in tokens.headers["vary"].lower()


def test_end_session_asks_without_a_hint_and_refuses_unregistered_returns(harness: Harness) -> None:
    project = customer_project(harness)
    browser, tokens = _signed_in(harness, project)
    end = f"/p/{project.project_id}/{project.environment}/oauth2/end-session"
    asked = browser.get(end, post_logout_redirect_uri=REDIRECT, state="bye")
    assert asked.status_code == 303 and urlsplit(asked.headers["location"]).path == project.pages("sign-out")
    stray = browser.get(
        end, id_token_hint=tokens["id_token"], post_logout_redirect_uri="https://evil.example/"
    )
    assert stray.status_code == 400 and "location" not in stray.headers
    forged = browser.get(end, id_token_hint=tokens["access_token"])
    assert forged.status_code == 400
    done = browser.get(end, id_token_hint=tokens["id_token"])
    assert done.status_code == 200 and "signed out" in done.text.lower()
    assert _authorize(browser, project, prompt="none").headers["location"].count("login_required") == 1


def test_two_apps_of_one_browser_session_keep_their_own_refresh_tokens(harness: Harness) -> None:
    """Single sign-on: the second app's code starts a session of its own from the same sign-in, so one
    app's refresh never ends the other's, and signing one out leaves the other signed in."""
    project = customer_project(harness)
    browser, first = _signed_in(harness, project)
    again = _authorize(browser, project, client_id=project.publishable)
    second_code = query_of(again.headers["location"])["code"]
    harness.client.cookies.clear()
    form = {
        "grant_type": "authorization_code",
        "code": second_code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    }
    second = harness.client.post(
        _path(project, "token"), data={**form, "client_id": project.publishable}
    ).json()
    first_claims, second_claims = _claims(first["id_token"]), _claims(second["id_token"])
    assert first_claims["sub"] == second_claims["sub"] and first_claims["sid"] != second_claims["sid"]
    assert first_claims["auth_time"] == second_claims["auth_time"]  # the same sign-in

    def refreshed(token: str, **auth: Any) -> httpx.Response:
        harness.client.cookies.clear()
        return harness.client.post(
            _path(project, "token"),
            data={"grant_type": "refresh_token", "refresh_token": token, **auth.get("data", {})},
            auth=auth.get("basic"),
        )

    assert refreshed(first["refresh_token"], basic=(project.project_id, project.secret)).status_code == 200
    assert refreshed(second["refresh_token"], data={"client_id": project.publishable}).status_code == 200
    # The second code again: its own session ends, the first app's does not.
    reused = harness.client.post(_path(project, "token"), data={**form, "client_id": project.publishable})
    assert reused.json()["error"] == "invalid_grant"
    verify = harness.client.post(
        "/v1/backend/sessions/verify",
        json={"token": first["id_token"]},
        headers={"authorization": f"Bearer {project.secret}"},
    )
    assert verify.status_code == 200
    sessions = {
        s["id"]: s["status"]
        for s in harness.client.get(
            f"/v1/backend/users/{first_claims['sub']}/sessions",
            headers={"authorization": f"Bearer {project.secret}"},
        ).json()["items"]
    }
    assert sessions[first_claims["sid"]] == "active" and sessions[second_claims["sid"]] == "revoked"


def test_two_step_verification_shows_in_the_id_tokens_amr(harness: Harness) -> None:
    project = customer_project(harness)
    secret, _ = _enrol(harness, project, "mfa@example.com")
    browser = Browser(harness, pkce=False)
    opened = browser.get(_authorize(browser, project).headers["location"])
    assert opened.status_code == 200
    pending = browser.submit(
        project.pages("sign-in"), {"email": "mfa@example.com", "password": END_USER_PASSWORD}
    )
    assert pending.status_code == 200 and 'name="pending"' in pending.text
    back = browser.submit(project.pages("sign-in/code"), {"code": _next_code(secret)})
    assert back.status_code == 303, back.text
    answer = query_of(back.headers["location"])
    assert answer["state"] == "st-42" and answer["iss"] == _issuer(harness, project)
    tokens = _token(harness, project, answer["code"]).json()
    assert _claims(tokens["id_token"])["amr"] == ["pwd", "otp", "mfa"]
