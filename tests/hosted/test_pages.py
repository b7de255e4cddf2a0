"""The hosted pages: CSP, CSRF, exact redirect URLs (no open redirects), uniform sign-in failures,
throttling, banned users, malformed posts, the Authentik placeholder."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.dbstate import snapshot
from tests.endusers.support import (
    END_USER_PASSWORD,
    REDIRECT,
    Browser,
    backend,
    code_from,
    customer_project,
    exchange,
    pkce_pair,
    sign_up,
)
from tests.factories import Harness

OPEN_REDIRECTS = [
    "https://evil.example.com/callback",
    "//evil.example.com/callback",
    "javascript:alert(document.cookie)",
    "https://app.example.com@evil.example.com/callback",
    "https://app.example.com:8443/callback",
    "https://app.example.com/callback/",
    "https://app.example.com/callback/../evil",
    "https://app.example.com/callbackx",
    "https://APP.example.com/callback",
    "http://app.example.com/callback",
    "https://app.example.com/callback?next=https://evil.example.com",
    " https://app.example.com/callback",
    "https://app.example.com/callback#frag",
]


def _audit_actions(harness: Harness) -> list[str]:
    rows = snapshot(harness)["audit_events"]
    return [a for a in re.findall(r"'([a-z_]+\.[a-z_]+)'", " ".join(rows))]


def test_pages_have_their_own_csp_no_scripts_and_escape_input(harness: Harness) -> None:
    project = customer_project(harness)
    browser = Browser(harness)
    page = browser.get(project.pages("sign-in"), redirect_url=REDIRECT, state='"><script>alert(1)</script>')
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "style-src 'self'" in csp and "default-src 'none'" in csp and "script" not in csp
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text and " style=" not in page.text
    assert "&#34;&gt;&lt;script&gt;" in page.text  # autoescaped into the hidden state field
    css = harness.client.get("/p/assets/hosted.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    # Only the hosted pages widen the CSP; the API keeps the strict default.
    assert (
        harness.client.get("/v1/config").headers["content-security-policy"].startswith("default-src 'none';")
    )


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_open_redirect_attempts_are_refused_and_write_nothing(harness: Harness, target: str) -> None:
    project = customer_project(harness)
    browser = Browser(harness)
    refused = browser.get(project.pages("sign-up"), redirect_url=target)
    assert refused.status_code == 400
    assert "redirect URL is not registered" in refused.text
    assert "<form" not in refused.text
    # A form posted with a valid CSRF token but a foreign redirect_url: refused before anything is written.
    browser.get(project.pages("sign-up"), redirect_url=REDIRECT)
    fields = {
        **browser.hidden(),
        "redirect_url": target,
        "email": "x@example.com",
        "password": END_USER_PASSWORD,
    }
    before = snapshot(harness)
    for page in ("sign-up", "sign-in"):
        response = browser.submit(project.pages(page), fields, hidden={})
        assert response.status_code == 400, response.text
        assert "location" not in response.headers
        assert "redirect URL is not registered" in response.text
    assert snapshot(harness) == before


def test_forms_without_a_valid_csrf_token_are_refused(harness: Harness) -> None:
    project = customer_project(harness)
    browser = Browser(harness)
    browser.get(project.pages("sign-up"), redirect_url=REDIRECT)
    good = browser.hidden()
    fields = {"email": "csrf@example.com", "password": END_USER_PASSWORD, "redirect_url": REDIRECT}
    before = snapshot(harness)
    missing = browser.submit(project.pages("sign-up"), fields, hidden={})
    forged = browser.submit(project.pages("sign-up"), {**fields, "csrf_token": "forged"}, hidden={})
    stranger = Browser(harness)  # another browser's cookie: the token does not match it
    stranger.get(project.pages("sign-up"), redirect_url=REDIRECT)
    replayed = stranger.submit(
        project.pages("sign-up"), {**fields, "csrf_token": good["csrf_token"]}, hidden={}
    )
    no_cookie = Browser(harness).submit(project.pages("sign-up"), {**fields, **good}, hidden={})
    for response in (missing, forged, replayed, no_cookie):
        assert response.status_code == 403, response.text
        assert "expired or was not sent from this page" in response.text
    assert snapshot(harness) == before


def test_sign_in_answers_the_same_for_unknown_email_and_wrong_password(harness: Harness) -> None:
    project = customer_project(harness)
    sign_up(harness, project, "known@example.com")
    answers = []
    _verifier, challenge = pkce_pair()  # one challenge for both: the pages' links carry it
    for email, password in (
        ("known@example.com", "wrong password here"),
        ("nobody@example.com", "wrong password here"),
    ):
        browser = Browser(harness)
        browser.get(
            project.pages("sign-in"),
            redirect_url=REDIRECT,
            code_challenge=challenge,
            code_challenge_method="S256",
        )
        response = browser.submit(project.pages("sign-in"), {"email": email, "password": password})
        answers.append(
            (response.status_code, re.sub(r'value="[^"]*"', "", response.text).replace(email, "EMAIL"))
        )
    assert answers[0] == answers[1]
    assert answers[0][0] == 401 and "email or password is incorrect" in answers[0][1]


def test_sign_in_redirects_with_a_fresh_code(harness: Harness) -> None:
    project = customer_project(harness)
    sign_up(harness, project, "back@example.com")
    browser = Browser(harness)
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT, state="s2")
    response = browser.submit(
        project.pages("sign-in"), {"email": "BACK@example.com ", "password": END_USER_PASSWORD}
    )
    code, query = code_from(response)
    assert query["state"] == ["s2"] and len(code) >= 40
    # The session cookie is HttpOnly and scoped to the project environment's path.
    cookie = next(
        c
        for c in response.headers.get_list("set-cookie")
        if c.startswith(harness.settings.end_user_cookie_name)
    )
    assert (
        "HttpOnly" in cookie and f"Path=/p/{project.project_id}/test" in cookie and "SameSite=lax" in cookie
    )


def test_failed_sign_ins_are_throttled_per_user_and_audited(harness: Harness) -> None:
    project = customer_project(harness)
    sign_up(harness, project, "target@example.com")
    browser = Browser(harness)
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT)
    statuses = []
    for _ in range(11):
        response = browser.submit(
            project.pages("sign-in"),
            {"email": "target@example.com", "password": "not the password!"},
            hidden=None,
        )
        statuses.append(response.status_code)
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429 and int(browser.last.headers["retry-after"]) > 0  # type: ignore[union-attr]
    assert "too many failed attempts" in browser.last.text  # type: ignore[union-attr]
    # Even the right password waits now.
    right = browser.submit(
        project.pages("sign-in"), {"email": "target@example.com", "password": END_USER_PASSWORD}
    )
    assert right.status_code == 429
    assert _audit_actions(harness).count("end_user.sign_in_failed") == 10


def test_a_banned_user_cannot_sign_in_and_its_sessions_die(harness: Harness) -> None:
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "banned@example.com")
    body = exchange(harness, project, code).json()
    ban = backend(harness, project, "POST", f"/users/{body['user_id']}/ban")
    assert ban.status_code == 200 and ban.json()["banned"] is True
    verdict = backend(harness, project, "POST", "/sessions/verify", json={"token": body["jwt"]}).json()
    assert verdict["valid"] is False and verdict["reason"] in ("revoked", "banned")
    browser = Browser(harness)
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT)
    response = browser.submit(
        project.pages("sign-in"), {"email": "banned@example.com", "password": END_USER_PASSWORD}
    )
    assert response.status_code == 401 and "email or password is incorrect" in response.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"email": "a@example.com"}},
        {"content": b"\xff\xfe garbage", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data; boundary=x"}},
        {"data": {"csrf_token": "x" * 5000}},
        {"data": {"email": "a\x00b@example.com", "csrf_token": "x"}},
    ],
)
def test_malformed_posts_never_500(harness: Harness, kwargs: dict[str, Any]) -> None:
    project = customer_project(harness)
    before = snapshot(harness)
    for page in ("sign-up", "sign-in", "sign-in/code", "sign-out", "account/two-step/start"):
        harness.client.cookies.clear()
        response = harness.client.post(project.pages(page), **kwargs)
        assert 400 <= response.status_code < 500, (page, response.status_code, response.text)
        assert response.headers["content-type"].startswith("text/html"), page
    assert snapshot(harness) == before


def test_unknown_projects_and_environments_are_404_pages(harness: Harness) -> None:
    project = customer_project(harness)
    for path in (
        "/p/prj_00000000000000000000000000/test/sign-in",
        f"/p/{project.project_id}/prod/sign-in",
        "/p/not-an-id/test/sign-up",
    ):
        response = harness.client.get(path)
        assert response.status_code == 404 and "no such sign-in page" in response.text


def test_sign_out_ends_the_session(harness: Harness) -> None:
    project = customer_project(harness)
    browser, code = sign_up(harness, project, "leaving@example.com")
    body = exchange(harness, project, code).json()
    browser.get(project.pages("sign-out"), redirect_url=REDIRECT, state="bye")
    response = browser.submit(project.pages("sign-out"), {})
    assert response.status_code == 303 and response.headers["location"] == REDIRECT + "?state=bye"
    assert harness.settings.end_user_cookie_name not in browser.cookies
    verdict = backend(harness, project, "POST", "/sessions/verify", json={"token": body["jwt"]}).json()
    assert verdict["reason"] == "revoked"


def test_the_authentik_callback_does_not_exist_with_the_builtin_backend(harness: Harness) -> None:
    """The Authentik path itself is tested in tests/authentik/test_hosted_sign_in.py."""
    project = customer_project(harness)
    harness.client.cookies.clear()
    response = harness.client.get(
        f"/p/{project.project_id}/oidc/callback", params={"code": "c", "state": "s"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
