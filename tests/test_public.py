"""Public endpoints: /health, /v1/config, /v1/client-config, and that no public
answer carries a secret of any kind (G10, G18)."""

from __future__ import annotations

import base64
import secrets
import shutil
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from silver_auth.app import create_app
from silver_auth.keys.models import ApiKey
from silver_auth.webhooks.events import PAYLOAD_VERSION, SAMPLES, EventType
from silver_auth.webhooks.service import SIGNING_SCHEMES
from tests.conftest import base_settings
from tests.factories import ConsoleUser, Harness

PROBLEM = "application/problem+json"


def _setup(harness: Harness) -> tuple[ConsoleUser, dict[str, Any], dict[str, Any]]:
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"], "Storefront")
    return owner, org, project


def _client_config(harness: Harness, key: str, *, query: bool = False) -> httpx.Response:
    harness.client.cookies.clear()
    if query:
        return harness.client.get("/v1/client-config", params={"publishable_key": key})
    return harness.client.get("/v1/client-config", headers={"X-Publishable-Key": key})


@pytest.fixture
def down_client(tmp_path: Path) -> Iterator[TestClient[Any]]:
    """An app whose Postgres database is unreachable (nothing listens on port 1)."""
    settings = base_settings(
        tmp_path, DATABASE_URL="postgresql+asyncpg://silver:canary-db-password-1234@127.0.0.1:1/x"
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


# --- /health -----------------------------------------------------------------------------------


def test_health_ok(harness: Harness) -> None:
    response = harness.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "rate_limiter": "ok"}}
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_health_degraded_when_postgres_unreachable(
    down_client: TestClient[Any], capfd: pytest.CaptureFixture[str]
) -> None:
    response = down_client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] not in ("ok", "", None)
    assert response.headers["cache-control"] == "no-store"
    # Neither the answer nor the log carries the database URL or its password.
    out, err = capfd.readouterr()
    for text in (response.text, out, err):
        assert "canary-db-password-1234" not in text
        assert "127.0.0.1:1" not in text


def test_health_degraded_when_sqlite_directory_is_gone(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    settings = base_settings(tmp_path, DATABASE_URL=f"sqlite+aiosqlite:///{gone / 'silver.db'}")
    shutil.rmtree(gone)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["database"] != "ok"


def test_health_recovers_when_the_database_comes_back(tmp_path: Path) -> None:
    """The check is real and made on every call: it follows the database down and back up."""
    database = tmp_path / "db" / "silver.db"
    database.parent.mkdir()
    settings = base_settings(tmp_path, DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/health").status_code == 200
        portal = client.blocking_portal
        assert portal is not None
        portal.call(client.app.state.runtime.engine.dispose)
        shutil.move(database.parent, tmp_path / "away")
        assert client.get("/health").status_code == 503
        shutil.move(tmp_path / "away", database.parent)
        assert client.get("/health").status_code == 200


def test_other_routes_fail_cleanly_when_database_down(down_client: TestClient[Any]) -> None:
    """Public routes that need no database keep working; a key check answers problem+json."""
    assert down_client.get("/v1/config").status_code == 200
    random43 = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))
    response = down_client.get("/v1/backend/project", headers={"authorization": f"Bearer sk_live_{random43}"})
    assert response.status_code >= 500
    assert response.headers["content-type"].startswith(PROBLEM)
    assert "canary-db-password-1234" not in response.text
    assert random43 not in response.text


# --- /v1/config --------------------------------------------------------------------------------


def test_config_shape(harness: Harness) -> None:
    response = harness.client.get("/v1/config")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "version",
        "environment",
        "identity",
        "hosts",
        "plans",
        "webhooks",
        "excluded_from_mvp",
    }
    assert isinstance(body["version"], str)
    assert body["version"]
    assert body["environment"] == "development"
    assert body["identity"] in ("builtin", "authentik")
    assert body["identity"] == harness.settings.identity
    assert body["hosts"] == {"accounts": harness.settings.accounts_url, "auth": harness.settings.auth_url}


def test_l8_config_and_openapi_state_the_email_and_payment_exclusion(harness: Harness) -> None:
    assert harness.client.get("/v1/config").json()["excluded_from_mvp"] == [
        "email_delivery",
        "payment_collection",
    ]
    description = harness.client.get("/openapi.json").json()["info"]["description"]
    assert "Email delivery and payment collection are excluded from the MVP." in description


