"""Who may redeem a code, and session token rotation (OAuth 2.1 / RFC 9700): the publishable key needs
the PKCE S256 verifier; only the secret key redeems a code started without PKCE; the exchange repeats
the redirect URL; every refresh rotates the session token, and replaying a replaced one revokes the
session (G29), audited. Tokens are stored as hashes only (G17). Refusals write nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from silver_auth.core.crypto import token_hash
from silver_auth.db.session import transaction
from silver_auth.endusers import grants
from silver_auth.endusers.service import ProjectEnvironment
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
OTHER_REDIRECT = "https://app.example.com/other"
# A reuse revokes the session: its row, the audit event, and the session.revoked webhook event.
REUSE_WRITES = {"end_user_sessions", "audit_events", "audit_chain_head", "webhook_events"}


def _still(harness: Harness, *projects: CustomerProject) -> dict[str, list[str]]:
    """Warm both keys of each project (a cache fill records a key's last use), then snapshot."""
    for project in projects:
        if project.publishable:
            warm(harness, project.publishable)
        assert backend(harness, project, "GET", "/users").status_code == 200
    return snapshot(harness)


def _invalid_grant(response: httpx.Response, before: dict[str, list[str]], harness: Harness) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith("/invalid-grant")
    assert snapshot(harness) == before


def _unauthorized(response: httpx.Response, reason: str | None = None) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body.get("reason") == reason, body
    return body


def _session(harness: Harness, project: CustomerProject, email: str) -> dict[str, Any]:
    _browser, code = sign_up(harness, project, email)
    answer = exchange(harness, project, code)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_a_publishable_key_exchange_needs_pkce(harness: Harness) -> None:
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "no-pkce@example.com", pkce=False)
    before = _still(harness, project)
    missing = exchange(harness, project, code)
    _invalid_grant(missing, before, harness)
    assert "code_verifier" in missing.json()["detail"]
    # A verifier cannot stand in for a challenge the page never got.
    _invalid_grant(exchange(harness, project, code, code_verifier=pkce_pair()[0]), before, harness)
    # The customer's server, with the secret key, redeems it without PKCE.
    answer = exchange(harness, project, code, secret=True)
    assert answer.status_code == 200, answer.text
    assert answer.json()["session_token"] and answer.json()["jwt"]
    assert exchange(harness, project, code, secret=True).status_code == 400  # still single use


def test_a_code_started_with_pkce_needs_its_verifier_whoever_redeems_it(harness: Harness) -> None:
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "pkce@example.com")
    before = _still(harness, project)
    wrong = pkce_pair()[0]
    _invalid_grant(exchange(harness, project, code, code_verifier=wrong), before, harness)
    _invalid_grant(exchange(harness, project, code, secret=True, code_verifier=None), before, harness)
    _invalid_grant(exchange(harness, project, code, secret=True, code_verifier=wrong), before, harness)
    malformed = exchange(harness, project, code, code_verifier="short")  # RFC 7636: 43..128 characters
    assert malformed.status_code == 422 and snapshot(harness) == before
    assert exchange(harness, project, code).status_code == 200


def test_the_exchange_repeats_the_redirect_url(harness: Harness) -> None:
    project = customer_project(harness, redirect_urls=[REDIRECT, OTHER_REDIRECT])
    _browser, code = sign_up(harness, project, "redirect@example.com")
    before = _still(harness, project)
    for absent in (None, ""):
        response = exchange(harness, project, code, redirect_url=absent)
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith("/invalid-request")
        assert response.headers["content-type"].startswith(PROBLEM)
        assert snapshot(harness) == before
    for other in (OTHER_REDIRECT, REDIRECT + "/", REDIRECT.upper(), REDIRECT + "?x=1"):
        _invalid_grant(exchange(harness, project, code, redirect_url=other), before, harness)
        _invalid_grant(exchange(harness, project, code, secret=True, redirect_url=other), before, harness)
    assert exchange(harness, project, code, redirect_url=REDIRECT).status_code == 200


def test_only_the_keys_of_the_code_environment_redeem_it(harness: Harness) -> None:
    project = customer_project(harness)
    other = customer_project(harness, owner=project.owner)
    _browser, code = sign_up(harness, project, "keys@example.com", pkce=False)
    live_sk = harness.key(project.owner, project.project_id, "secret", "live")["key"]
    live = CustomerProject(project.owner, project.org_id, project.project_id, "live", "", live_sk)
    before = _still(harness, project, other, live)
    _invalid_grant(exchange(harness, other, code, secret=True), before, harness)
    _invalid_grant(exchange(harness, live, code, secret=True), before, harness)
    # A Bearer header is the credential when present: a wrong one is 401, even next to a valid pk.
    harness.client.cookies.clear()
    body = {"code": code, "redirect_url": REDIRECT}
    for bearer in ("sk_test_nope", project.publishable, ""):
        headers = {"authorization": f"Bearer {bearer}", "x-publishable-key": project.publishable}
        _unauthorized(harness.client.post("/v1/client/sessions/exchange", json=body, headers=headers))
    assert snapshot(harness) == before
    assert exchange(harness, project, code, secret=True).status_code == 200


