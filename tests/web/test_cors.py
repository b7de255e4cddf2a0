"""CORS for browser callers of the publishable-key routes: only the project's allowed origins may read
the answers (exact match); preflights state methods and headers; the hot path is covered too."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from silver_auth.app import create_app
from tests.conftest import base_settings
from tests.dbstate import snapshot
from tests.endusers.support import REDIRECT, customer_project, exchange, refresh, sign_up, warm
from tests.factories import Harness

APP = "https://app.example.com"
OTHER = "https://other.example.com"
ACAO = "access-control-allow-origin"


def _project(harness: Harness) -> tuple[httpx.Client, str]:
    project = customer_project(harness)
    path = f"/console/api/projects/{project.project_id}"
    project.owner.ok("PATCH", path, json={"allowed_origins": [APP]})
    harness.client.cookies.clear()
    return harness.client, project.publishable


def test_preflight_states_methods_and_headers(harness: Harness) -> None:
    client, _ = _project(harness)
    for path, method in (("/v1/client-config", "GET"), ("/v1/client/sessions/exchange", "POST")):
        answer = client.options(
            path,
            headers={
                "origin": APP,
                "access-control-request-method": method,
                "access-control-request-headers": "x-publishable-key, content-type",
            },
        )
        assert answer.status_code == 204, answer.text
        assert answer.headers[ACAO] == APP
        assert method in answer.headers["access-control-allow-methods"]
        assert "x-publishable-key" in answer.headers["access-control-allow-headers"]
        assert "access-control-allow-credentials" not in answer.headers  # these routes take no cookies


@pytest.mark.parametrize("attempt", range(2))  # the first answer fills the key cache; the second is hot
def test_only_allowed_origins_may_read_client_config(harness: Harness, attempt: int) -> None:
    client, pk = _project(harness)
    for _ in range(attempt + 1):
        allowed = client.get("/v1/client-config", headers={"origin": APP, "x-publishable-key": pk})
    assert allowed.status_code == 200 and allowed.headers[ACAO] == APP
    assert "Origin" in allowed.headers["vary"]
    for origin in ("https://evil.example", APP + ":8443", "http://app.example.com", APP + ".evil.example"):
        refused = client.get("/v1/client-config", headers={"origin": origin, "x-publishable-key": pk})
        assert refused.status_code == 200 and ACAO not in refused.headers, origin
    by_query = client.get("/v1/client-config", params={"publishable_key": pk}, headers={"origin": APP})
    assert by_query.headers[ACAO] == APP


def test_unknown_keys_and_other_routes_get_no_cors(harness: Harness) -> None:
    client, pk = _project(harness)
    unknown = client.get(
        "/v1/client-config", headers={"origin": APP, "x-publishable-key": "pk_test_" + "x" * 43}
    )
    assert unknown.status_code == 404 and ACAO not in unknown.headers
    console = client.get("/console/api/me", headers={"origin": APP})
    assert ACAO not in console.headers
    exchange = client.post(
        "/v1/client/sessions/exchange",
        headers={"origin": APP, "x-publishable-key": pk},
        json={"code": "nope", "redirect_url": REDIRECT, "code_verifier": "v" * 43},
    )
    assert exchange.status_code == 400 and exchange.headers[ACAO] == APP  # the page may read the refusal


def test_allowed_origins_read_answers_with_a_key_cache_ttl_of_zero(tmp_path: Path, database_url: str) -> None:
    """An operator may pick a TTL of 0 for instant revocation: CORS must then still allow the project's
    origins (it reads the principal the route verified, not a cache the route happened to warm)."""
    settings = base_settings(tmp_path, DATABASE_URL=database_url, SILVER_KEY_CACHE_TTL_SECONDS=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client_, pk = _project(Harness(client, settings))
        for _ in range(2):
            answer = client_.get("/v1/client-config", headers={"origin": APP, "x-publishable-key": pk})
            assert answer.status_code == 200 and answer.headers.get(ACAO) == APP
        refused = client_.get(
            "/v1/client-config", headers={"origin": "https://evil.example", "x-publishable-key": pk}
        )
        assert ACAO not in refused.headers
        exchange = client_.post(
            "/v1/client/sessions/exchange",
            headers={"origin": APP, "x-publishable-key": pk},
            json={"code": "nope", "redirect_url": REDIRECT, "code_verifier": "v" * 43},
        )
        assert exchange.status_code == 400 and exchange.headers.get(ACAO) == APP


# --- preflights approve only allowed origins; Vary always; a refused origin changes nothing -----------


def _preflight(client: httpx.Client, path: str, origin: str, **params: str) -> httpx.Response:
    client.cookies.clear()
    return client.options(
        path,
        params=params,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-publishable-key, content-type",
        },
    )


def test_preflights_from_origins_no_project_allows_are_refused(harness: Harness) -> None:
    client, _ = _project(harness)
    client_paths = ("exchange", "refresh", "sign-out")
    for path in ("/v1/client-config", *(f"/v1/client/sessions/{name}" for name in client_paths)):
        for origin in ("https://evil.example", APP + ":8443", "http://app.example.com", "null"):
            refused = _preflight(client, path, origin)
            assert refused.status_code == 403, (path, origin, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            assert ACAO not in refused.headers and "access-control-allow-methods" not in refused.headers
            assert "Origin" in refused.headers["vary"]
        assert _preflight(client, path, APP).status_code == 204


def test_preflights_naming_a_key_approve_only_its_projects_origins(harness: Harness) -> None:
    client, pk = _project(harness)
    other = customer_project(harness)  # allows another origin
    other.owner.ok("PATCH", f"/console/api/projects/{other.project_id}", json={"allowed_origins": [OTHER]})
    path = "/v1/client/sessions/refresh"
    assert _preflight(client, path, APP, publishable_key=pk).headers[ACAO] == APP
    assert _preflight(client, path, OTHER).headers[ACAO] == OTHER  # some project allows it: no key to say
    assert _preflight(client, path, OTHER, publishable_key=pk).status_code == 403  # not this key's project
    assert _preflight(client, path, APP, publishable_key=other.publishable).status_code == 403
    assert _preflight(client, path, APP, publishable_key="pk_test_" + "x" * 43).status_code == 403


@pytest.mark.parametrize("attempt", range(2))  # cold, then from the hot path
def test_answers_vary_on_origin_with_or_without_one(harness: Harness, attempt: int) -> None:
    client, pk = _project(harness)
    for _ in range(attempt + 1):
        client.cookies.clear()
        config = client.get("/v1/client-config", headers={"x-publishable-key": pk})
    assert config.status_code == 200 and config.headers["vary"] == "Origin"
    client.cookies.clear()
    refused = client.post("/v1/client/sessions/refresh", json={"session_token": "nope"})
    assert refused.status_code == 401 and refused.headers["vary"] == "Origin"
    assert "vary" not in client.get("/health").headers


def test_refresh_and_exchange_from_a_disallowed_origin_change_nothing(harness: Harness) -> None:
    """CORS only hides the answer from the page; the server must not act on the request either."""
    project = customer_project(harness)
    project.owner.ok("PATCH", f"/console/api/projects/{project.project_id}", json={"allowed_origins": [APP]})
    _browser, code = sign_up(harness, project, "origin@example.com")
    warm(harness, project.publishable)
    assert harness.backend("/v1/backend/project", project.secret).status_code == 200  # its first use
    before = snapshot(harness)
    for origin in ("https://evil.example", "null"):
        refused = exchange(harness, project, code, headers={"origin": origin})
        assert refused.status_code == 403 and ACAO not in refused.headers, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    assert snapshot(harness) == before  # the code is still unused
    session_token = exchange(harness, project, code, headers={"origin": APP}).json()["session_token"]

    before = snapshot(harness)
    for origin, secret in (("https://evil.example", False), ("https://evil.example", True)):
        refused = refresh(harness, project, session_token, secret=secret, headers={"origin": origin})
        assert refused.status_code == 403 and ACAO not in refused.headers, refused.text
    assert snapshot(harness) == before  # nothing rotated, nothing revoked
    rotated = refresh(harness, project, session_token, headers={"origin": APP})
    assert rotated.status_code == 200 and rotated.headers[ACAO] == APP  # the token was still the current one
    assert (
        refresh(harness, project, rotated.json()["session_token"]).status_code == 200
    )  # no Origin: a server
    # Used up now (checked last: a second use of a code revokes the session it started).
    assert exchange(harness, project, code).status_code == 400
