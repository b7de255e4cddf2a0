"""HTTP behaviour of every answer: security headers (G2, G3) and problem+json errors that write nothing."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from silver_auth.app import create_app
from silver_auth.db.engine import create_sessionmaker
from silver_auth.settings import Settings
from silver_auth.web import http as api_http
from tests.conftest import base_settings
from tests.dbstate import chain_head_seq, snapshot
from tests.factories import ConsoleUser, Harness

PROBLEM = "application/problem+json"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
}
DEFAULT_LIMIT = 64 * 1024


@contextmanager
def running(settings: Settings) -> Iterator[Harness]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Harness(client, settings)


def assert_security_headers(response: httpx.Response, label: str = "") -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (label, response.status_code, name, response.headers)
    csp = response.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, (label, response.status_code, csp)
    assert len(response.headers.get_list("x-content-type-options")) == 1, label


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM, response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body["type"], str) and body["type"].startswith("https://")
    assert isinstance(body["title"], str) and body["title"]
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert_security_headers(response, f"problem {status}")
    return body


@contextmanager
def writes_nothing(harness: Harness) -> Iterator[None]:
    """The block must leave every table, and the audit chain head, exactly as it found them."""
    before, head = snapshot(harness), chain_head_seq(harness)
    yield
    assert chain_head_seq(harness) == head
    assert snapshot(harness) == before


@pytest.fixture
def owner(harness: Harness) -> ConsoleUser:
    return harness.user()


# --- security headers ---------------------------------------------------------------------------------


def test_g3_security_headers_on_every_kind_of_answer(harness: Harness, owner: ConsoleUser) -> None:
    client = harness.client
    org = harness.org(owner)
    anonymous: Callable[..., httpx.Response] = client.request
    responses: dict[str, tuple[int, httpx.Response]] = {
        "200 health": (200, anonymous("GET", "/health")),
        "200 config": (200, anonymous("GET", "/v1/config")),
        "200 openapi": (200, anonymous("GET", "/openapi.json")),
        "200 console": (200, owner.get("/console/api/me")),
        "201 created": (201, owner.post("/console/api/orgs", json={"name": "Headers"})),
        "204 no content": (204, owner.delete(f"/console/api/orgs/{org['id']}")),
        "400 malformed": (
            400,
            owner.post("/console/api/orgs", content=b"{", headers={"content-type": "application/json"}),
        ),
        "401 anonymous": (401, anonymous("GET", "/console/api/me")),
        "401 backend": (401, anonymous("GET", "/v1/backend/project")),
        "403 csrf": (403, owner.post("/console/api/orgs", csrf=False, json={"name": "x"})),
        "404 route": (404, anonymous("GET", "/no/such/route")),
        "404 id": (404, owner.get("/console/api/orgs/org_nosuchorg")),
        "405 method": (405, anonymous("PUT", "/health")),
        "413 body": (413, owner.post("/console/api/orgs", json={"name": "x" * (DEFAULT_LIMIT + 1)})),
        "422 invalid": (422, owner.post("/console/api/orgs", json={"name": 5})),
    }
    for label, (status, response) in responses.items():
        assert response.status_code == status, (label, response.text)
        assert_security_headers(response, label)
        assert "strict-transport-security" not in response.headers, label  # plain-http development


@pytest.mark.parametrize(
    ("accounts_url", "auth_url", "hsts"),
    [
        ("https://accounts.seqn.in", "https://auth.seqn.in", True),
        ("https://accounts.seqn.in", "http://auth.seqn.in", False),
        ("http://accounts.seqn.in", "https://auth.seqn.in", False),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000", False),
    ],
)
def test_g2_hsts_with_include_subdomains_only_when_both_public_urls_are_https(
    tmp_path: Path, database_url: str, accounts_url: str, auth_url: str, hsts: bool
) -> None:
    """For a host that is neither public URL's (the test client's own); the answering host's own URL
    decides otherwise (tests/web/test_semantics.py)."""
    settings = base_settings(
        tmp_path, DATABASE_URL=database_url, SILVER_ACCOUNTS_URL=accounts_url, SILVER_AUTH_URL=auth_url
    )
    with running(settings) as harness:
        for response in (
            harness.client.get("/health"),
            harness.client.get("/nope"),
            harness.client.get("/console/api/me"),
        ):
            assert_security_headers(response)
            value = response.headers.get("strict-transport-security")
            if not hsts:
                assert value is None
                continue
            assert value is not None
            directives = [part.strip() for part in value.split(";")]
            assert "includeSubDomains" in directives
            max_age = next(int(d.split("=", 1)[1]) for d in directives if d.startswith("max-age="))
            assert max_age >= 31536000


# --- 400 and 422 --------------------------------------------------------------------------------------

MALFORMED = [b"{", b'{"name": ', b"{name: 'x'}", b'{"name": "x",}', b"\xff\xfe\x00", b"nul", b'"unterminated']


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_json_is_400_and_writes_nothing(harness: Harness, owner: ConsoleUser, body: bytes) -> None:
    with writes_nothing(harness):
        response = owner.post("/console/api/orgs", content=body, headers={"content-type": "application/json"})
        problem = assert_problem(response, 400)
        anonymous = harness.client.post(
            "/console/api/sign-in", content=body, headers={"content-type": "application/json"}
        )
        assert assert_problem(anonymous, 400)["type"] == problem["type"]


INVALID_ORG_BODIES: list[tuple[str, Any, str | None]] = [
    ("wrong type", {"name": 5}, "name"),
    ("null", {"name": None}, "name"),
    ("missing field", {}, None),
    ("unknown field", {"name": "Acme", "plan": "scale"}, None),
    ("too short", {"name": ""}, "name"),
    ("too long", {"name": "x" * 101}, "name"),
    ("array instead of object", [{"name": "Acme"}], None),
    ("string instead of object", "Acme", None),
]


@pytest.mark.parametrize(
    ("label", "body", "field"), INVALID_ORG_BODIES, ids=[c[0] for c in INVALID_ORG_BODIES]
)
def test_invalid_fields_are_422_naming_the_field_and_write_nothing(
    harness: Harness, owner: ConsoleUser, label: str, body: Any, field: str | None
) -> None:
    with writes_nothing(harness):
        problem = assert_problem(owner.post("/console/api/orgs", json=body), 422)
    errors = problem["errors"]
    assert errors and all({"message", "key"} <= set(error) for error in errors), problem
    if field is not None:
        assert field in [error["key"] for error in errors], problem
    if label == "unknown field":
        assert "plan" in errors[0]["message"]


def test_invalid_enum_values_are_422(harness: Harness, owner: ConsoleUser) -> None:
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    path = f"/console/api/projects/{project['id']}/keys"
    with writes_nothing(harness):
        for body in (
            {"kind": "master", "environment": "live"},
            {"kind": "secret", "environment": "prod"},
            {"kind": "secret"},
            {"kind": ["secret"], "environment": "live"},
        ):
            assert_problem(owner.post(path, json=body), 422)


def test_sign_in_with_wrong_types_is_422_and_the_password_never_echoes(harness: Harness) -> None:
    password = "sk_live_" + secrets.token_hex(16)
    with writes_nothing(harness):
        for body in (
            {"email": 5, "password": password},
            {"email": "a@example.com"},
            {"email": "a@example.com", "password": password, "remember": True},
            {"email": "a@example.com", "password": ["x"]},
        ):
            response = harness.client.post("/console/api/sign-in", json=body)
            problem = assert_problem(response, 422)
            assert password not in response.text and password[8:] not in response.text
            assert problem["errors"]


# --- 404 and 405 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/console/api/nope", "/v1/nope", "/console/api/orgs/x/y/z", "/health/x"]
)
def test_unknown_route_is_a_404_problem(harness: Harness, path: str) -> None:
    with writes_nothing(harness):
        for method in ("GET", "POST", "DELETE"):
            assert_problem(harness.client.request(method, path), 404)


def test_unknown_and_foreign_ids_are_the_same_404(harness: Harness, owner: ConsoleUser) -> None:
    stranger = harness.user()
    their_org = harness.org(stranger, "Theirs")
    their_project = harness.project(stranger, their_org["id"])
    their_key = harness.key(stranger, their_project["id"])
    cases = [
        ("GET", "/console/api/orgs/{}", their_org["id"], "org_nosuchthing", None),
        ("PATCH", "/console/api/orgs/{}", their_org["id"], "org_nosuchthing", {"name": "Mine"}),
        ("GET", "/console/api/projects/{}", their_project["id"], "prj_nosuchthing", None),
        ("DELETE", "/console/api/projects/{}", their_project["id"], "prj_nosuchthing", None),
        ("GET", "/console/api/projects/{}/keys", their_project["id"], "prj_nosuchthing", None),
        ("DELETE", "/console/api/keys/{}", their_key["id"], "key_nosuchthing", None),
        ("POST", "/console/api/keys/{}/rotate", their_key["id"], "key_nosuchthing", {}),
    ]
    with writes_nothing(harness):
        for method, template, foreign, unknown, body in cases:
            kwargs = {} if body is None else {"json": body}
            foreign_answer = owner.request(method, template.format(foreign), **kwargs)
            unknown_answer = owner.request(method, template.format(unknown), **kwargs)
            assert assert_problem(foreign_answer, 404) == assert_problem(unknown_answer, 404), template
            assert foreign not in foreign_answer.text


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/health", "GET"),
        ("POST", "/v1/config", "GET"),
        ("DELETE", "/console/api/me", "GET"),
        ("GET", "/console/api/sign-in", "POST"),
        ("PUT", "/console/api/orgs", "POST"),
    ],
)
def test_wrong_method_is_a_405_problem_with_allow(
    harness: Harness, method: str, path: str, allowed: str
) -> None:
    with writes_nothing(harness):
        response = harness.client.request(method, path)
        assert_problem(response, 405)
        assert allowed in response.headers["allow"]


# --- 413 ----------------------------------------------------------------------------------------------


def _chunks(total: int, size: int = 4096) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        yield b" " * part
        sent += part


def _padded(body: dict[str, Any], total: int) -> bytes:
    """Valid JSON of exactly `total` bytes (whitespace padding)."""
    raw = json.dumps(body).encode()
    assert len(raw) <= total
    return raw + b" " * (total - len(raw))


def test_oversized_body_is_413_by_declared_length_and_writes_nothing(
    harness: Harness, owner: ConsoleUser
) -> None:
    with writes_nothing(harness):
        body = _padded({"name": "Big"}, DEFAULT_LIMIT + 1)
        headers = {"content-type": "application/json"}
        problem = assert_problem(owner.post("/console/api/orgs", content=body, headers=headers), 413)
        assert str(DEFAULT_LIMIT) in problem["detail"]
        sign_in = _padded(
            {"email": owner.email, "password": "a perfectly fine passphrase"}, DEFAULT_LIMIT * 4
        )
        assert_problem(harness.client.post("/console/api/sign-in", content=sign_in, headers=headers), 413)


def test_oversized_streamed_body_is_413_and_writes_nothing(harness: Harness, owner: ConsoleUser) -> None:
    def streamed() -> Iterator[bytes]:
        yield b'{"name": "Big"'
        yield from _chunks(DEFAULT_LIMIT + 10)
        yield b"}"

    with writes_nothing(harness):
        response = owner.post(
            "/console/api/orgs", content=streamed(), headers={"content-type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        assert response.request.headers.get("transfer-encoding") == "chunked"
        assert_problem(response, 413)


def test_body_at_the_limit_is_accepted(harness: Harness, owner: ConsoleUser) -> None:
    body = _padded({"name": "Exactly at the limit"}, DEFAULT_LIMIT)
    response = owner.post("/console/api/orgs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 201, response.text


def test_body_limit_follows_silver_max_body_bytes(tmp_path: Path, database_url: str) -> None:
    settings = base_settings(tmp_path, DATABASE_URL=database_url, SILVER_MAX_BODY_BYTES=1024)
    with running(settings) as harness:
        owner = harness.user()
        headers = {"content-type": "application/json"}
        with writes_nothing(harness):
            response = owner.post("/console/api/orgs", content=_padded({"name": "A"}, 1025), headers=headers)
            assert "1024" in assert_problem(response, 413)["detail"]
            streamed = owner.post("/console/api/orgs", content=_chunks(2048, 256), headers=headers)
            assert_problem(streamed, 413)
        fits = owner.post("/console/api/orgs", content=_padded({"name": "A"}, 1024), headers=headers)
        assert fits.status_code == 201, fits.text


# --- 500 ----------------------------------------------------------------------------------------------


@contextmanager
def captured_http_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What the error handler logs, through the app's own processors (redaction included)."""
    sink = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(sink), processors=structlog.get_config()["processors"]
    )
    monkeypatch.setattr(api_http, "log", logger)
    yield sink


