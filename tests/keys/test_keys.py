"""API keys: formats, shown once (G16), stored as keyed hashes (G17), listing,
rotation with a grace period, revocation (also across workers), malformed keys, and the query-free
warm hot path."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import string
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import event, text

from silver_auth.app import create_app
from silver_auth.core import clock
from silver_auth.keys.models import ApiKey
from silver_auth.settings import Settings
from tests.conftest import base_settings
from tests.factories import ConsoleUser, Harness

KEY_RE = re.compile(r"^(sk|pk)_(live|test)_([A-Za-z0-9]{43})$")
BASE62 = set(string.ascii_letters + string.digits)
PROBLEM = "application/problem+json"


def _setup(harness: Harness) -> tuple[ConsoleUser, dict[str, Any], dict[str, Any]]:
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    return owner, org, project


def _tail(raw: str) -> str:
    """The random part after the display prefix: on its own already enough to matter."""
    return raw[len(raw.rsplit("_", 1)[0]) + 1 + 6 :]


def _row(harness: Harness, key_id: str) -> ApiKey:
    async def work() -> ApiKey:
        async with harness.runtime.sessionmaker() as db:
            key = await db.get(ApiKey, key_id)
            assert key is not None
            return key

    return harness.run(work)


def _database_text(harness: Harness) -> str:
    """Every value of every row of every table, as text (both backends)."""

    async def work() -> str:
        async with harness.runtime.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                names = (
                    await connection.execute(
                        text(
                            "SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                        )
                    )
                ).scalars()
                chunks: list[str] = []
                for name in list(names):
                    rows = await connection.execute(text(f'SELECT t::text FROM "{name}" t'))
                    chunks.extend(row[0] for row in rows)
                return "\n".join(chunks)
            names = (
                await connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
            ).scalars()
            chunks = []
            for name in list(names):
                rows = await connection.execute(text(f'SELECT * FROM "{name}"'))
                chunks.extend(repr(tuple(row)) for row in rows)
            return "\n".join(chunks)

    return harness.run(work)


def _sqlite_file_bytes(settings: Settings) -> bytes:
    path = Path(settings.sqlalchemy_url.removeprefix("sqlite+aiosqlite:///"))
    blobs = [p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists()]
    assert blobs, f"no database file at {path}"
    return b"".join(blobs)


@contextmanager
def count_queries(harness: Harness) -> Iterator[list[str]]:
    """Every SQL statement the app's engine sends while the block runs."""
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = harness.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)


# --- formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "environment", "prefix"),
    [
        ("secret", "live", "sk_live_"),
        ("secret", "test", "sk_test_"),
        ("publishable", "live", "pk_live_"),
        ("publishable", "test", "pk_test_"),
    ],
)
def test_key_format(harness: Harness, kind: str, environment: str, prefix: str) -> None:
    owner, _org, project = _setup(harness)
    created = harness.key(owner, project["id"], kind, environment)
    raw = created["key"]
    match = KEY_RE.match(raw)
    assert match is not None, raw
    assert raw.startswith(prefix)
    assert created["kind"] == kind
    assert created["environment"] == environment
    assert created["status"] == "active"
    assert created["id"].startswith("key")
    # The display prefix is the type prefix plus a few characters: recognisable, not usable.
    assert created["prefix"] == raw[: len(prefix) + 6]
    assert raw.startswith(created["prefix"])
    # 43 characters of base62 carry at least 256 bits.
    assert len(match.group(3)) * math.log2(62) >= 256


