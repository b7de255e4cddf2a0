"""The OpenAPI document tells the truth: it is valid OpenAPI; every operation declares its real errors
(problem+json, none of Litestar's default 400 schema), its security and its success code; and real
answers, errors included, carry a status the document declares for their operation and a body its
schema for that status accepts. (Schemathesis fuzzes the same promise: test_schemathesis.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from openapi_spec_validator import validate

from silver_auth.web.body import MAX_JSON_DEPTH
from tests.admin.support import platform_admin
from tests.endusers.support import backend, customer_project, exchange, refresh, sign_up
from tests.factories import PASSWORD, Harness

PROBLEM = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
UNSAFE = {"post", "put", "patch", "delete"}
PUBLIC_OPERATIONS = {
    ("get", "/health"),
    ("get", "/v1/config"),
    ("get", "/v1/projects/{project_id}/jwks.json"),
    ("post", "/console/api/sign-in"),
    ("get", "/console/api/oidc/start"),
    ("get", "/console/api/oidc/callback"),
    ("get", "/p/{project_id}/{environment}/.well-known/openid-configuration"),
    ("get", "/p/{project_id}/{environment}/oauth2/jwks"),
}
OAUTH_ERRORS = {"400", "401", "403"}
"""What the OpenID Provider's JSON endpoints answer as RFC 6749 5.2 says: `application/json`, with
`error` beside the problem's members; their other errors are problems like everywhere else."""


@pytest.fixture
def document(harness: Harness) -> dict[str, Any]:
    response = harness.client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "delete", "patch")
    ]


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)  # openapi-spec-validator: raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"].startswith("3.1")
    assert len(operations(document)) > 70


