"""The app limiter in one process (G35): who a request counts against, the RateLimit headers read back by
an independent Structured Fields parser (http-sfv, RFC 9651), 429 problems and pages, and the
production guard that keeps it on."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_sfv import List as StructuredList

from silver_auth.core.production_guard import production_violations
from silver_auth.plans import service as plans
from tests.concurrent import send
from tests.conftest import AppPool, base_settings
from tests.endusers.support import REDIRECT, Browser, customer_project, sign_up
from tests.factories import Harness
from tests.observability.support import sample
from tests.test_settings import production

PROBLEM = "application/problem+json"


def limited(apps: AppPool, tmp_path: Path, database_url: str, **limits: Any) -> Iterator[Harness]:
    settings = base_settings(tmp_path, DATABASE_URL=database_url, **limits)
    with apps.serve(settings) as client:
        yield Harness(client, settings)


@pytest.fixture
def small_plan(monkeypatch: pytest.MonkeyPatch) -> int:
    """The Free plan with a backend rate of 5 requests a minute per key."""
    monkeypatch.setitem(plans.PLANS, "free", dataclasses.replace(plans.PLANS["free"], requests_per_minute=5))
    return 5


def parsed(response: httpx.Response) -> dict[str, dict[str, dict[str, Any]]]:
    """Both RateLimit fields as Structured Field lists: {field: {policy: {param: value}}}."""
    fields = {}
    for name in ("RateLimit-Policy", "RateLimit"):
        value = StructuredList()
        value.parse(response.headers[name].encode("ascii"))
        fields[name] = {item.value: dict(item.params) for item in value}
    return fields


def secret_keys(harness: Harness, count: int) -> list[str]:
    owner = harness.user()
    project = harness.project(owner, harness.org(owner)["id"])
    return [harness.key(owner, project["id"])["key"] for _ in range(count)]


def test_g35_a_backend_key_past_its_plan_rate_gets_429_and_its_sibling_does_not(
    harness: Harness, small_plan: int
) -> None:
    first, second = secret_keys(harness, 2)
    prefix = harness.backend("/v1/backend/project", second).json()["key"]["prefix"]
    counted = sample("silver_rate_limited_total", policy="backend", key_prefix=first[: len(prefix)])
    answers = [harness.backend("/v1/backend/project", first) for _ in range(small_plan + 2)]
    assert [a.status_code for a in answers] == [200] * small_plan + [429, 429]
    for spent, answer in enumerate(answers[:small_plan], start=1):
        fields = parsed(answer)
        assert fields["RateLimit-Policy"]["backend"] == {"q": small_plan, "w": 60}
        assert fields["RateLimit"]["backend"]["r"] == small_plan - spent
        assert 1 <= fields["RateLimit"]["backend"]["t"] <= 60
    refused = answers[-1]
    assert refused.headers["content-type"] == PROBLEM
    body = refused.json()
    assert body["type"].endswith("/rate-limited") and body["status"] == 429 and body["policy"] == "backend"
    assert int(refused.headers["Retry-After"]) == body["retry_after"]
    assert parsed(refused)["RateLimit"]["backend"]["r"] == 0
    assert refused.headers["cache-control"] == "no-store"
    # Each refusal is counted for the metrics, by the key's display prefix (never the key).
    assert (
        sample("silver_rate_limited_total", policy="backend", key_prefix=first[: len(prefix)]) == counted + 2
    )
    # Another key of the same project has a budget of its own.
    assert harness.backend("/v1/backend/project", second).status_code == 200
    assert harness.backend("/v1/backend/users", second).status_code == 200


def test_the_limiter_counts_the_handlers_answers_too(harness: Harness, small_plan: int) -> None:
    """A cold key (no cache: the route handler answers) and the other backend routes share one budget."""
    (key,) = secret_keys(harness, 1)
    harness.runtime.keys.forget_all()
    paths = ["/v1/backend/users", "/v1/backend/project", "/v1/backend/users?limit=1"] * 3
    codes = [harness.backend(path, key).status_code for path in paths]
    assert codes == [200] * small_plan + [429] * (len(paths) - small_plan)


@pytest.fixture
def tight(apps: AppPool, tmp_path: Path, database_url: str) -> Iterator[Harness]:
    yield from limited(
        apps,
        tmp_path,
        database_url,
        SILVER_RATE_LIMIT_ANONYMOUS_PER_MINUTE=4,
        SILVER_RATE_LIMIT_CONSOLE_PER_MINUTE=30,
        SILVER_RATE_LIMIT_SIGN_IN_PER_MINUTE=3,
        SILVER_RATE_LIMIT_SIGN_UP_PER_MINUTE=2,
    )


def test_anonymous_calls_count_per_client_ip(tight: Harness) -> None:
    codes = [send(tight, "GET", "/health", "198.51.100.1").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]
    assert send(tight, "GET", "/health", "198.51.100.2").status_code == 200
    assert send(tight, "GET", "/v1/config", "198.51.100.1").status_code == 429  # one budget per address


def test_forwarded_for_counts_only_behind_a_trusted_proxy(tight: Harness) -> None:
    """The loopback peer is a trusted proxy (Caddy) by default: its X-Forwarded-For names the client.
    Anyone else's X-Forwarded-For is ignored, so rotating it buys nothing."""
    behind = [
        send(tight, "GET", "/health", "127.0.0.1", headers={"x-forwarded-for": f"192.0.2.{n}"}).status_code
        for n in range(8)
    ]
    assert behind == [200] * 8  # eight clients behind the proxy, one request each
    spoofed = [
        send(tight, "GET", "/health", "203.0.113.77", headers={"x-forwarded-for": f"192.0.2.{n}"}).status_code
        for n in range(6)
    ]
    assert spoofed == [200] * 4 + [429] * 2