def test_keys_are_distinct_and_random(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    raws = [harness.key(owner, project["id"], "secret", env)["key"] for env in ("live", "test") * 4]
    tails = [KEY_RE.match(raw).group(3) for raw in raws]  # type: ignore[union-attr]
    assert len(set(raws)) == len(raws)
    assert len(set(tails)) == len(tails)
    assert len({t[:6] for t in tails}) == len(tails)  # display prefixes differ too
    alphabet = set("".join(tails))
    assert alphabet <= BASE62
    # 344 random base62 characters use upper case, lower case and digits (failure odds ~1e-26).
    assert alphabet & set(string.ascii_uppercase)
    assert alphabet & set(string.ascii_lowercase)
    assert alphabet & set(string.digits)


# --- G16: shown once ---------------------------------------------------------------------------


def test_g16_secret_key_shown_once(harness: Harness) -> None:
    owner, org, project = _setup(harness)
    created = harness.key(owner, project["id"], "secret", "live")
    raw = created["key"]
    tail = _tail(raw)
    assert created["publishable_key"] is None
    pk = harness.key(owner, project["id"], "publishable", "live")

    # Use the key, rotate another, change things: every later answer, console or public.
    assert harness.backend("/v1/backend/project", raw).status_code == 200
    other = harness.key(owner, project["id"], "secret", "test")
    rotated = owner.ok("POST", f"/console/api/keys/{other['id']}/rotate", 201, json={"grace_seconds": 60})
    owner.ok("PATCH", f"/console/api/projects/{project['id']}", json={"name": "Renamed"})
    answers: list[httpx.Response] = [
        owner.get(f"/console/api/projects/{project['id']}/keys"),
        owner.get(f"/console/api/projects/{project['id']}"),
        owner.get(f"/console/api/orgs/{org['id']}/projects"),
        owner.get(f"/console/api/orgs/{org['id']}"),
        owner.get("/console/api/orgs"),
        owner.get(f"/console/api/orgs/{org['id']}/members"),
        owner.get(f"/console/api/orgs/{org['id']}/audit"),
        owner.get(f"/console/api/orgs/{org['id']}/audit?action=key.created"),
        owner.get("/console/api/me"),
        owner.get("/console/api/sessions"),
        harness.backend("/v1/backend/project", raw),
        harness.client.get("/v1/client-config", headers={"X-Publishable-Key": pk["key"]}),
        harness.client.get("/v1/config"),
        harness.client.get("/health"),
        harness.client.get("/openapi.json"),
        harness.client.get(f"/console/api/keys/{created['id']}"),
    ]
    # Revoking answers with the key's public view, without the key.
    answers.append(owner.delete(f"/console/api/keys/{created['id']}"))
    answers.append(harness.backend("/v1/backend/project", raw))
    answers.append(owner.get(f"/console/api/projects/{project['id']}/keys"))
    for response in answers:
        assert raw not in response.text, response.request.url
        assert tail not in response.text, response.request.url
        assert other["key"] not in response.text, response.request.url
    # The rotation answer shows the new key once, and never the old one.
    assert rotated["new"]["key"].startswith("sk_test_")
    assert other["key"] not in str(rotated)
    listing = owner.ok("GET", f"/console/api/projects/{project['id']}/keys")
    assert rotated["new"]["key"] not in str(listing)
    for item in listing["items"]:
        assert "key" not in item
        if item["kind"] == "secret":
            assert item["publishable_key"] is None


# --- G17: only the keyed hash and the display prefix are stored ---------------------------------


def test_g17_only_keyed_hash_and_prefix_stored(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    created = harness.key(owner, project["id"], "secret", "live")
    raw = created["key"]
    assert harness.backend("/v1/backend/project", raw).status_code == 200

    pepper = harness.settings.key_pepper
    assert pepper is not None
    expected = hmac.new(pepper.get_secret_value().encode(), raw.encode(), hashlib.sha256).hexdigest()
    row = _row(harness, created["id"])
    assert row.lookup_hash == expected
    assert row.prefix == created["prefix"] == raw[: len("sk_live_") + 6]
    assert row.publishable_key is None

    dump = _database_text(harness)
    assert expected in dump  # the scan sees the rows it should
    assert raw not in dump
    assert _tail(raw) not in dump
    if harness.settings.is_sqlite:
        blob = _sqlite_file_bytes(harness.settings)
        assert expected.encode() in blob
        assert raw.encode() not in blob
        assert _tail(raw).encode() not in blob


def test_publishable_key_is_public_by_design(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    created = harness.key(owner, project["id"], "publishable", "test")
    listing = owner.ok("GET", f"/console/api/projects/{project['id']}/keys")
    assert [item["publishable_key"] for item in listing["items"]] == [created["key"]]


# --- listing -----------------------------------------------------------------------------------


def test_listing_shows_prefix_environment_created_last_used(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    live = harness.key(owner, project["id"], "secret", "live")
    test = harness.key(owner, project["id"], "secret", "test")
    listing = owner.ok("GET", f"/console/api/projects/{project['id']}/keys")["items"]
    by_id = {item["id"]: item for item in listing}
    assert set(by_id) == {live["id"], test["id"]}
    for created in (live, test):
        item = by_id[created["id"]]
        assert item["prefix"] == created["prefix"]
        assert item["environment"] == created["environment"]
        assert item["created_at"] == created["created_at"]
        assert item["last_used_at"] is None
        assert item["status"] == "active"

    assert harness.backend("/v1/backend/project", live["key"]).status_code == 200
    by_id = {i["id"]: i for i in owner.ok("GET", f"/console/api/projects/{project['id']}/keys")["items"]}
    assert by_id[live["id"]]["last_used_at"] is not None
    assert by_id[live["id"]]["last_used_at"] >= live["created_at"]
    assert by_id[test["id"]]["last_used_at"] is None


def test_listing_another_orgs_project_is_404(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    harness.key(owner, project["id"])
    stranger = harness.user()
    harness.org(stranger, "Other")
    response = stranger.get(f"/console/api/projects/{project['id']}/keys")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    assert (
        stranger.post(
            f"/console/api/projects/{project['id']}/keys", json={"kind": "secret", "environment": "live"}
        ).status_code
        == 404
    )


# --- rotation and revocation -------------------------------------------------------------------


def test_rotate_with_grace_period(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    old = harness.key(owner, project["id"], "secret", "live")
    assert harness.backend("/v1/backend/project", old["key"]).status_code == 200

    rotated = owner.ok("POST", f"/console/api/keys/{old['id']}/rotate", 201, json={"grace_seconds": 600})
    new = rotated["new"]
    assert new["key"] != old["key"]
    assert new["key"].startswith("sk_live_")
    assert rotated["old"]["id"] == old["id"]
    assert rotated["old"]["status"] == "expiring"
    assert rotated["old"]["replaced_by"] == new["id"]
    assert rotated["old"]["expires_at"] is not None

    answer = harness.backend("/v1/backend/project", new["key"])
    assert answer.status_code == 200
    assert answer.json()["key"]["id"] == new["id"]
    answer = harness.backend("/v1/backend/project", old["key"])
    assert answer.status_code == 200
    assert answer.json()["key"]["expires_at"] is not None

    clock.advance(590)
    assert harness.backend("/v1/backend/project", old["key"]).status_code == 200
    clock.advance(11)
    refused = harness.backend("/v1/backend/project", old["key"])
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert harness.backend("/v1/backend/project", new["key"]).status_code == 200
    listing = {i["id"]: i for i in owner.ok("GET", f"/console/api/projects/{project['id']}/keys")["items"]}
    assert listing[old["id"]]["status"] == "expired"
    assert listing[new["id"]]["status"] == "active"
    # An expired key cannot be rotated again.
    assert owner.post(f"/console/api/keys/{old['id']}/rotate", json={}).status_code == 409


def test_rotate_without_grace_refuses_old_key_at_once(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    old = harness.key(owner, project["id"], "secret", "test")
    assert harness.backend("/v1/backend/project", old["key"]).status_code == 200  # now cached
    rotated = owner.ok("POST", f"/console/api/keys/{old['id']}/rotate", 201, json={"grace_seconds": 0})
    assert rotated["old"]["status"] == "revoked"
    assert harness.backend("/v1/backend/project", old["key"]).status_code == 401
    assert harness.backend("/v1/backend/project", rotated["new"]["key"]).status_code == 200
    # Rotating twice is refused: the old key was already replaced.
    assert owner.post(f"/console/api/keys/{old['id']}/rotate", json={}).status_code == 409


@pytest.mark.parametrize("grace", [-1, 7 * 86400 + 1, "sixty", [60], 1.5])
def test_rotate_rejects_bad_grace(harness: Harness, grace: object) -> None:
    owner, _org, project = _setup(harness)
    key = harness.key(owner, project["id"])
    response = owner.post(f"/console/api/keys/{key['id']}/rotate", json={"grace_seconds": grace})
    assert response.status_code in (400, 422)
    assert response.headers["content-type"].startswith(PROBLEM)
    listing = owner.ok("GET", f"/console/api/projects/{project['id']}/keys")["items"]
    assert [i["id"] for i in listing] == [key["id"]]  # nothing written


def test_revoke_is_immediate(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    key = harness.key(owner, project["id"], "secret", "live")
    assert harness.backend("/v1/backend/project", key["key"]).status_code == 200  # cached now
    revoked = owner.ok("DELETE", f"/console/api/keys/{key['id']}")
    assert revoked["status"] == "revoked"
    assert revoked["revoked_at"] is not None
    response = harness.backend("/v1/backend/project", key["key"])
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    # Revoking again is harmless; rotating a revoked key is refused.
    assert owner.ok("DELETE", f"/console/api/keys/{key['id']}")["status"] == "revoked"
    assert owner.post(f"/console/api/keys/{key['id']}/rotate", json={}).status_code == 409


def test_viewer_cannot_create_rotate_or_revoke(harness: Harness) -> None:
    owner, org, project = _setup(harness)
    key = harness.key(owner, project["id"])
    viewer = harness.member(owner, org["id"], "viewer")
    assert viewer.ok("GET", f"/console/api/projects/{project['id']}/keys")["items"]
    create = viewer.post(
        f"/console/api/projects/{project['id']}/keys", json={"kind": "secret", "environment": "live"}
    )
    assert create.status_code == 403
    assert viewer.post(f"/console/api/keys/{key['id']}/rotate", json={}).status_code == 403
    assert viewer.delete(f"/console/api/keys/{key['id']}").status_code == 403
    assert harness.backend("/v1/backend/project", key["key"]).status_code == 200


def test_revocation_bound_across_workers(tmp_path: Path, database_url: str) -> None:
    """Documented bound: the worker that revokes a key refuses it at once (it drops the key from its
    own cache after the commit); every other worker keeps accepting a key it has cached until its
    entry expires, i.e. for at most SILVER_KEY_CACHE_TTL_SECONDS after the revocation, and refuses
    it from then on. Two apps on one database stand for two workers; the service clock is moved
    instead of sleeping.
    """
    ttl = 30.0
    settings = base_settings(tmp_path, DATABASE_URL=database_url, SILVER_KEY_CACHE_TTL_SECONDS=ttl)
    with (
        TestClient(create_app(settings), raise_server_exceptions=False) as client_a,
        TestClient(create_app(settings), raise_server_exceptions=False) as client_b,
    ):
        worker_a, worker_b = Harness(client_a, settings), Harness(client_b, settings)
        owner, _org, project = _setup(worker_a)
        key = worker_a.key(owner, project["id"], "secret", "live")
        pk = worker_a.key(owner, project["id"], "publishable", "live")

        assert worker_b.backend("/v1/backend/project", key["key"]).status_code == 200  # B caches it
        client_b.cookies.clear()
        pk_header = {"X-Publishable-Key": pk["key"]}
        assert client_b.get("/v1/client-config", headers=pk_header).status_code == 200

        owner.ok("DELETE", f"/console/api/keys/{key['id']}")
        owner.ok("DELETE", f"/console/api/keys/{pk['id']}")
        assert worker_a.backend("/v1/backend/project", key["key"]).status_code == 401
        assert client_a.get("/v1/client-config", headers=pk_header).status_code == 404
        # Within the bound, B still answers from its cache ...
        assert worker_b.backend("/v1/backend/project", key["key"]).status_code == 200
        assert client_b.get("/v1/client-config", headers=pk_header).status_code == 200
        # ... and once the TTL has passed, B refuses too.
        clock.advance(ttl + 0.1)
        assert worker_b.backend("/v1/backend/project", key["key"]).status_code == 401
        assert client_b.get("/v1/client-config", headers=pk_header).status_code == 404


def test_new_key_on_other_worker_works_at_once(tmp_path: Path, database_url: str) -> None:
    """A key created on one worker works on another straight away (misses are not cached early)."""
    settings = base_settings(tmp_path, DATABASE_URL=database_url)
    with (
        TestClient(create_app(settings), raise_server_exceptions=False) as client_a,
        TestClient(create_app(settings), raise_server_exceptions=False) as client_b,
    ):
        worker_a, worker_b = Harness(client_a, settings), Harness(client_b, settings)
        owner, _org, project = _setup(worker_a)
        key = worker_a.key(owner, project["id"])
        answer = worker_b.backend("/v1/backend/project", key["key"])
        assert answer.status_code == 200
        assert answer.json()["project"]["id"] == project["id"]


# --- malformed keys ----------------------------------------------------------------------------


def _malformed(real_sk: str, real_pk: str) -> dict[str, bytes | None]:
    random43 = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))
    return {
        "missing": None,
        "empty": b"",
        "bearer only": b"Bearer",
        "bearer blank": b"Bearer   ",
        "basic": b"Basic dXNlcjpwYXNzd29yZA==",
        "no scheme": real_sk.encode(),
        "wrong scheme": f"Token {real_sk}".encode(),
        "wrong prefix": f"Bearer xk_live_{random43}".encode(),
        "wrong environment": f"Bearer sk_prod_{random43}".encode(),
        "publishable as secret": f"Bearer {real_pk}".encode(),
        "too short": b"Bearer sk_live_abc",
        "one char short": f"Bearer {real_sk[:-1]}".encode(),
        "one char long": f"Bearer {real_sk}A".encode(),
        "unknown": f"Bearer sk_live_{random43}".encode(),
        "other environment": f"Bearer sk_test_{real_sk.removeprefix('sk_live_')}".encode(),
        "changed case": f"Bearer {real_sk.swapcase()}".encode(),
        "unicode": ("Bearer sk_live_" + "é" * 43).encode(),
        "unicode digit": ("Bearer sk_live_" + "٣" * 43).encode(),
        "10 KB": ("Bearer sk_live_" + "A" * 10_240).encode(),
        "two keys": f"Bearer {real_sk} {real_sk}".encode(),
        "sql": b"Bearer sk_live_' OR '1'='1",
    }


def test_malformed_keys_get_401_problem(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    real_sk = harness.key(owner, project["id"], "secret", "live")["key"]
    real_pk = harness.key(owner, project["id"], "publishable", "live")["key"]
    for name, value in _malformed(real_sk, real_pk).items():
        harness.client.cookies.clear()
        headers = {} if value is None else {"authorization": value}
        with count_queries(harness) as statements:
            response = harness.client.get("/v1/backend/project", headers=headers)  # type: ignore[arg-type]
        assert response.status_code == 401, (name, response.status_code, response.text)
        assert response.headers["content-type"].startswith(PROBLEM), name
        assert response.headers["www-authenticate"].startswith("Bearer"), name
        body = response.json()
        assert body["status"] == 401, name
        assert {"type", "title", "detail"} <= set(body), name
        assert real_sk not in response.text, name
        assert _tail(real_sk) not in response.text, name
        # Refusing a key writes nothing.
        writes = [s for s in statements if s.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
        assert writes == [], (name, writes)
    # The well-formed real key still works afterwards.
    assert harness.backend("/v1/backend/project", real_sk).status_code == 200


def test_bearer_scheme_is_case_insensitive(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    raw = harness.key(owner, project["id"])["key"]
    harness.client.cookies.clear()
    response = harness.client.get("/v1/backend/project", headers={"authorization": f"bearer {raw}"})
    assert response.status_code == 200


def test_secret_key_does_not_open_the_console(harness: Harness) -> None:
    owner, org, project = _setup(harness)
    raw = harness.key(owner, project["id"])["key"]
    for path in ("/console/api/me", "/console/api/orgs", f"/console/api/projects/{project['id']}/keys"):
        response = harness.backend(path, raw)
        assert response.status_code == 401, path
        assert org["id"] not in response.text


# --- the hot path runs no query when warm ------------------------------------------------------


def test_warm_backend_key_check_runs_no_query(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    raw = harness.key(owner, project["id"], "secret", "live")["key"]
    with count_queries(harness) as cold:
        assert harness.backend("/v1/backend/project", raw).status_code == 200
    assert 1 <= len(cold) <= 4, cold
    with count_queries(harness) as warm:
        for _ in range(5):
            assert harness.backend("/v1/backend/project", raw).status_code == 200
    assert warm == []


def test_warm_client_config_runs_no_query(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    pk = harness.key(owner, project["id"], "publishable", "live")["key"]
    harness.client.cookies.clear()
    with count_queries(harness) as cold:
        response = harness.client.get("/v1/client-config", headers={"X-Publishable-Key": pk})
    assert response.status_code == 200
    assert 1 <= len(cold) <= 4, cold
    with count_queries(harness) as warm:
        for _ in range(3):
            assert (
                harness.client.get("/v1/client-config", headers={"X-Publishable-Key": pk}).status_code == 200
            )
            assert harness.client.get("/v1/client-config", params={"publishable_key": pk}).status_code == 200
    assert warm == []


def test_unknown_keys_are_cached_as_misses(harness: Harness) -> None:
    """A flood of one unknown key costs one lookup per cache period, not one per request."""
    random43 = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))
    unknown = f"sk_live_{random43}"
    with count_queries(harness) as statements:
        for _ in range(5):
            assert harness.backend("/v1/backend/project", unknown).status_code == 401
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, statements


def test_key_lookup_uses_an_index(harness: Harness) -> None:
    """Verification is one indexed lookup: the lookup hash column is unique (hence indexed)."""

    async def work() -> list[Any]:
        async with harness.runtime.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                rows = await connection.execute(
                    text("SELECT indexdef FROM pg_indexes WHERE tablename = 'api_keys'")
                )
                return [r[0] for r in rows]
            rows = await connection.execute(text("PRAGMA index_list('api_keys')"))
            found = []
            for row in list(rows):
                columns = await connection.execute(text(f"PRAGMA index_info('{row[1]}')"))
                found.append(f"unique={row[2]} " + ",".join(c[2] for c in columns))
            return found

    indexes = harness.run(work)
    assert any("lookup_hash" in i and ("UNIQUE" in i or "unique=1" in i) for i in indexes), indexes