def test_every_error_is_a_problem_and_litestars_default_400_is_gone(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if status[0] not in "45" or (path, status) == ("/health", "503"):
                continue
            if path.startswith("/p/") and status in OAUTH_ERRORS:
                oauth = {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthErrorAnswer"}}}
                assert response["content"] == oauth, (method, path, status)
                continue
            assert response["content"] == {PROBLEM: {"schema": PROBLEM_REF}}, (method, path, status)
            assert response["description"][0].isupper(), (method, path, status)
    text = str(document)
    assert "ValidationException" not in text and "status_code" not in text
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert {"errors", "error", "reason", "over_quota", "sso"} <= problem["properties"].keys()
    assert problem.get("additionalProperties") is not False  # RFC 9457 extension members


def test_errors_follow_from_each_operations_shape(document: dict[str, Any]) -> None:
    """A JSON body: 400, 413, 415, 422; a path id: 404; a secured operation: 401 (and 503, as every
    credential is looked up in the database), but the publishable-key config, whose contract is 404."""
    for method, path, operation in operations(document):
        declared = set(operation["responses"])
        where = (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= declared, where
        if "{" in path:
            assert "404" in declared, where
        if operation.get("security") and path != "/v1/client-config":
            assert {"401", "503"} <= declared, where
        if "401" in declared:
            assert operation["responses"]["401"]["headers"]["WWW-Authenticate"]["required"], where
        if "429" in declared:
            assert operation["responses"]["429"]["headers"]["Retry-After"]["required"], where


def test_routes_declare_their_own_errors(document: dict[str, Any]) -> None:
    def declared(method: str, path: str) -> set[str]:
        return set(document["paths"][path][method]["responses"])

    assert {"401", "403", "429"} <= declared("post", "/console/api/sign-in")
    assert "409" in declared("post", "/console/api/orgs/{org_id}/leave")
    assert "409" in declared("post", "/console/api/keys/{key_id}/rotate")
    assert "409" in declared("put", "/admin/api/orgs/{org_id}/plan")
    assert "403" in declared("post", "/console/api/orgs/{org_id}/projects")  # quota
    assert {"403", "409"} <= declared("post", "/v1/backend/users")
    assert "429" in declared("post", "/console/api/mfa/totp/confirm")
    assert "400" in declared("post", "/v1/client/sessions/exchange")  # invalid_grant
    assert "404" in declared("get", "/v1/client-config") and "401" not in declared("get", "/v1/client-config")
    # GET on an org: any member may read (no 403); an unknown or foreign org is a 404.
    assert "403" not in declared("get", "/console/api/orgs/{org_id}")
    assert "403" in declared("get", "/console/api/orgs/{org_id}/audit")  # admin and up


def test_security_schemes_and_requirements_per_operation(harness: Harness, document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["consoleSession"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": harness.settings.session_cookie_name,
        "description": schemes["consoleSession"]["description"],
    }
    assert (schemes["csrfToken"]["in"], schemes["csrfToken"]["name"]) == ("header", "X-CSRF-Token")
    assert (schemes["secretKey"]["type"], schemes["secretKey"]["scheme"]) == ("http", "bearer")
    assert (schemes["publishableKey"]["in"], schemes["publishableKey"]["name"]) == (
        "header",
        "X-Publishable-Key",
    )
    for method, path, operation in operations(document):
        security = operation.get("security")
        if (method, path) in PUBLIC_OPERATIONS:
            expected = None
        elif path.startswith(("/console/api/", "/admin/api/")):
            expected = [
                {"consoleSession": [], "csrfToken": []} if method in UNSAFE else {"consoleSession": []}
            ]
        elif path.startswith("/v1/backend/"):
            expected = [{"secretKey": []}]
        elif path.startswith("/v1/client/"):
            expected = [{"publishableKey": []}, {"secretKey": []}]
        elif path == "/v1/client-config":
            expected = [{"publishableKey": []}, {"publishableKeyQuery": []}]
        elif path.endswith("/oauth2/userinfo"):
            expected = [{"accessToken": []}]
        elif path.endswith("/oauth2/introspect"):
            expected = [{"clientSecretBasic": []}]
        elif path.startswith("/p/"):  # token, revoke: a public client sends no secret
            expected = [{}, {"clientSecretBasic": []}]
        else:
            raise AssertionError(f"no expectation for {method} {path}")
        assert security == expected, (method, path, security)


def test_success_codes_and_media_types(document: dict[str, Any]) -> None:
    def responses(method: str, path: str) -> dict[str, Any]:
        found: dict[str, Any] = document["paths"][path][method]["responses"]
        return found

    assert set(responses("post", "/console/api/sign-out")) & {"200", "201"} == set()
    assert "content" not in responses("post", "/console/api/sign-out")["204"]
    for path in (
        "/console/api/orgs",
        "/console/api/orgs/{org_id}/projects",
        "/console/api/orgs/{org_id}/invitations",
        "/console/api/projects/{project_id}/keys",
        "/v1/backend/users",
    ):
        assert "201" in responses("post", path), path
    jwks = responses("get", "/v1/projects/{project_id}/jwks.json")["200"]
    assert jwks["content"] == {
        "application/jwk-set+json": {"schema": {"$ref": "#/components/schemas/JwkSet"}}
    }
    assert "503" in responses("get", "/health")
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if status == "204":
                assert "content" not in response, (method, path)


def test_request_bodies_that_refuse_unknown_fields_say_so(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in ("SignIn", "OrgCreate", "ApiKeyCreate", "EndUserCreate", "CodeExchange", "PlanChange"):
        assert schemas[name]["additionalProperties"] is False, name


class Conformance:
    """Checks real answers against the document, as schemathesis' own response validation does."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schema = schemathesis.openapi.from_dict(document)
        self.checked: set[tuple[str, str, int]] = set()

    def __call__(self, method: str, path: str, response: httpx.Response, status: int) -> None:
        assert response.status_code == status, (method, path, response.status_code, response.text)
        declared = self.document["paths"][path][method.lower()]["responses"]
        assert str(status) in declared, f"{method} {path}: {status} is not declared ({sorted(declared)})"
        content = declared[str(status)].get("content")
        if content is None:
            assert not response.content, (method, path, status)
        else:
            media = response.headers["content-type"].split(";")[0]
            assert media in content, (method, path, status, media)
        self.schema[path][method.upper()].validate_response(response)  # raises if the body disagrees
        self.checked.add((method.upper(), path, status))


def test_real_answers_agree_with_the_document(harness: Harness, document: dict[str, Any]) -> None:
    check = Conformance(document)
    client = harness.client
    project = customer_project(harness)
    owner, org_id, project_id = project.owner, project.org_id, project.project_id

    def anonymous(method: str, url: str, **kwargs: Any) -> httpx.Response:
        client.cookies.clear()
        return client.request(method, url, **kwargs)

    # public
    check("GET", "/health", anonymous("GET", "/health"), 200)
    check("GET", "/v1/config", anonymous("GET", "/v1/config"), 200)
    jwks = "/v1/projects/{project_id}/jwks.json"
    check("GET", jwks, anonymous("GET", f"/v1/projects/{project_id}/jwks.json"), 200)
    check("GET", jwks, anonymous("GET", "/v1/projects/prj_nosuchproject/jwks.json"), 404)
    config = "/v1/client-config"
    check("GET", config, anonymous("GET", config, headers={"x-publishable-key": project.publishable}), 200)
    check("GET", config, anonymous("GET", config, params={"publishable_key": project.publishable}), 200)
    check("GET", config, anonymous("GET", config, headers={"x-publishable-key": "pk_live_nope"}), 404)
    check("GET", config, anonymous("GET", config, params={"publishable_key": "x" * 101}), 422)

    # console sign-in, session, CSRF
    sign_in = "/console/api/sign-in"
    check("POST", sign_in, anonymous("POST", sign_in, json={"email": owner.email, "password": "wrong"}), 401)
    check("POST", sign_in, anonymous("POST", sign_in, json={"email": 5}), 422)
    check(
        "POST",
        sign_in,
        anonymous("POST", sign_in, content=b"{", headers={"content-type": "application/json"}),
        400,
    )
    check(
        "POST", sign_in, anonymous("POST", sign_in, content=b"x", headers={"content-type": "text/plain"}), 415
    )
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    check(
        "POST",
        sign_in,
        anonymous("POST", sign_in, content=deep, headers={"content-type": "application/json"}),
        400,
    )
    check("POST", sign_in, anonymous("POST", sign_in, json={"email": owner.email, "password": PASSWORD}), 200)
    origin = {"origin": "https://evil.example"}
    check("POST", sign_in, anonymous("POST", sign_in, json={"email": owner.email}, headers=origin), 403)
    check("GET", "/console/api/me", anonymous("GET", "/console/api/me"), 401)
    check("GET", "/console/api/me", owner.get("/console/api/me"), 200)
    check("POST", "/console/api/orgs", owner.post("/console/api/orgs", csrf=False, json={"name": "x"}), 403)
    check("POST", "/console/api/orgs", owner.post("/console/api/orgs", json={"name": "x" * 70_000}), 413)
    check("POST", "/console/api/orgs", owner.post("/console/api/orgs", json={"name": "Second"}), 201)
    check("GET", "/console/api/sessions", owner.get("/console/api/sessions"), 200)

    # orgs, roles, projects, keys
    org = "/console/api/orgs/{org_id}"
    check("GET", org, owner.get(f"/console/api/orgs/{org_id}"), 200)
    check("GET", org, owner.get("/console/api/orgs/org_nosuchorg"), 404)
    check("POST", org + "/leave", owner.post(f"/console/api/orgs/{org_id}/leave"), 409)  # the last owner
    viewer = harness.member(owner, org_id, "viewer")
    check("GET", org + "/audit", viewer.get(f"/console/api/orgs/{org_id}/audit"), 403)
    check("GET", org + "/audit", owner.get(f"/console/api/orgs/{org_id}/audit", params={"since": "0.5"}), 422)
    check("GET", org + "/audit", owner.get(f"/console/api/orgs/{org_id}/audit"), 200)
    check("PATCH", org, owner.patch(f"/console/api/orgs/{org_id}", json={"name": "Renamed"}), 200)
    keys = "/console/api/projects/{project_id}/keys"
    created = owner.post(
        f"/console/api/projects/{project_id}/keys", json={"kind": "secret", "environment": "test"}
    )
    check("POST", keys, created, 201)
    check("GET", keys, owner.get(f"/console/api/projects/{project_id}/keys"), 200)
    revoke = "/console/api/keys/{key_id}"
    check("DELETE", revoke, owner.delete(f"/console/api/keys/{created.json()['id']}"), 200)
    rotate = owner.post(f"/console/api/keys/{created.json()['id']}/rotate", json={"grace_seconds": 0})
    check("POST", "/console/api/keys/{key_id}/rotate", rotate, 409)
    check("GET", "/admin/api/orgs", owner.get("/admin/api/orgs"), 403)  # not SEQN-A
    admin = platform_admin(harness)
    plan = "/admin/api/orgs/{org_id}/plan"
    check("PUT", plan, admin.request("PUT", f"/admin/api/orgs/{org_id}/plan", json={"plan": "pro"}), 200)
    check(
        "PUT",
        plan,
        admin.request("PUT", f"/admin/api/orgs/{org_id}/plan", json={"plan": "pro", "force": 0}),
        422,
    )

    # backend and client
    users = "/v1/backend/users"
    check("GET", users, anonymous("GET", users), 401)
    check("GET", users, backend(harness, project, "GET", "/users"), 200)
    made = backend(harness, project, "POST", "/users", json={"email": "ada@example.com"})
    check("POST", users, made, 201)
    check("POST", users, backend(harness, project, "POST", "/users", json={"email": "ada@example.com"}), 409)
    user = "/v1/backend/users/{user_id}"
    check("GET", user, backend(harness, project, "GET", "/users/usr_nosuchuser"), 404)
    check("DELETE", user, backend(harness, project, "DELETE", f"/users/{made.json()['id']}"), 204)
    check("GET", "/v1/backend/project", harness.backend("/v1/backend/project", project.secret), 200)
    _, code = sign_up(harness, project, "grace@example.com")
    exchanged = exchange(harness, project, code)
    check("POST", "/v1/client/sessions/exchange", exchanged, 200)
    check("POST", "/v1/client/sessions/exchange", exchange(harness, project, code), 400)  # used twice
    refreshed = refresh(harness, project, exchanged.json()["session_token"])
    check("POST", "/v1/client/sessions/refresh", refreshed, 401)  # the reuse ended the session
    check(
        "POST", "/v1/client/sessions/refresh", anonymous("POST", "/v1/client/sessions/refresh", json={}), 401
    )

    # sign-out last: it ends the owner's session
    check("POST", "/console/api/sign-out", owner.post("/console/api/sign-out"), 204)
    assert len({(method, path) for method, path, _ in check.checked}) >= 20