def test_console_calls_count_per_session(tight: Harness) -> None:
    email = "limits@example.com"
    tight.create_account(email)
    one, two = tight.sign_in(email), tight.sign_in(email)
    codes = [one.request("GET", "/console/api/me").status_code for _ in range(31)]
    assert codes == [200] * 30 + [429]
    assert two.request("GET", "/console/api/me").status_code == 200
    assert "console" in parsed(two.request("GET", "/console/api/me"))["RateLimit"]


def test_sign_in_is_limited_per_address_before_any_password_is_checked(tight: Harness) -> None:
    email = "signin@example.com"
    tight.create_account(email)
    body = {"email": email, "password": "not the password at all"}
    codes = [
        send(tight, "POST", "/console/api/sign-in", "198.51.100.5", json=body).status_code for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    refused = send(tight, "POST", "/console/api/sign-in", "198.51.100.5", json=body)
    assert refused.json()["policy"] == "sign-in"
    assert set(parsed(refused)["RateLimit-Policy"]) == {"sign-in"}  # the caller budget was not touched
    # The same address may still read public documents: the strict limit is the route's alone.
    ok = send(tight, "GET", "/v1/config", "198.51.100.6")
    assert set(parsed(ok)["RateLimit-Policy"]) == {"anonymous"}


def test_hosted_pages_say_in_words_how_long_to_wait(tight: Harness) -> None:
    project = customer_project(tight)
    sign_up(tight, project, "page@example.com")
    browser = Browser(tight, ip="198.51.100.9")
    browser.get(project.pages("sign-in"), redirect_url=REDIRECT, state="s")
    for _ in range(3):
        browser.submit(project.pages("sign-in"), {"email": "page@example.com", "password": "wrong one here"})
    refused = browser.submit(project.pages("sign-in"), {"email": "page@example.com", "password": "x"})
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert "You can try again in" in refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert "sign-in" in parsed(refused)["RateLimit-Policy"]


def test_every_operation_documents_429_and_the_ratelimit_headers(harness: Harness) -> None:
    document = harness.client.get("/openapi.json").json()
    operations = [op for item in document["paths"].values() for op in item.values() if "responses" in op]
    assert operations
    for operation in operations:
        assert "429" in operation["responses"], operation.get("summary")
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        for response in operation["responses"].values():
            assert {"RateLimit-Policy", "RateLimit"} <= set(response.get("headers", {}))


def test_g35_production_refuses_to_start_with_the_limiter_off(tmp_path: Path) -> None:
    violations = production_violations(production(tmp_path, SILVER_RATE_LIMIT_ENABLED="false"))
    assert [v for v in violations if v.startswith("G35:")], violations


def test_development_may_switch_the_limiter_off(apps: AppPool, tmp_path: Path, database_url: str) -> None:
    for harness in limited(apps, tmp_path, database_url, SILVER_RATE_LIMIT_ENABLED="false"):
        answer = harness.client.get("/health")
        assert answer.status_code == 200 and "RateLimit" not in answer.headers
