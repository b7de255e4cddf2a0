"""The hot path of /v1/backend/project and /v1/client-config (bench/throughput.py measures it).

A route middleware (silver_auth.api.hot) answers a warm, valid key without Litestar's request pipeline;
everything else reaches the route handler. These tests hold the two paths to the same answers, show that
failures still come from the handler, and cover the verifier's cache: shared lookups, invalidation that
races a lookup, and the size bound.
"""

from __future__ import annotations

import asyncio
import secrets
import string
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from silver_auth.core import clock
from silver_auth.core.crypto import keyed_hash, keyed_hasher
from silver_auth.keys import verifier as verifier_module
from tests.factories import ConsoleUser, Harness

PROBLEM = "application/problem+json"
BASE62 = string.ascii_letters + string.digits


def _project(harness: Harness) -> tuple[ConsoleUser, dict[str, Any]]:
    owner = harness.user()
    org = harness.org(owner)
    return owner, harness.project(owner, org["id"])


def _unknown(prefix: str) -> str:
    return prefix + "".join(secrets.choice(BASE62) for _ in range(43))


def _client_config(harness: Harness, pk: str, **kwargs: Any) -> httpx.Response:
    harness.client.cookies.clear()
    return harness.client.get("/v1/client-config", headers={"X-Publishable-Key": pk}, **kwargs)


def _same_answer(cold: httpx.Response, warm: httpx.Response) -> None:
    """Status, headers (but the date, the request id, and the budget left, which each request spends)
    and body byte for byte."""
    assert warm.status_code == cold.status_code
    assert warm.content == cold.content

    def headers(response: httpx.Response) -> list[tuple[str, str]]:
        per_request = ("date", "ratelimit", "x-request-id")
        return [(k, v) for k, v in response.headers.multi_items() if k not in per_request]

    assert headers(warm) == headers(cold)


@contextmanager
def _statements(harness: Harness) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.lstrip().split()[0].upper())

    engine = harness.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


# --- the short cut answers exactly as the route handler does ---------------------------------------


def test_hot_backend_project_answer_is_the_handlers(harness: Harness) -> None:
    owner, project = _project(harness)
    sk = harness.key(owner, project["id"], "secret", "live")["key"]
    assert harness.runtime.keys.cached(sk, "secret") is None
    cold = harness.backend("/v1/backend/project", sk)  # a miss: the route handler answers
    assert cold.status_code == 200
    assert harness.runtime.keys.cached(sk, "secret") is not None
    with _statements(harness) as statements:
        warm = harness.backend("/v1/backend/project", sk)  # warm: the short cut answers
    assert statements == []
    _same_answer(cold, warm)
    assert warm.headers["content-type"] == "application/json"
    assert warm.headers["x-content-type-options"] == "nosniff"  # before_send still runs
    assert "frame-ancestors 'none'" in warm.headers["content-security-policy"]


def test_hot_answer_of_a_key_in_its_grace_period_is_the_handlers(harness: Harness) -> None:
    owner, project = _project(harness)
    old = harness.key(owner, project["id"], "secret", "test")
    owner.ok("POST", f"/console/api/keys/{old['id']}/rotate", 201, json={"grace_seconds": 600})
    cold = harness.backend("/v1/backend/project", old["key"])
    warm = harness.backend("/v1/backend/project", old["key"])
    assert cold.json()["key"]["expires_at"] is not None
    _same_answer(cold, warm)


def test_hot_client_config_answer_is_the_handlers(harness: Harness) -> None:
    owner, project = _project(harness)
    pk = harness.key(owner, project["id"], "publishable", "test")["key"]
    assert harness.runtime.keys.cached(pk, "publishable") is None
    cold = _client_config(harness, pk)
    assert cold.status_code == 200
    assert harness.runtime.keys.cached(pk, "publishable") is not None
    warm = _client_config(harness, pk)
    _same_answer(cold, warm)
    # The query-string form always goes to the handler, and answers the same.
    harness.client.cookies.clear()
    by_query = harness.client.get("/v1/client-config", params={"publishable_key": pk})
    _same_answer(cold, by_query)


# --- failures and anything unusual still reach the route handler -----------------------------------


def test_hot_path_keeps_the_handlers_parameter_checks(harness: Harness) -> None:
    """A query string skips the short cut: its validation (max 100 characters) still applies."""
    owner, project = _project(harness)
    pk = harness.key(owner, project["id"], "publishable", "live")["key"]
    assert _client_config(harness, pk).status_code == 200  # warm
    response = _client_config(harness, pk, params={"publishable_key": "x" * 101})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)


