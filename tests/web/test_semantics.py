"""HTTP semantics: every 401 names its scheme (RFC 9110 11.6.1; Bearer per RFC 6750 3 on /v1), console
and admin routes have no OPTIONS (405 like any other method they lack), HSTS follows the answering
host's public URL (G2), and cookies are Secure on an https public host in development too (G11)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.accounts.test_console_sessions import session_cookie, sign_in_raw
from tests.conftest import base_settings
from tests.endusers.support import END_USER_PASSWORD, REDIRECT, Browser, customer_project, sign_up
from tests.factories import Harness
from tests.web.routes import route_calls
from tests.web.test_http import assert_problem, running

BEARER = 'Bearer realm="silver-auth"'
INVALID_TOKEN = 'Bearer realm="silver-auth", error="invalid_token"'
CONSOLE = 'Cookie realm="console", form-action="/console/api/sign-in", cookie-name="silver_session"'


# --- WWW-Authenticate ---------------------------------------------------------------------------------


def test_every_401_names_how_to_authenticate(harness: Harness) -> None:
    """Walks every route anonymously (and with an unknown key on /v1): each 401 has WWW-Authenticate."""
    seen = 0
    for call in route_calls(harness):
        method, path = call.method, call.path
        for headers in ({}, {"authorization": "Bearer sk_live_" + "x" * 43}):
            if headers and not path.startswith("/v1/"):
                continue
            harness.client.cookies.clear()
            kwargs: dict[str, Any] = {} if method in ("GET", "OPTIONS") else {"json": {}}
            response = harness.client.request(method, call.url, headers=headers, **kwargs)
            if response.status_code != 401:
                continue
            seen += 1
            challenge = response.headers.get("www-authenticate")
            if path.startswith("/v1/"):
                assert challenge == (INVALID_TOKEN if headers else BEARER), (method, path, challenge)
            else:
                assert challenge is not None and challenge.startswith("Cookie "), (method, path, challenge)
    assert seen > 50


def test_bearer_challenges_follow_rfc_6750(harness: Harness) -> None:
    project = customer_project(harness)
    missing = harness.client.get("/v1/backend/project")
    assert assert_problem(missing, 401) and missing.headers["www-authenticate"] == BEARER  # RFC 6750 3.1
    for token in ("sk_live_" + "x" * 43, "not-even-a-key", project.publishable):
        wrong = harness.backend("/v1/backend/project", token)
        assert_problem(wrong, 401)
        assert wrong.headers.get_list("www-authenticate") == [INVALID_TOKEN], token
    assert harness.backend("/v1/backend/project", project.secret).status_code == 200
    # The client routes: an unknown publishable key, and a valid key with an unknown session token.
    for headers in ({"x-publishable-key": "pk_test_" + "x" * 43}, {"x-publishable-key": project.publishable}):
        harness.client.cookies.clear()
        refused = harness.client.post(
            "/v1/client/sessions/refresh", json={"session_token": "no"}, headers=headers
        )
        assert_problem(refused, 401)
        assert refused.headers["www-authenticate"] == INVALID_TOKEN


def test_console_and_hosted_401s_name_their_cookie(harness: Harness) -> None:
    anonymous = harness.client.get("/console/api/me")
    assert_problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"] == CONSOLE
    wrong = sign_in_raw(harness.client, harness.user().email, "not the password at all")
    assert_problem(wrong, 401)
    assert wrong.headers["www-authenticate"] == CONSOLE
    admin = harness.client.get("/admin/api/orgs")
    assert admin.status_code == 401 and admin.headers["www-authenticate"] == CONSOLE
    project = customer_project(harness)
    sign_up(harness, project, "page@example.com")
    browser = Browser(harness)
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT)
    page = browser.submit(
        project.pages("sign-in"), {"email": "page@example.com", "password": END_USER_PASSWORD + "x"}
    )
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert page.headers["www-authenticate"] == 'Cookie realm="hosted", cookie-name="silver_user_session"'


# --- OPTIONS ------------------------------------------------------------------------------------------


def test_console_and_admin_routes_answer_options_with_a_405_problem(harness: Harness) -> None:
    owner = harness.user()
    checked = 0
    for call in route_calls(harness):
        path, methods = call.path, call.methods
        if call.method != "OPTIONS" or not path.startswith(("/console/", "/admin/")):
            continue
        for send in (harness.client.request, owner.request):
            harness.client.cookies.clear()
            response = send("OPTIONS", call.url)
            if path.startswith(("/console/api", "/admin/")):
                problem = assert_problem(response, 405)
                assert problem["type"].endswith("/method-not-allowed")
            else:  # the console's HTML pages answer their errors as pages
                assert response.status_code == 405 and response.headers["content-type"].startswith(
                    "text/html"
                )
            allow = {m.strip() for m in response.headers["allow"].split(",")}
            assert allow == methods - {"OPTIONS"}, (path, allow)
        checked += 1
    assert checked > 40
    # Like any other method a route lacks: and then Allow does not offer OPTIONS either.
    put = harness.client.put("/console/api/me")
    assert_problem(put, 405)
    assert put.headers["allow"] == "GET"


def test_other_routes_keep_answering_options(harness: Harness) -> None:
    response = harness.client.options("/health")
    assert response.status_code == 204 and "GET" in response.headers["allow"]


# --- HSTS ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accounts_url", "auth_url", "host", "hsts"),
    [
        ("https://accounts.seqn.in", "http://auth.seqn.in", "accounts.seqn.in", True),
        ("https://accounts.seqn.in", "http://auth.seqn.in", "ACCOUNTS.seqn.in:443", True),
        ("https://accounts.seqn.in", "http://auth.seqn.in", "auth.seqn.in", False),
        ("http://accounts.seqn.in", "https://auth.seqn.in", "auth.seqn.in:8443", True),
        ("http://accounts.seqn.in", "https://auth.seqn.in", "accounts.seqn.in", False),
        ("https://accounts.seqn.in", "https://auth.seqn.in", "auth.seqn.in", True),
        ("https://accounts.seqn.in", "http://auth.seqn.in", "127.0.0.1:8000", False),  # another host
        ("https://accounts.seqn.in", "https://auth.seqn.in", "127.0.0.1:8000", True),
        ("https://accounts.seqn.in", "https://auth.seqn.in", "[::1", True),  # malformed: another host
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443", "127.0.0.1:8443", True),
    ],
)
def test_g2_hsts_follows_the_public_url_of_the_answering_host(
    tmp_path: Path, database_url: str, accounts_url: str, auth_url: str, host: str, hsts: bool
) -> None:
    settings = base_settings(
        tmp_path, DATABASE_URL=database_url, SILVER_ACCOUNTS_URL=accounts_url, SILVER_AUTH_URL=auth_url
    )
    with running(settings) as harness:
        for path in ("/health", "/nope", "/console/api/me", "/v1/backend/project"):
            response = harness.client.get(path, headers={"host": host})
            assert response.status_code < 500, response.text
            value = response.headers.get("strict-transport-security")
            assert (value == "max-age=31536000; includeSubDomains") if hsts else value is None, (path, value)


# --- Secure cookies -----------------------------------------------------------------------------------


COOKIE_CASES = [
    # accounts URL, auth URL, SESSION_COOKIE_SECURE, console cookie Secure, hosted cookies Secure
    ("https://accounts.example.test", "https://auth.example.test", None, True, True),
    ("https://accounts.example.test", "http://127.0.0.1:8000", None, True, False),
    ("http://127.0.0.1:8000", "https://auth.example.test", None, False, True),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000", None, False, False),
    ("https://accounts.example.test", "https://auth.example.test", False, False, False),  # as set
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000", True, True, True),
]


@pytest.mark.parametrize("case", COOKIE_CASES)
def test_g11_development_cookies_are_secure_on_an_https_public_url(
    tmp_path: Path, database_url: str, case: tuple[str, str, bool | None, bool, bool]
) -> None:
    accounts_url, auth_url, setting, console_secure, hosted_secure = case
    extra = {} if setting is None else {"SESSION_COOKIE_SECURE": setting}
    settings = base_settings(
        tmp_path,
        DATABASE_URL=database_url,
        SILVER_ACCOUNTS_URL=accounts_url,
        SILVER_AUTH_URL=auth_url,
        **extra,
    )
    assert not settings.is_production
    with running(settings) as harness:
        email = "cookie@example.com"
        harness.create_account(email)
        console = session_cookie(sign_in_raw(harness.client, email), settings.session_cookie_name)
        assert bool(console["secure"]) is console_secure
        project = customer_project(harness)
        browser = Browser(harness)
        page = browser.get(project.pages("sign-in"), redirect_url=REDIRECT)
        form_cookies = [c for c in page.headers.get_list("set-cookie") if "httponly" in c.lower()]
        assert form_cookies, page.headers
        assert all(("secure" in c.lower().split("; ")) is hosted_secure for c in form_cookies), form_cookies


def test_options_names_every_method_of_the_route(harness: Harness) -> None:
    """Litestar's own OPTIONS answer named the methods of a route's first handler only (`GET, OPTIONS` for
    `/v1/backend/users`, which also takes POST)."""
    key = {"authorization": f"Bearer {customer_project(harness).secret}"}  # the backend's OPTIONS need it
    checked = 0
    for call in route_calls(harness):
        if call.method != "OPTIONS" or call.path.startswith(("/console/", "/admin/")):
            continue
        harness.client.cookies.clear()
        response = harness.client.options(call.url, headers=key)
        if response.status_code != 204:
            continue
        allow = {m.strip() for m in response.headers["allow"].split(",")}
        assert allow == call.methods, (call.path, allow)
        checked += 1
    assert checked > 10
    users = harness.client.options("/v1/backend/users", headers=key)
    assert users.headers["allow"] == "GET, OPTIONS, POST"