def test_unexpected_error_mid_request_is_a_bare_500_problem_and_writes_nothing(
    harness: Harness, owner: ConsoleUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit table vanishes under the running app: the org insert before it is rolled back too."""
    marker = f"Confidential merger {secrets.token_hex(6)}"
    before, head = snapshot(harness), chain_head_seq(harness)

    async def rename(old: str, new: str) -> None:
        async with harness.runtime.engine.begin() as connection:
            await connection.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    harness.run(lambda: rename("audit_events", "audit_events_gone"))
    try:
        with captured_http_log(monkeypatch) as log:
            response = owner.post("/console/api/orgs", json={"name": marker})
    finally:
        harness.run(lambda: rename("audit_events_gone", "audit_events"))

    problem = assert_problem(response, 500)
    assert set(problem) == {"type", "title", "status", "detail"}
    lowered = response.text.lower()
    for leak in ("audit_events", "sqlalchemy", "insert", "sqlite", "asyncpg", "select", marker.lower()):
        assert leak not in lowered, leak
    assert owner.cookie not in response.text and owner.csrf_token not in response.text

    logged = log.getvalue()
    assert "unhandled_error" in logged and "/console/api/orgs" in logged
    assert "audit_events" in logged  # the cause, from the driver's own first line
    assert marker not in logged  # bound SQL parameters stay out of the log
    assert owner.cookie not in logged
    assert chain_head_seq(harness) == head
    assert snapshot(harness) == before
    assert owner.post("/console/api/orgs", json={"name": marker}).status_code == 201  # and it recovers


def test_unreachable_database_is_a_retryable_503_problem_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "Pw" + secrets.token_urlsafe(24)
    settings = base_settings(
        tmp_path, DATABASE_URL=f"postgresql+asyncpg://silver:{password}@127.0.0.1:9/silver"
    )
    with running(settings) as harness, captured_http_log(monkeypatch) as log:
        response = harness.client.post(
            "/console/api/sign-in", json={"email": "a@example.com", "password": "a perfectly fine passphrase"}
        )
        problem = assert_problem(response, 503)  # a dependency outage, not a bug: the caller may retry
        assert set(problem) == {"type", "title", "status", "detail"}
        assert response.headers["retry-after"] == "5"
        for leak in (password, "127.0.0.1:9", "asyncpg", "passphrase"):
            assert leak not in response.text
        logged = log.getvalue()
        assert "unhandled_error" in logged
        assert password not in logged and "passphrase" not in logged
        health = harness.client.get("/health")
        assert health.status_code == 503 and password not in health.text
        assert_security_headers(health)


def test_an_exhausted_connection_pool_is_a_retryable_503_problem(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every connection of the pool stays checked out past the pool's timeout: load, not a bug."""
    tiny = create_async_engine(harness.runtime.engine.url, pool_size=1, max_overflow=0, pool_timeout=0.05)
    monkeypatch.setattr(harness.runtime, "sessionmaker", create_sessionmaker(tiny))

    async def hold() -> AsyncConnection:
        return await tiny.connect()

    held = harness.run(hold)
    try:
        with captured_http_log(monkeypatch) as log:
            response = harness.client.post(
                "/console/api/sign-in", json={"email": "a@example.com", "password": "a fine passphrase 1"}
            )
    finally:
        harness.run(held.close)
        harness.run(tiny.dispose)
    problem = assert_problem(response, 503)
    assert set(problem) == {"type", "title", "status", "detail"}
    assert response.headers["retry-after"] == "1"
    assert "pool" not in response.text.lower()
    assert "database_busy" in log.getvalue() and "unhandled_error" not in log.getvalue()
