"""Issue 3 acceptance: an end-user signs up on the hosted page, the customer exchanges the code, its
backend verifies the session JWT against the JWKS with PyJWT, the backend API agrees, and after
revocation both say no."""

from __future__ import annotations

import jwt

from silver_auth.core.urls import session_jwt_issuer
from tests.endusers.support import backend, customer_project, exchange, refresh, sign_up
from tests.factories import Harness


def test_end_user_signs_up_and_the_customer_verifies_the_session(harness: Harness) -> None:
    project = customer_project(harness, "test")
    browser, code = sign_up(harness, project, "ada@example.com")
    assert harness.settings.end_user_cookie_name in browser.cookies

    answer = exchange(harness, project, code)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["session_id"].startswith("sess_") and body["user_id"].startswith("usr_")
    token, session_token = body["jwt"], body["session_token"]

    # The customer backend: fetch the JWKS, verify with a standard library.
    harness.client.cookies.clear()
    jwks = harness.client.get(f"/v1/projects/{project.project_id}/jwks.json")
    assert jwks.status_code == 200
    assert "max-age" in jwks.headers["cache-control"]
    key_set = jwt.PyJWKSet.from_dict(jwks.json())
    kid = jwt.get_unverified_header(token)["kid"]
    signing_key = key_set[kid]
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=[signing_key.algorithm_name],
        audience=project.project_id,
        issuer=session_jwt_issuer(harness.settings.auth_url, project.project_id),
    )
    assert claims["sub"] == body["user_id"]
    assert claims["sid"] == body["session_id"]
    assert claims["env"] == "test"
    assert jwt.get_unverified_header(token)["alg"] == "EdDSA"

    verified = backend(harness, project, "POST", "/sessions/verify", json={"token": token})
    assert verified.status_code == 200, verified.text
    verdict = verified.json()
    assert verdict["valid"] is True and verdict["reason"] is None
    assert verdict["user"]["email"] == "ada@example.com"
    assert verdict["session"]["id"] == body["session_id"]

    refreshed = refresh(harness, project, session_token)
    assert refreshed.status_code == 200, refreshed.text
    # Rotation: every refresh answers the next session token; the one sent is void (RFC 9700 4.14.2).
    session_token = refreshed.json()["session_token"]
    assert session_token != body["session_token"]

    revoked = backend(harness, project, "POST", f"/sessions/{body['session_id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    after = backend(harness, project, "POST", "/sessions/verify", json={"token": token}).json()
    assert after["valid"] is False and after["reason"] == "revoked"
    refused = refresh(harness, project, session_token)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["reason"] == "revoked"