def test_g17_every_refresh_rotates_the_session_token(harness: Harness) -> None:
    project = customer_project(harness)
    first = _session(harness, project, "rotate@example.com")
    tokens = [first["session_token"]]
    for secret in (False, True):  # either key refreshes
        answer = refresh(harness, project, tokens[-1], secret=secret)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["session_id"] == first["session_id"] and body["user_id"] == first["user_id"]
        assert body["session_token"] not in tokens and body["jwt"] != first["jwt"]
        tokens.append(body["session_token"])
    verdict = backend(harness, project, "POST", "/sessions/verify", json={"token": body["jwt"]}).json()
    assert verdict["valid"] is True
    database = repr(snapshot(harness))
    assert not any(token in database for token in tokens)
    assert all(token_hash(token) in database for token in tokens)  # current one + retired ones


def test_g29_reusing_a_replaced_session_token_revokes_the_session(harness: Harness) -> None:
    project = customer_project(harness)
    first = _session(harness, project, "stolen@example.com")
    old = first["session_token"]
    rotated = refresh(harness, project, old).json()
    new, jwt = rotated["session_token"], rotated["jwt"]
    before = _still(harness, project)

    problem = _unauthorized(refresh(harness, project, old), "refresh-token-reuse")
    assert old not in repr(problem)
    after = snapshot(harness)
    changed = {table for table in after if after[table] != before[table]}
    assert changed <= REUSE_WRITES and {"end_user_sessions", "audit_events"} <= changed, changed
    added = sorted(set(after["audit_events"]) - set(before["audit_events"]))
    assert len(added) == 1 and "end_user.session_revoked" in added[0], added
    assert "refresh_token_reuse" in added[0] and first["session_id"] in added[0]
    assert old not in added[0] and new not in added[0]

    verdict = backend(harness, project, "POST", "/sessions/verify", json={"token": jwt}).json()
    assert verdict["valid"] is False and verdict["reason"] == "revoked"
    _unauthorized(refresh(harness, project, new), "revoked")  # the thief's (or owner's) new token dies too
    _unauthorized(refresh(harness, project, old), "revoked")  # a second replay: no second audit
    assert snapshot(harness) == after


def test_foreign_or_unknown_session_tokens_write_nothing(harness: Harness) -> None:
    project = customer_project(harness)
    other = customer_project(harness, owner=project.owner)
    first = _session(harness, project, "foreign@example.com")
    old = first["session_token"]
    new = refresh(harness, project, old).json()["session_token"]
    before = _still(harness, project, other)
    # Replayed through another project's key, a retired token is just unknown: no revocation.
    _unauthorized(refresh(harness, other, old))
    _unauthorized(refresh(harness, other, new, secret=True))
    _unauthorized(refresh(harness, project, pkce_pair()[0]))
    assert snapshot(harness) == before
    assert refresh(harness, project, new).status_code == 200


def _race(
    harness: Harness, once: Callable[[], Awaitable[grants.EndUserSessionIssued]], reason: str
) -> grants.EndUserSessionIssued:
    """Run `once` twice at the same time: one issues, the other is refused with `reason`."""

    async def race() -> list[Any]:
        return list(await asyncio.gather(once(), once(), return_exceptions=True))

    outcomes = harness.run(race)
    issued = [o for o in outcomes if isinstance(o, grants.EndUserSessionIssued)]
    refused = [o for o in outcomes if not isinstance(o, grants.EndUserSessionIssued)]
    assert len(issued) == 1 and len(refused) == 1, outcomes
    assert getattr(refused[0], "extra", {}).get("reason") == reason, refused
    return issued[0]


def test_g29_two_refreshes_racing_with_one_token_revoke_the_session(harness: Harness) -> None:
    """No grace period (docs/end-users.md): one of the two rotates, the other is a replay."""
    project = customer_project(harness)
    first = _session(harness, project, "race@example.com")
    runtime, scope = harness.runtime, ProjectEnvironment(project.project_id, project.environment)

    async def once() -> grants.EndUserSessionIssued:
        async with transaction(runtime.sessionmaker) as db:
            return await grants.refresh(
                db, runtime.sessionmaker, runtime.settings, scope, first["session_token"]
            )

    issued = _race(harness, once, "refresh-token-reuse")
    _unauthorized(refresh(harness, project, issued.session_token), "revoked")


def test_g29_two_exchanges_racing_with_one_code_revoke_the_session(harness: Harness) -> None:
    """RFC 6749 4.1.2 under a race: one exchange wins, the other is a second redemption, and the
    session the winner started is revoked (its session token refreshes nothing)."""
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "code-race@example.com", pkce=False)
    runtime, scope = harness.runtime, ProjectEnvironment(project.project_id, project.environment)
    presented = grants.CodeRedemption(code, REDIRECT, None, confidential=True)

    async def once() -> grants.EndUserSessionIssued:
        async with transaction(runtime.sessionmaker) as db:
            return await grants.exchange_code(db, runtime.sessionmaker, runtime.settings, scope, presented)

    issued = _race(harness, once, "code-already-used")
    _unauthorized(refresh(harness, project, issued.session_token), "revoked")