def test_config_reflects_settings(tmp_path: Path, database_url: str) -> None:
    settings = base_settings(
        tmp_path,
        DATABASE_URL=database_url,
        SILVER_ACCOUNTS_URL="https://accounts.example.test",
        SILVER_AUTH_URL="https://auth.example.test",
        SILVER_WEBHOOK_RETRY_SCHEDULE="0,60,3600",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        body = client.get("/v1/config").json()
    assert body["hosts"] == {"accounts": "https://accounts.example.test", "auth": "https://auth.example.test"}
    assert body["webhooks"]["retry_schedule_seconds"] == [0, 60, 3600]


def test_config_lists_webhook_event_types_with_samples_and_signatures(harness: Harness) -> None:
    webhooks = harness.client.get("/v1/config").json()["webhooks"]
    assert set(webhooks) == {"payload_version", "event_types", "retry_schedule_seconds", "signature_schemes"}
    assert webhooks["payload_version"] == PAYLOAD_VERSION
    assert [entry["type"] for entry in webhooks["event_types"]] == [str(kind) for kind in EventType]
    for entry in webhooks["event_types"]:
        assert entry["description"], entry["type"]
        sample = entry["sample"]
        assert set(sample) == {"type", "version", "timestamp", "data"}
        assert sample["type"] == entry["type"] and sample["version"] == PAYLOAD_VERSION
        assert sample["data"] == SAMPLES[EventType(entry["type"])]
    assert webhooks["retry_schedule_seconds"] == harness.settings.webhook_retry_schedule
    schemes = {s["signing"]: s["signature_version"] for s in webhooks["signature_schemes"]}
    assert schemes == {"hmac": "v1", "ed25519": "v1a"}
    assert set(schemes) == set(SIGNING_SCHEMES)  # every `signing` an endpoint accepts is described


def test_l7_plan_names(harness: Harness) -> None:
    plans = harness.client.get("/v1/config").json()["plans"]
    assert [(p["id"], p["name"]) for p in plans] == [("free", "Free"), ("pro", "Pro"), ("scale", "Scale")]
    quotas = ("projects", "members", "end_users", "webhook_endpoints", "api_keys_per_project")
    for plan in plans:
        for quota in quotas:
            assert isinstance(plan[quota], int), (plan["id"], quota)
            assert plan[quota] > 0, (plan["id"], quota)
    free, pro, scale = plans
    for quota in quotas:
        assert free[quota] <= pro[quota] <= scale[quota], quota


def test_free_plan_quota_is_enforced(harness: Harness) -> None:
    """The key quota /v1/config publishes is the one the service applies."""
    owner, _org, project = _setup(harness)
    free = harness.client.get("/v1/config").json()["plans"][0]
    for _ in range(free["api_keys_per_project"]):
        harness.key(owner, project["id"])
    response = owner.post(
        f"/console/api/projects/{project['id']}/keys", json={"kind": "secret", "environment": "live"}
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith(PROBLEM)


# --- /v1/client-config -------------------------------------------------------------------------


@pytest.mark.parametrize("query", [False, True], ids=["header", "query"])
@pytest.mark.parametrize("environment", ["live", "test"])
def test_client_config(harness: Harness, environment: str, query: bool) -> None:
    _owner, _org, project = _setup(harness)
    pk = harness.key(_owner, project["id"], "publishable", environment)["key"]
    response = _client_config(harness, pk, query=query)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"project", "environment", "sign_in_methods", "urls"}
    assert body["project"] == {"id": project["id"], "name": "Storefront"}
    assert body["environment"] == environment
    assert body["sign_in_methods"] == project["sign_in_methods"]
    assert isinstance(body["sign_in_methods"], list)
    assert body["sign_in_methods"]
    assert set(body["urls"]) == {"sign_in", "sign_up", "jwks"}
    auth = harness.settings.auth_url.rstrip("/")
    for url in body["urls"].values():
        assert url.startswith(auth + "/")
        assert project["id"] in url
    assert body["urls"]["jwks"] == f"{auth}/v1/projects/{project['id']}/jwks.json"
    # The hosted pages carry the environment as a path segment (docs/end-users.md).
    assert body["urls"]["sign_in"] == f"{auth}/p/{project['id']}/{environment}/sign-in"
    assert body["urls"]["sign_up"] == f"{auth}/p/{project['id']}/{environment}/sign-up"


def test_client_config_follows_project_changes_at_once(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    pk = harness.key(owner, project["id"], "publishable", "live")["key"]
    assert _client_config(harness, pk).json()["project"]["name"] == "Storefront"  # cached now
    owner.ok("PATCH", f"/console/api/projects/{project['id']}", json={"name": "Shop"})
    assert _client_config(harness, pk).json()["project"]["name"] == "Shop"
    owner.ok("DELETE", f"/console/api/projects/{project['id']}", 204)
    assert _client_config(harness, pk).status_code == 404


def test_client_config_unknown_revoked_or_secret_key_is_404(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    pk = harness.key(owner, project["id"], "publishable", "live")
    sk = harness.key(owner, project["id"], "secret", "live")
    random43 = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))
    refused = {
        "unknown": f"pk_live_{random43}",
        "secret key": sk["key"],
        "secret key with pk prefix": "pk_" + sk["key"].removeprefix("sk_"),
        "malformed": "pk_live_short",
        "empty": "",
        "unicode": "pk_live_" + "é" * 43,
        "trailing newline": pk["key"] + "\n",
    }
    for name, value in refused.items():
        for query in (False, True):
            if name == "unicode" and not query:
                continue  # header values are bytes; covered by the query form
            response = _client_config(harness, value, query=query)
            assert response.status_code == 404, (name, query, response.status_code, response.text)
            assert response.headers["content-type"].startswith(PROBLEM), name
            assert sk["key"] not in response.text, name
            assert project["id"] not in response.text, name
    harness.client.cookies.clear()
    missing = harness.client.get("/v1/client-config")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)

    assert _client_config(harness, pk["key"]).status_code == 200  # cached now
    owner.ok("DELETE", f"/console/api/keys/{pk['id']}")
    for query in (False, True):
        assert _client_config(harness, pk["key"], query=query).status_code == 404


