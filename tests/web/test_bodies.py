"""JSON request bodies: a JSON route takes only a JSON media type (415 otherwise) and refuses deep nesting
with a 400 problem before decoding recurses (a RecursionError was a 500 and an error log line)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import httpx
import pytest
import structlog
from structlog.testing import LogCapture

from silver_auth.web import body as web_body
from silver_auth.web import http as web_http
from silver_auth.web.body import MAX_JSON_DEPTH, is_json_media_type, nests_deeper_than
from tests.endusers.support import customer_project, sign_up, warm
from tests.factories import PASSWORD, Harness
from tests.web.test_http import assert_problem, writes_nothing

Send = Callable[[bytes, dict[str, str]], httpx.Response]


def _json_routes(harness: Harness) -> dict[str, Send]:
    """One JSON route of each kind of caller: anonymous (console sign-in), console, publishable key,
    secret key. Each takes the raw body and extra headers."""
    project = customer_project(harness)
    owner = project.owner
    key_id = owner.ok("GET", f"/console/api/projects/{project.project_id}/keys")["items"][0]["id"]
    warm(harness, project.publishable)
    assert harness.backend("/v1/backend/project", project.secret).status_code == 200  # its first use

    def anonymous(path: str, **headers: str) -> Send:
        def send(body: bytes, extra: dict[str, str]) -> httpx.Response:
            harness.client.cookies.clear()
            return harness.client.post(path, content=body, headers={**headers, **extra})

        return send

    def console(method: str, path: str) -> Send:
        return lambda body, extra: owner.request(method, path, content=body, headers=extra)

    return {
        "sign-in": anonymous("/console/api/sign-in"),
        "org create": console("POST", "/console/api/orgs"),
        "project update": console("PATCH", f"/console/api/projects/{project.project_id}"),
        "key rotate": console("POST", f"/console/api/keys/{key_id}/rotate"),
        "refresh": anonymous("/v1/client/sessions/refresh", **{"x-publishable-key": project.publishable}),
        "backend user create": anonymous("/v1/backend/users", authorization=f"Bearer {project.secret}"),
    }


@pytest.fixture
def http_log(monkeypatch: pytest.MonkeyPatch) -> list[MutableMapping[str, Any]]:
    """The records the web layer logs (the error handler's and the body checks'), with their level."""
    capture = LogCapture()
    logger = structlog.wrap_logger(None, processors=[structlog.processors.add_log_level, capture])
    monkeypatch.setattr(web_http, "log", logger)
    monkeypatch.setattr(web_body, "log", logger)
    return capture.entries


DEEP_BODIES = {
    "2 KB of [": b"[" * 2048,
    "closed arrays": b"[" * 1000 + b"]" * 1000,
    "objects in a field": b'{"name": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1000 + b"}",
    "just past the limit": b'{"name": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}",
}


@pytest.mark.parametrize("body", DEEP_BODIES.values(), ids=DEEP_BODIES.keys())
def test_deeply_nested_json_is_a_400_problem_on_every_json_route(
    harness: Harness, http_log: list[MutableMapping[str, Any]], body: bytes
) -> None:
    routes = _json_routes(harness)
    with writes_nothing(harness):
        for name, send in routes.items():
            response = send(body, {"content-type": "application/json"})
            problem = assert_problem(response, 400)
            assert problem["type"].endswith("/too-deeply-nested"), (name, problem)
            assert str(MAX_JSON_DEPTH) in problem["detail"]
            assert "set-cookie" not in response.headers, name
    assert [r for r in http_log if r["level"] in ("error", "critical")] == []
    refusals = [r for r in http_log if r["event"] == "client_error"]
    assert len(refusals) == len(routes) and all(r["level"] == "info" for r in refusals), refusals
    assert {r["path"] for r in refusals} >= {"/console/api/sign-in", "/v1/client/sessions/refresh"}


def test_nesting_within_the_limit_and_brackets_in_strings_are_not_refused(harness: Harness) -> None:
    routes = _json_routes(harness)
    nested = b'{"name": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    assert_problem(routes["org create"](nested, {"content-type": "application/json"}), 422)  # a type error
    owner_email, password = "brackets@example.com", "[" * 60 + '"\\{' * 20
    harness.create_account(owner_email, password=password)
    text = json.dumps({"email": owner_email, "password": password}).encode()
    signed_in = routes["sign-in"](text, {"content-type": "application/json"})
    assert signed_in.status_code == 200, signed_in.text


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain; charset=utf-8", "application/xml", "application/x-www-form-urlencoded", None],
    ids=["text", "text-charset", "xml", "form", "none"],
)
def test_json_routes_refuse_other_content_types_with_415(
    harness: Harness, http_log: list[MutableMapping[str, Any]], content_type: str | None
) -> None:
    """A cross-site page can post text/plain or a form without a preflight: such a body is never read,
    however valid the JSON in it (console sign-in included)."""
    routes = _json_routes(harness)
    email = harness.user().email
    bodies = {
        "sign-in": json.dumps({"email": email, "password": PASSWORD}).encode(),
        "org create": b'{"name": "Acme"}',
        "project update": b'{"name": "Renamed"}',
        "key rotate": b"{}",
        "refresh": b'{"session_token": "nope"}',
        "backend user create": b'{"email": "new@example.com"}',
    }
    headers = {} if content_type is None else {"content-type": content_type}
    with writes_nothing(harness):
        for name, send in routes.items():
            response = send(bodies[name], headers)
            problem = assert_problem(response, 415)
            assert problem["type"].endswith("/unsupported-media-type"), name
            assert "set-cookie" not in response.headers, name
    assert [r for r in http_log if r["level"] == "error"] == []
    assert len([r for r in http_log if r["event"] == "client_error"]) == len(routes)


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json"]
)
def test_json_media_types_are_accepted(harness: Harness, content_type: str) -> None:
    owner = harness.user()
    created = owner.post(
        "/console/api/orgs", content=b'{"name": "Acme"}', headers={"content-type": content_type}
    )
    assert created.status_code == 201, created.text


def test_form_routes_still_take_forms(harness: Harness) -> None:
    """The hosted pages post forms (application/x-www-form-urlencoded): they do not read JSON."""
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "form@example.com")
    assert code


def test_body_less_requests_need_no_content_type(harness: Harness) -> None:
    owner = harness.user()
    org = harness.org(owner)
    assert owner.delete(f"/console/api/orgs/{org['id']}").status_code == 204
    assert owner.post("/console/api/sign-out").status_code in (200, 204)


# --- the two checks on their own ----------------------------------------------------------------------


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def _random_value(rng: random.Random, depth: int) -> Any:
    if depth == 0 or rng.random() < 0.2:
        return rng.choice([1, "a[b{c", 'q"[[{\\', None, "]}]}", 2.5, True, "\\"])
    if rng.random() < 0.5:
        return [_random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["k", "[", "}", '"']): _random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))}


def test_nesting_depth_matches_the_decoded_depth() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        value = _random_value(rng, rng.randint(0, 12))
        text = json.dumps(value, indent=rng.choice([None, 1])).encode()
        depth = _depth(value)
        for limit in range(0, 14):
            assert nests_deeper_than(text, limit) == (depth > limit), (text, limit)


def test_depth_scan_is_linear_on_hostile_input() -> None:
    """Unterminated strings full of escaped quotes and openers cannot make the scan quadratic."""
    limit = 64 * 1024
    for body in (b'"' + b'\\"[' * (limit // 3), b'["' * (limit // 2), b"[" * limit, b'{"":' * (limit // 4)):
        started = time.perf_counter()
        nests_deeper_than(body, MAX_JSON_DEPTH)
        assert time.perf_counter() - started < 0.5, body[:20]


def test_json_media_types() -> None:
    for media in (
        "application/json",
        "application/json; charset=utf-8",
        "application/problem+json",
        "A/B+JSON",
    ):
        assert is_json_media_type(media), media
    for media in ("", "text/plain", "json", "+json", "/+json", "application/jsonx", "text/json-seq"):
        assert not is_json_media_type(media), media


def test_json_values_must_have_the_declared_json_types(harness: Harness) -> None:
    """Litestar converts bodies leniently: `"grace_seconds": "60"` was 60 and `"force": 0` false, where
    the OpenAPI document says integer and boolean. Now they are 422 problems naming the field."""
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    key = harness.key(owner, project["id"])
    for value in ("60", 60.0, True):
        rotate = owner.post(f"/console/api/keys/{key['id']}/rotate", json={"grace_seconds": value})
        body = assert_problem(rotate, 422)
        assert [error["key"] for error in body["errors"]] == ["grace_seconds"], (value, body)
    assert owner.post(f"/console/api/keys/{key['id']}/rotate", json={"grace_seconds": 60}).status_code == 201
    created = owner.post("/console/api/orgs", json={"name": "Typed", "extra": 1})
    assert_problem(created, 422)  # unknown fields: refused by Litestar as before, with its own errors
