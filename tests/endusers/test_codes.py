"""The one-time redirect code: hashed at rest, short-lived, single use, bound to project, environment,
redirect URL and PKCE challenge. Every refusal is the same 400 `invalid_grant` with a `reason` naming
the failed check, and writes nothing, except a second redemption that passes every binding: it revokes
the session the first one started (RFC 6749 4.1.2), audited. (Who may redeem which code: test_grants.)"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

import httpx

from silver_auth.core import clock
from tests.dbstate import snapshot
from tests.endusers.support import (
    END_USER_PASSWORD,
    REDIRECT,
    VERIFIERS,
    Browser,
    CustomerProject,
    backend,
    code_from,
    customer_project,
    exchange,
    pkce_pair,
    refresh,
    sign_up,
    warm,
)
from tests.factories import Harness
from tests.orgs.support import audit

PROBLEM = "application/problem+json"
# A reuse revokes the session: its row, the audit event, and the session.revoked webhook event.
REUSE_WRITES = {"end_user_sessions", "audit_events", "audit_chain_head", "webhook_events"}


def _refused(
    response: httpx.Response, before: dict[str, list[str]], harness: Harness, reason: str | None = None
) -> dict[str, Any]:
    """The one answer of every refused exchange: 400 problem+json, RFC 6749 `invalid_grant`."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/invalid-grant") and body["error"] == "invalid_grant", body
    assert set(body) == {"type", "title", "status", "detail", "error", "reason"}, body
    if reason is not None:
        assert body["reason"] == reason, body
    assert snapshot(harness) == before
    return body


def _revoked(harness: Harness, project: CustomerProject, first: dict[str, Any]) -> None:
    verdict = backend(harness, project, "POST", "/sessions/verify", json={"token": first["jwt"]}).json()
    assert verdict["valid"] is False and verdict["reason"] == "revoked", verdict
    answer = refresh(harness, project, first["session_token"])
    assert answer.status_code == 401 and answer.json()["reason"] == "revoked", answer.text


def test_a_code_is_stored_hashed_and_works_once(harness: Harness) -> None:
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "once@example.com")
    assert code not in repr(snapshot(harness))
    first = exchange(harness, project, code)
    assert first.status_code == 200
    warm(harness, project.publishable)
    assert backend(harness, project, "GET", "/users").status_code == 200  # the secret key's last use
    before = snapshot(harness)
    again = exchange(harness, project, code)
    assert again.status_code == 400 and again.json()["reason"] == "code-already-used", again.text
    after = snapshot(harness)
    assert {table for table in after if after[table] != before[table]} <= REUSE_WRITES
    assert code not in repr(after)


def test_g29_a_second_redemption_revokes_the_session_of_the_first(harness: Harness) -> None:
    """RFC 6749 4.1.2: the code was used twice, so it may have been copied: the session that its first
    use started, and that session's token, stop working at once; audited (G29)."""
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "twice@example.com")
    first = exchange(harness, project, code).json()
    warm(harness, project.publishable)
    assert backend(harness, project, "GET", "/users").status_code == 200
    # Replays that fail a binding are only refused: whoever holds a leaked used code cannot sign the
    # user out with it (no verifier, another redirect URL, another project's key).
    other = customer_project(harness, owner=project.owner)
    warm(harness, other.publishable)
    before = snapshot(harness)
    _refused(exchange(harness, project, code, code_verifier=pkce_pair()[0]), before, harness, "pkce-mismatch")
    _refused(exchange(harness, project, code, redirect_url=REDIRECT + "/"), before, harness)
    _refused(exchange(harness, other, code), before, harness, "unknown-code")
    assert refresh(harness, project, first["session_token"]).status_code == 200  # still live
    again = exchange(harness, project, code)
    assert again.status_code == 400, again.text
    assert again.json()["reason"] == "code-already-used" and "revoked" in again.json()["detail"]
    events = audit(project.owner, project.org_id, action="end_user.session_revoked")
    assert len(events) == 1, events
    assert events[0]["target"] == first["session_id"] and events[0]["actor"] == "system"
    assert events[0]["metadata"] == {"user_id": first["user_id"], "reason": "code_reuse"}
    verdict = backend(harness, project, "POST", "/sessions/verify", json={"token": first["jwt"]}).json()
    assert verdict["valid"] is False and verdict["reason"] == "revoked", verdict
    # The session token the first exchange answered (rotated once above) is dead too; a third use
    # audits nothing more.
    assert exchange(harness, project, code).json()["reason"] == "code-already-used"
    assert len(audit(project.owner, project.org_id, action="end_user.session_revoked")) == 1


def test_each_refused_exchange_names_the_check_that_failed(harness: Harness) -> None:
    project = customer_project(harness)
    other = customer_project(harness, owner=project.owner)
    live_pk = harness.key(project.owner, project.project_id, "publishable", "live")["key"]
    live = CustomerProject(project.owner, project.org_id, project.project_id, "live", live_pk, "")
    _browser, code = sign_up(harness, project, "checks@example.com")
    _plain, plain_code = sign_up(harness, project, "plain@example.com", pkce=False)
    warm(harness, project.publishable, other.publishable, live_pk)
    for secret_key in (project, other):  # a key's first use is recorded
        assert backend(harness, secret_key, "GET", "/users").status_code == 200
    before = snapshot(harness)

    verifier = VERIFIERS[code]
    cases = {
        "code-verifier-required": exchange(harness, project, code, code_verifier=None),
        "unknown-code": exchange(harness, project, secrets.token_urlsafe(32), code_verifier=verifier),
        "redirect-url-mismatch": exchange(harness, project, code, redirect_url=REDIRECT + "?x=1"),
        "code-started-without-pkce": exchange(harness, project, plain_code, code_verifier=verifier),
        "pkce-mismatch": exchange(harness, project, code, code_verifier=pkce_pair()[0]),
    }
    bodies = {reason: _refused(answer, before, harness, reason) for reason, answer in cases.items()}
    assert len({body["detail"] for body in bodies.values()}) == len(bodies)  # each says what to fix
    missing = exchange(harness, project, code, secret=True, code_verifier=None)  # the secret key, no verifier
    _refused(missing, before, harness, "pkce-mismatch")

    # A code of another project or environment looks exactly like an unknown code.
    unknown = bodies["unknown-code"]
    assert _refused(exchange(harness, other, code), before, harness) == unknown
    assert _refused(exchange(harness, other, code, secret=True), before, harness) == unknown
    assert _refused(exchange(harness, live, code), before, harness) == unknown
    assert _refused(exchange(harness, other, plain_code, code_verifier=verifier), before, harness) == unknown

    # The session the code started ended before the exchange (the user was banned).
    user_id = backend(harness, project, "GET", "/users", params={"email": "plain@"}).json()["items"][0]["id"]
    assert backend(harness, project, "POST", f"/users/{user_id}/ban").status_code == 200
    ended = snapshot(harness)
    _refused(exchange(harness, project, plain_code, secret=True), ended, harness, "session-ended")

    clock.advance(harness.settings.end_user_code_seconds + 1)
    warm(harness, project.publishable)
    late = snapshot(harness)
    _refused(exchange(harness, project, code), late, harness, "code-expired")


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
    _refused(exchange(harness, project, code), before, harness, "code-verifier-required")
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