def test_client_config_after_rotation(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    pk = harness.key(owner, project["id"], "publishable", "test")
    rotated = owner.ok("POST", f"/console/api/keys/{pk['id']}/rotate", 201, json={"grace_seconds": 0})
    assert rotated["new"]["key"].startswith("pk_test_")
    assert _client_config(harness, pk["key"]).status_code == 404
    assert _client_config(harness, rotated["new"]["key"]).json()["environment"] == "test"


def test_publishable_key_is_not_a_backend_key(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    pk = harness.key(owner, project["id"], "publishable", "live")["key"]
    assert _client_config(harness, pk).status_code == 200
    response = harness.backend("/v1/backend/project", pk)
    assert response.status_code == 401


def test_backend_project_answer(harness: Harness) -> None:
    owner, org, project = _setup(harness)
    sk = harness.key(owner, project["id"], "secret", "test")
    response = harness.backend("/v1/backend/project", sk["key"])
    assert response.status_code == 200
    body = response.json()
    assert body["project"] == {"id": project["id"], "name": "Storefront", "org_id": org["id"]}
    assert body["environment"] == "test"
    assert body["key"] == {"id": sk["id"], "prefix": sk["prefix"], "expires_at": None}


# --- G18: no secret in any public answer -------------------------------------------------------


def test_g18_public_answers_carry_no_secret(harness: Harness) -> None:
    owner, _org, project = _setup(harness)
    sk = harness.key(owner, project["id"], "secret", "live")
    sk_test = harness.key(owner, project["id"], "secret", "test")
    pk = harness.key(owner, project["id"], "publishable", "live")
    settings = harness.settings

    async def lookup_hashes() -> list[str]:
        async with harness.runtime.sessionmaker() as db:
            return [
                k.lookup_hash for k in (await db.get(ApiKey, sk["id"]), await db.get(ApiKey, pk["id"])) if k
            ]

    assert settings.session_secret and settings.key_pepper and settings.sealing_keys
    sealing = settings.sealing_keys.get_secret_value()
    canaries = {
        "secret key": sk["key"],
        "secret key tail": sk["key"][len(sk["prefix"]) :],
        "test secret key": sk_test["key"],
        "session secret": settings.session_secret.get_secret_value(),
        "pepper": settings.key_pepper.get_secret_value(),
        "sealing keys": sealing,
        "sealing key material": sealing.split(":", 1)[1],
        "sealing key bytes (url-safe)": base64.urlsafe_b64encode(settings.sealing_key_ring()[0][1]).decode(),
        "session cookie": owner.cookie,
        "csrf token": owner.csrf_token,
    }
    for i, digest in enumerate(harness.run(lookup_hashes)):
        canaries[f"lookup hash {i}"] = digest

    random43 = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))
    harness.client.cookies.clear()
    answers: list[httpx.Response] = [
        harness.client.get("/health"),
        harness.client.get("/v1/config"),
        _client_config(harness, pk["key"]),
        _client_config(harness, pk["key"], query=True),
        _client_config(harness, sk["key"]),
        _client_config(harness, f"pk_live_{random43}"),
        harness.backend("/v1/backend/project", sk["key"]),
        harness.backend("/v1/backend/project", sk_test["key"]),
        harness.backend("/v1/backend/project", f"sk_live_{random43}"),
        harness.client.get("/openapi.json"),
        harness.client.get("/no/such/route"),
        harness.client.post("/v1/config", json={"secret": sk["key"]}),
        harness.client.get("/v1/client-config", params={"publishable_key": sk["key"] * 3}),
    ]
    for response in answers:
        assert response.status_code < 500, (response.request.url, response.status_code)
        for name, canary in canaries.items():
            assert canary not in response.text, (name, str(response.request.url))
    # The public view of a secret key's owner project is there; the key itself is not.
    assert answers[6].json()["key"]["prefix"] == sk["prefix"]
