"""Answers that carry a token or a secret are never stored by a cache (RFC 6749 5.1, RFC 9111 5.2.2.5).

One rule covers them: every answer gets `Cache-Control: no-store` unless its route deliberately sets its
own (public documents: the JWKS, the hosted stylesheet). These tests hold every secret-bearing answer to
it for real, fail when the OpenAPI document grows an answer with a secret-shaped field that no test here
exercises, and walk every route of the app for the default.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.accounts.support import next_code, post_sign_in, start
from tests.endusers.support import customer_project, exchange, refresh, sign_up
from tests.factories import PASSWORD, Harness
from tests.web.routes import route_calls

SECRET_FIELDS = frozenset(
    {"key", "secret", "token", "session_token", "jwt", "csrf_token", "recovery_codes", "otpauth_uri"}
)
"""Answer fields whose (string) value is a credential: a key, a token, a TOTP secret, recovery codes."""

PUBLIC_DOCUMENTS = {
    ("GET", "/v1/projects/{project_id}/jwks.json"): "public, max-age=60",
    ("GET", "/p/assets/hosted.css"): "public, max-age=3600",
    ("GET", "/console/assets/console.css"): "public, max-age=3600",
}
"""The only answers that may be cached, and how."""


def _no_store(response: httpx.Response, label: str) -> None:
    assert response.status_code < 500, (label, response.status_code, response.text)
    assert response.headers.get_list("cache-control") == ["no-store"], (label, response.headers)


def _secret_answers(harness: Harness) -> dict[tuple[str, str], httpx.Response]:
    """Every route that answers a secret, called for real: (method, OpenAPI path) -> its answer."""
    project = customer_project(harness)
    owner = project.owner
    pid = project.project_id
    answers: dict[tuple[str, str], httpx.Response] = {}

    def call(method: str, template: str, path: str, send: Any = None, **kwargs: Any) -> httpx.Response:
        response = (send or owner.request)(method, path, **kwargs)
        assert response.status_code in (200, 201), (method, path, response.text)
        answers[(method, template)] = response
        return response

    harness.client.cookies.clear()
    email = harness.user().email
    call(
        "POST",
        "/console/api/sign-in",
        "/console/api/sign-in",
        harness.client.request,
        json={"email": email, "password": PASSWORD},
    )
    call("GET", "/console/api/me", "/console/api/me")
    key = call(
        "POST",
        "/console/api/projects/{project_id}/keys",
        f"/console/api/projects/{pid}/keys",
        json={"kind": "secret", "environment": "live"},
    ).json()
    call("POST", "/console/api/keys/{key_id}/rotate", f"/console/api/keys/{key['id']}/rotate", json={})
    endpoint = call(
        "POST",
        "/console/api/projects/{project_id}/webhooks",
        f"/console/api/projects/{pid}/webhooks",
        json={"url": "http://127.0.0.1:9/hooks", "environment": "test"},
    ).json()
    call(
        "POST",
        "/console/api/webhooks/{endpoint_id}/rotate-secret",
        f"/console/api/webhooks/{endpoint['id']}/rotate-secret",
        json={},
    )
    call(
        "POST",
        "/console/api/orgs/{org_id}/invitations",
        f"/console/api/orgs/{project.org_id}/invitations",
        json={"role": "viewer"},
    )
    secret = call("POST", "/console/api/mfa/totp", "/console/api/mfa/totp", json={"password": PASSWORD})
    confirm = {"code": next_code(secret.json()["secret"])}
    call("POST", "/console/api/mfa/totp/confirm", "/console/api/mfa/totp/confirm", json=confirm)
    call(
        "POST",
        "/console/api/mfa/recovery-codes",
        "/console/api/mfa/recovery-codes",
        json={"code": next_code(secret.json()["secret"])},
    )
    # The second step of a sign-in with MFA answers the session's CSRF token too.
    pending = start(harness, owner.email)
    second = post_sign_in(harness, {"code": next_code(secret.json()["secret"])}, pending)
    assert second.status_code == 200, second.text
    _no_store(second, "sign-in, second step")

    _browser, code = sign_up(harness, project, "cached@example.com")
    answers[("POST", "/v1/client/sessions/exchange")] = exchanged = exchange(harness, project, code)
    assert exchanged.status_code == 200, exchanged.text
    token = exchanged.json()["session_token"]
    answers[("POST", "/v1/client/sessions/refresh")] = refreshed = refresh(harness, project, token)
    assert refreshed.status_code == 200, refreshed.text
    return answers


def test_every_answer_with_a_secret_is_no_store(harness: Harness) -> None:
    for (method, path), response in _secret_answers(harness).items():
        _no_store(response, f"{method} {path}")


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _secret_fields(doc: dict[str, Any], schema: dict[str, Any], seen: set[str]) -> set[str]:
    """Names of string (or string array) properties with a secret-shaped name, anywhere in a schema."""
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return set()
        seen.add(schema["$ref"])
    schema = _resolve(doc, schema)
    found: set[str] = set()
    for part in ("oneOf", "anyOf", "allOf"):
        for sub in schema.get(part, []):
            found |= _secret_fields(doc, sub, seen)
    if "items" in schema:
        found |= _secret_fields(doc, schema["items"], seen)
    for name, prop in schema.get("properties", {}).items():
        resolved = _resolve(doc, prop)
        types = str(resolved.get("type", "")) + str(_resolve(doc, resolved.get("items", {})).get("type", ""))
        if name in SECRET_FIELDS and "string" in types + str(resolved.get("oneOf", "")):
            found.add(name)
        found |= _secret_fields(doc, prop, seen)
    return found


def test_no_route_answers_a_secret_without_being_exercised_here(harness: Harness) -> None:
    """A new route whose answer holds a key, token or secret must join `_secret_answers` above."""
    doc = harness.client.get("/openapi.json").json()
    exercised = set(_secret_answers(harness))
    secret_routes = {}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                for media in response.get("content", {}).values():
                    fields = _secret_fields(doc, media.get("schema", {}), set())
                    if fields:
                        secret_routes[(method.upper(), path)] = fields
    assert len(secret_routes) >= 10, secret_routes  # the walk finds them (keys, tokens, codes, secrets)
    missing = {route: fields for route, fields in secret_routes.items() if route not in exercised}
    assert not missing, f"routes answering secrets that no test exercises for Cache-Control: {missing}"


def test_every_route_answers_no_store_unless_a_public_document(harness: Harness) -> None:
    """Walks the app's route table: whatever a route answers (here mostly 401, 404, 405, 422), a cache
    may not keep it, but for the listed public documents."""
    seen = 0
    for call in route_calls(harness):
        if (call.method, call.template) in PUBLIC_DOCUMENTS:
            continue
        harness.client.cookies.clear()
        kwargs: dict[str, Any] = {} if call.method in ("GET", "HEAD", "OPTIONS") else {"json": {}}
        _no_store(harness.client.request(call.method, call.url, **kwargs), f"{call.method} {call.path}")
        seen += 1
    assert seen > 100
    # Errors outside any route too.
    _no_store(harness.client.get("/no/such/route"), "404")


def test_public_documents_keep_their_own_caching(harness: Harness) -> None:
    project = customer_project(harness)
    jwks = harness.client.get(f"/v1/projects/{project.project_id}/jwks.json")
    assert jwks.status_code == 200
    assert jwks.headers.get_list("cache-control") == [
        PUBLIC_DOCUMENTS[("GET", "/v1/projects/{project_id}/jwks.json")]
    ]
    css = harness.client.get("/p/assets/hosted.css")
    assert css.headers.get_list("cache-control") == [PUBLIC_DOCUMENTS[("GET", "/p/assets/hosted.css")]]
    console_css = harness.client.get("/console/assets/console.css")
    expected = PUBLIC_DOCUMENTS[("GET", "/console/assets/console.css")]
    assert console_css.headers.get_list("cache-control") == [expected]


def test_hot_path_answers_are_no_store_too(harness: Harness) -> None:
    project = customer_project(harness)
    for _ in range(2):  # the second answer comes from the hot path
        harness.client.cookies.clear()
        config = harness.client.get("/v1/client-config", headers={"x-publishable-key": project.publishable})
        _no_store(config, "client-config")
        _no_store(harness.backend("/v1/backend/project", project.secret), "backend project")