def test_hot_path_refuses_the_wrong_kind_of_key(harness: Harness) -> None:
    owner, project = _project(harness)
    sk = harness.key(owner, project["id"], "secret", "live")["key"]
    pk = harness.key(owner, project["id"], "publishable", "live")["key"]
    assert harness.backend("/v1/backend/project", sk).status_code == 200
    assert _client_config(harness, pk).status_code == 200
    as_bearer = harness.backend("/v1/backend/project", pk)
    assert as_bearer.status_code == 401
    assert as_bearer.headers["content-type"].startswith(PROBLEM)
    assert as_bearer.headers["www-authenticate"].startswith("Bearer")
    as_publishable = _client_config(harness, sk)
    assert as_publishable.status_code == 404
    assert as_publishable.headers["content-type"].startswith(PROBLEM)
    assert sk not in as_publishable.text


def test_hot_path_refuses_a_revoked_key_at_once(harness: Harness) -> None:
    owner, project = _project(harness)
    key = harness.key(owner, project["id"], "secret", "live")
    assert harness.backend("/v1/backend/project", key["key"]).status_code == 200
    assert harness.backend("/v1/backend/project", key["key"]).status_code == 200  # from the short cut
    owner.ok("DELETE", f"/console/api/keys/{key['id']}")
    assert harness.runtime.keys.cached(key["key"], "secret") is None
    refused = harness.backend("/v1/backend/project", key["key"])
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith(PROBLEM)


def test_hot_path_ends_a_grace_period_exactly_while_cached(harness: Harness) -> None:
    """The cache outlives the grace period here; the expiry is still checked on every request."""
    owner, project = _project(harness)
    old = harness.key(owner, project["id"], "secret", "live")
    owner.ok("POST", f"/console/api/keys/{old['id']}/rotate", 201, json={"grace_seconds": 1})
    assert harness.backend("/v1/backend/project", old["key"]).status_code == 200  # cached now
    clock.advance(1.5)  # past the grace period, within the cache TTL
    assert harness.settings.key_cache_ttl_seconds > 1.5
    refused = harness.backend("/v1/backend/project", old["key"])
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith(PROBLEM)


def test_hot_path_bypasses_no_configured_route_middleware(harness: Harness) -> None:
    """Litestar would put these inside the route middleware, so the short cut would skip them."""
    app = harness.client.app
    assert not app.allowed_hosts
    assert app.csrf_config is None
    assert app.compression_config is None
    for path in ("/v1/backend/project", "/v1/client-config"):
        (route,) = [r for r in app.routes if r.path == path]
        assert not any(getattr(h, "cache", False) for h in getattr(route, "route_handlers", []))


# --- the verifier's cache ---------------------------------------------------------------------------


def test_concurrent_misses_share_one_lookup(harness: Harness) -> None:
    """When an entry is missing under load, the waiting requests share one query and one write."""
    owner, project = _project(harness)
    sk = harness.key(owner, project["id"], "secret", "live")["key"]
    keys = harness.runtime.keys

    async def many() -> list[Any]:
        return await asyncio.gather(*(keys.verify(sk, "secret") for _ in range(20)))

    with _statements(harness) as statements:
        principals = harness.run(many)
    assert len({p.key_id for p in principals if p is not None}) == 1
    assert all(p is not None for p in principals)
    assert statements.count("SELECT") == 1, statements
    assert statements.count("UPDATE") == 1, statements


def test_lookup_racing_an_invalidation_is_not_cached(harness: Harness) -> None:
    """A lookup that started before a revocation committed may have read the old row: never cache it."""
    owner, project = _project(harness)
    sk = harness.key(owner, project["id"], "secret", "live")["key"]
    keys = harness.runtime.keys

    async def race() -> Any:
        pending = asyncio.ensure_future(keys.verify(sk, "secret"))
        await asyncio.sleep(0)  # the lookup has started
        keys.forget_all()  # what a commit's invalidation hook does
        return await pending

    assert harness.run(race) is not None  # the caller that was already waiting gets the answer ...
    assert keys.cached(sk, "secret") is None  # ... but nobody after it does without a fresh lookup
    with _statements(harness) as statements:
        assert harness.backend("/v1/backend/project", sk).status_code == 200
    assert "SELECT" in statements


def test_key_cache_is_bounded(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood of distinct unknown keys cannot grow the cache past its size; the oldest go first."""
    monkeypatch.setattr(verifier_module, "CACHE_SIZE", 3)
    keys = harness.runtime.keys
    unknown = [_unknown("sk_live_") for _ in range(6)]
    for raw in unknown:
        assert harness.backend("/v1/backend/project", raw).status_code == 401
    assert len(keys._cache) <= 3
    digests = list(keys._cache)
    assert digests == [keyed_hash(harness.settings.secret("key_pepper"), raw) for raw in unknown[-3:]]


def test_keyed_hasher_is_keyed_hash() -> None:
    for _ in range(50):
        pepper = secrets.token_bytes(secrets.randbelow(100) + 1)
        value = secrets.token_urlsafe(40)
        assert keyed_hasher(pepper)(value) == keyed_hash(pepper, value)
