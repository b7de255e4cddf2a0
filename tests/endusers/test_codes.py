"""The one-time redirect code: hashed at rest, short-lived, single use, bound to project, environment,
redirect URL and PKCE challenge. Every refusal writes nothing. (Who may redeem which code: test_grants.)"""

from __future__ import annotations

import base64
import hashlib
import secrets

from silver_auth.core import clock
from tests.dbstate import snapshot
from tests.endusers.support import (
    END_USER_PASSWORD,
    REDIRECT,
    VERIFIERS,
    Browser,
    code_from,
    customer_project,
    exchange,
    sign_up,
    warm,
)
from tests.factories import Harness

PROBLEM = "application/problem+json"


def _refused(response: object, before: dict[str, list[str]], harness: Harness) -> None:
    assert response.status_code == 400, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith(PROBLEM)  # type: ignore[attr-defined]
    assert response.json()["type"].endswith("/invalid-grant")  # type: ignore[attr-defined]
    assert snapshot(harness) == before


def test_a_code_is_stored_hashed_and_works_once(harness: Harness) -> None:
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "once@example.com")
    assert code not in repr(snapshot(harness))
    assert exchange(harness, project, code).status_code == 200
    before = snapshot(harness)
    _refused(exchange(harness, project, code), before, harness)


def test_a_code_is_bound_to_its_project_environment_and_redirect(harness: Harness) -> None:
    project = customer_project(harness, "test")
    _browser, code = sign_up(harness, project, "bound@example.com")
    other = customer_project(harness, "test", owner=project.owner)
    live_pk = harness.key(project.owner, project.project_id, "publishable", "live")["key"]
    warm(harness, project.publishable, other.publishable, live_pk)
    before = snapshot(harness)
    _refused(exchange(harness, other, code), before, harness)
    harness.client.cookies.clear()
    body = {"code": code, "redirect_url": REDIRECT, "code_verifier": VERIFIERS[code]}
    live = harness.client.post(
        "/v1/client/sessions/exchange", json=body, headers={"x-publishable-key": live_pk}
    )
    _refused(live, before, harness)
    _refused(exchange(harness, project, code, redirect_url=REDIRECT + "/"), before, harness)
    # None of that used the code up.
    assert exchange(harness, project, code).status_code == 200


def test_a_code_expires(harness: Harness) -> None:
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "late@example.com")
    clock.advance(harness.settings.end_user_code_seconds + 1)
    warm(harness, project.publishable)
    before = snapshot(harness)
    _refused(exchange(harness, project, code), before, harness)


def test_exchange_needs_the_publishable_key(harness: Harness) -> None:
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "nokey@example.com")
    before = snapshot(harness)
    harness.client.cookies.clear()
    for headers in ({}, {"x-publishable-key": "pk_test_nope"}, {"x-publishable-key": project.secret}):
        response = harness.client.post("/v1/client/sessions/exchange", json={"code": code}, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
    # A malformed body without a key is 401 too: the key is checked before the body is read.
    bad = harness.client.post("/v1/client/sessions/exchange", content=b"{nope")
    assert bad.status_code == 401
    assert snapshot(harness) == before


def test_pkce_s256_binds_the_code_to_the_verifier(harness: Harness) -> None:
    project = customer_project(harness)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    browser = Browser(harness)
    page = browser.get(
        project.pages("sign-up"),
        redirect_url=REDIRECT,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert page.status_code == 200
    code, _query = code_from(
        browser.submit(project.pages("sign-up"), {"email": "pkce@example.com", "password": END_USER_PASSWORD})
    )
    warm(harness, project.publishable)
    before = snapshot(harness)
    _refused(exchange(harness, project, code), before, harness)
    _refused(exchange(harness, project, code, code_verifier=secrets.token_urlsafe(48)), before, harness)
    assert exchange(harness, project, code, code_verifier=verifier).status_code == 200
    before = snapshot(harness)
    plain = Browser(harness).get(
        project.pages("sign-up"),
        redirect_url=REDIRECT,
        code_challenge=challenge,
        code_challenge_method="plain",
    )
    assert plain.status_code == 400 and "S256" in plain.text
    # No method means `plain` (RFC 7636 4.3); a method without a challenge, or a malformed one, is refused.
    for params in (
        {"code_challenge": challenge},
        {"code_challenge_method": "S256"},
        {"code_challenge": challenge[:-1] + "=", "code_challenge_method": "S256"},
    ):
        refused = Browser(harness).get(project.pages("sign-in"), redirect_url=REDIRECT, **params)
        assert refused.status_code == 400 and "S256" in refused.text, params
    assert snapshot(harness) == before
