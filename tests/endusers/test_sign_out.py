"""Sign-out with the session token (`POST /v1/client/sessions/sign-out`): the current token ends its
session at once (the JWT verifies as revoked, the token refreshes nothing, the hosted pages' session of
that browser is over too); every other token is answered the same 204 and changes nothing, a replaced
one included (no reuse revocation here); without a key it is 401."""

from __future__ import annotations

from typing import Any

import httpx

from tests.dbstate import snapshot
from tests.endusers.support import (
    REDIRECT,
    CustomerProject,
    backend,
    customer_project,
    exchange,
    pkce_pair,
    refresh,
    sign_up,
    warm,
)
from tests.factories import Harness

PROBLEM = "application/problem+json"
APP = "https://app.example.com"
SIGN_OUT = "/v1/client/sessions/sign-out"
# What one sign-out writes: the session row and its session.revoked webhook event.
SIGN_OUT_WRITES = {"end_user_sessions", "webhook_events"}


def _sign_out(
    harness: Harness,
    project: CustomerProject,
    session_token: str,
    *,
    secret: bool = False,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    harness.client.cookies.clear()
    key = (
        {"authorization": f"Bearer {project.secret}"}
        if secret
        else {"x-publishable-key": project.publishable}
    )
    return harness.client.post(
        SIGN_OUT, json={"session_token": session_token}, headers={**key, **(headers or {})}
    )


def _no_content(response: httpx.Response) -> None:
    assert response.status_code == 204, response.text
    assert response.content == b""


def _signed_in(harness: Harness, project: CustomerProject, email: str) -> tuple[Any, dict[str, Any]]:
    browser, code = sign_up(harness, project, email)
    answer = exchange(harness, project, code)
    assert answer.status_code == 200, answer.text
    return browser, answer.json()


def _verdict(harness: Harness, project: CustomerProject, jwt: str) -> dict[str, Any]:
    answer = backend(harness, project, "POST", "/sessions/verify", json={"token": jwt})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _still(harness: Harness, *projects: CustomerProject) -> dict[str, list[str]]:
    """Warm both keys of each project (a cache fill records a key's last use), then snapshot."""
    for project in projects:
        warm(harness, project.publishable)
        assert backend(harness, project, "GET", "/users").status_code == 200
    return snapshot(harness)


def test_signing_out_ends_the_session(harness: Harness) -> None:
    project = customer_project(harness)
    project.owner.ok("PATCH", f"/console/api/projects/{project.project_id}", json={"allowed_origins": [APP]})
    browser, session = _signed_in(harness, project, "leaving@example.com")
    assert _verdict(harness, project, session["jwt"])["valid"] is True
    page = browser.get(project.pages("sign-in"), redirect_url=REDIRECT, state="first")
    assert page.status_code == 200 and "leaving@example.com" in page.text  # "continue as"
    before = _still(harness, project)

    answer = _sign_out(harness, project, session["session_token"], headers={"origin": APP})
    _no_content(answer)
    assert answer.headers["access-control-allow-origin"] == APP  # the page may read its answer
    after = snapshot(harness)
    changed = {table for table in after if after[table] != before[table]}
    assert "end_user_sessions" in changed and changed <= SIGN_OUT_WRITES, changed
    assert session["session_token"] not in repr(after)

    verdict = _verdict(harness, project, session["jwt"])
    assert verdict["valid"] is False and verdict["reason"] == "revoked"
    assert verdict["session"]["status"] == "revoked"
    refused = refresh(harness, project, session["session_token"])
    assert refused.status_code == 401 and refused.json()["reason"] == "revoked", refused.text
    # It was the hosted pages' session of this browser too: the next sign-in asks again.
    page = browser.get(project.pages("sign-in"), redirect_url=REDIRECT, state="again")
    assert page.status_code == 200 and "leaving@example.com" not in page.text
    # A second sign-out with the same token: the same answer, nothing more written.
    quiet = _still(harness, project)
    _no_content(_sign_out(harness, project, session["session_token"]))
    assert snapshot(harness) == quiet


def test_the_secret_key_signs_out_too(harness: Harness) -> None:
    project = customer_project(harness)
    _browser, session = _signed_in(harness, project, "server@example.com")
    _no_content(_sign_out(harness, project, session["session_token"], secret=True))
    assert _verdict(harness, project, session["jwt"])["reason"] == "revoked"


def test_the_current_token_after_a_refresh_signs_out(harness: Harness) -> None:
    project = customer_project(harness)
    _browser, session = _signed_in(harness, project, "rotated@example.com")
    rotated = refresh(harness, project, session["session_token"]).json()
    _no_content(_sign_out(harness, project, rotated["session_token"]))
    assert _verdict(harness, project, rotated["jwt"])["reason"] == "revoked"


def test_a_foreign_or_unknown_token_changes_nothing(harness: Harness) -> None:
    project = customer_project(harness)
    other = customer_project(harness, owner=project.owner)
    live_pk = harness.key(project.owner, project.project_id, "publishable", "live")["key"]
    live_sk = harness.key(project.owner, project.project_id, "secret", "live")["key"]
    live = CustomerProject(project.owner, project.org_id, project.project_id, "live", live_pk, live_sk)
    _browser, session = _signed_in(harness, project, "foreign@example.com")
    token = session["session_token"]
    before = _still(harness, project, other, live)

    for where, secret in ((other, False), (other, True), (live, False), (live, True)):
        _no_content(_sign_out(harness, where, token, secret=secret))
    _no_content(_sign_out(harness, project, pkce_pair()[0]))
    assert snapshot(harness) == before
    assert _verdict(harness, project, session["jwt"])["valid"] is True
    assert refresh(harness, project, token).status_code == 200


def test_a_replaced_token_changes_nothing(harness: Harness) -> None:
    """Unlike at the refresh, presenting a token a refresh already replaced revokes nothing."""
    project = customer_project(harness)
    _browser, session = _signed_in(harness, project, "spent@example.com")
    spent = session["session_token"]
    rotated = refresh(harness, project, spent).json()
    before = _still(harness, project)

    _no_content(_sign_out(harness, project, spent))
    _no_content(_sign_out(harness, project, spent, secret=True))
    assert snapshot(harness) == before
    assert _verdict(harness, project, rotated["jwt"])["valid"] is True
    assert refresh(harness, project, rotated["session_token"]).status_code == 200


def test_without_a_key_it_is_401_and_changes_nothing(harness: Harness) -> None:
    project = customer_project(harness)
    _browser, session = _signed_in(harness, project, "keyless@example.com")
    token = session["session_token"]
    before = _still(harness, project)
    for headers in (
        {},
        {"x-publishable-key": "pk_test_" + "x" * 43},
        {"x-publishable-key": project.secret},
        {"authorization": "Bearer sk_test_nope", "x-publishable-key": project.publishable},
        {"authorization": f"Bearer {project.publishable}"},
    ):
        harness.client.cookies.clear()
        refused = harness.client.post(SIGN_OUT, json={"session_token": token}, headers=headers)
        assert refused.status_code == 401, (headers, refused.text)
        assert refused.headers["content-type"].startswith(PROBLEM)
    # The key is checked before the body: a bad body without a key is 401 too.
    harness.client.cookies.clear()
    assert harness.client.post(SIGN_OUT, json={}).status_code == 401
    assert snapshot(harness) == before
    assert _verdict(harness, project, session["jwt"])["valid"] is True


def test_a_disallowed_origin_is_403_and_changes_nothing(harness: Harness) -> None:
    project = customer_project(harness)
    project.owner.ok("PATCH", f"/console/api/projects/{project.project_id}", json={"allowed_origins": [APP]})
    _browser, session = _signed_in(harness, project, "origin@example.com")
    before = _still(harness, project)
    refused = _sign_out(
        harness, project, session["session_token"], headers={"origin": "https://evil.example"}
    )
    assert refused.status_code == 403, refused.text
    assert "access-control-allow-origin" not in refused.headers
    assert snapshot(harness) == before
    assert _verdict(harness, project, session["jwt"])["valid"] is True


def test_the_document_declares_the_route(harness: Harness) -> None:
    operation = harness.client.get("/openapi.json").json()["paths"][SIGN_OUT]["post"]
    assert operation["summary"] and "RFC 7009" in operation["description"]
    assert {"204", "401", "403", "422", "429"} <= set(operation["responses"])
    assert "content" not in operation["responses"]["204"]
    assert operation["security"] == [{"publishableKey": []}, {"secretKey": []}]


def test_an_empty_token_is_422(harness: Harness) -> None:
    project = customer_project(harness)
    harness.client.cookies.clear()
    for body in ({}, {"session_token": ""}, {"session_token": 7}):
        refused = harness.client.post(SIGN_OUT, json=body, headers={"x-publishable-key": project.publishable})
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["type"].endswith("/invalid-request")


def test_the_hosted_sign_out_page_leads_back_when_the_session_already_ended(harness: Harness) -> None:
    """The module's `signOut({redirect: true})` ends the session first, then opens the hosted page."""
    project = customer_project(harness)
    browser, session = _signed_in(harness, project, "back@example.com")
    _no_content(_sign_out(harness, project, session["session_token"]))
    page = browser.get(project.pages("sign-out"), redirect_url=REDIRECT, state="st-out")
    assert page.status_code == 200 and "You are not signed in" in page.text
    assert f'<a href="{REDIRECT}?state=st-out">Back to the app</a>' in page.text
    without = browser.get(project.pages("sign-out"))
    assert "Back to the app" not in without.text
