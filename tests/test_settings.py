"""Settings: the production guard (G5, G11-G13, G21, no SQLite), development secrets, sealing, redaction."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar

from silver_auth.app import ProductionGuardError, create_app
from silver_auth.core.crypto import Sealer, SealError, keyed_hash, sign, verify_signature
from silver_auth.core.production_guard import looks_random, production_violations
from silver_auth.core.redaction import REDACTED, redact, redact_text
from silver_auth.settings import DEV_SECRETS_FILE, Settings, environment_settings, load_settings
from tests.conftest import base_settings

CLI = Path(sys.executable).with_name("silver-auth")
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what the guard must refuse


def sealing_key(kid: str = "k1") -> str:
    return f"{kid}:" + base64.b64encode(secrets.token_bytes(32)).decode()


def good_production_env() -> dict[str, str]:
    """A complete production configuration that breaks no guide line."""
    return {
        "SILVER_ENV": "production",
        "SESSION_SECRET": secrets.token_urlsafe(40),
        "SILVER_KEY_PEPPER": secrets.token_urlsafe(40),
        "SILVER_SEALING_KEYS": sealing_key(),
        "SILVER_ACCOUNTS_URL": "https://accounts.seqn.in",
        "SILVER_AUTH_URL": "https://auth.seqn.in",
        "SILVER_BIND_HOST": "127.0.0.1",
        "SILVER_POSTGRES_HOST": "10.0.0.20",
        "SILVER_POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "AUTHENTIK_PG_PASS": secrets.token_urlsafe(24),
        "SILVER_ALERT_URLS": "json://alerts.seqn.in/l2",  # L2: an attended channel
    }


def production(tmp_path: Path, *, drop: tuple[str, ...] = (), **overrides: Any) -> Settings:
    values: dict[str, Any] = {**good_production_env(), **overrides}
    for name in drop:
        values.pop(name)
    values.setdefault("SILVER_DATA_DIR", str(tmp_path / "data"))
    return load_settings(_env_file=None, **values)


def only_violation(settings: Settings, guide: str) -> str:
    """The settings break exactly one line, `guide`; create_app refuses to build with that line."""
    violations = production_violations(settings)
    assert len(violations) == 1, violations
    assert violations[0].startswith(f"{guide}:"), violations
    with pytest.raises(ProductionGuardError) as refused:
        create_app(settings)
    assert refused.value.violations == violations
    assert violations[0] in str(refused.value.code)
    return violations[0]


# --- the production guard -----------------------------------------------------------------------------


def test_complete_production_config_has_no_violations(tmp_path: Path) -> None:
    settings = production(tmp_path)
    assert production_violations(settings) == []
    assert settings.cookie_secure is True  # G11 defaults to true in production
    assert isinstance(create_app(settings), Litestar)  # builds (nothing is connected until it serves)
    assert not (tmp_path / "data" / DEV_SECRETS_FILE).exists()  # production never generates secrets


def test_complete_production_config_with_a_database_url_has_no_violations(tmp_path: Path) -> None:
    password = secrets.token_urlsafe(24)
    settings = production(
        tmp_path,
        drop=("SILVER_POSTGRES_HOST", "SILVER_POSTGRES_PASSWORD"),
        DATABASE_URL=f"postgresql://silver:{password}@10.0.0.20:5432/silver",
    )
    assert production_violations(settings) == []


def test_development_has_no_production_guard(tmp_path: Path) -> None:
    settings = base_settings(tmp_path, SESSION_SECRET="short", SILVER_BIND_HOST=ALL_INTERFACES)
    assert production_violations(settings) == []


def test_g11_session_cookie_secure_false_is_refused(tmp_path: Path) -> None:
    line = only_violation(production(tmp_path, SESSION_COOKIE_SECURE=False), "G11")
    assert "SESSION_COOKIE_SECURE" in line


@pytest.mark.parametrize("samesite", ["Strict", "None", "strict"])
def test_g12_samesite_other_than_lax_needs_the_named_override(tmp_path: Path, samesite: str) -> None:
    line = only_violation(production(tmp_path, SESSION_COOKIE_SAMESITE=samesite), "G12")
    assert "SESSION_COOKIE_SAMESITE_OVERRIDE" in line
    blank = production(tmp_path, SESSION_COOKIE_SAMESITE=samesite, SESSION_COOKIE_SAMESITE_OVERRIDE="  ")
    only_violation(blank, "G12")
    reviewed = production(
        tmp_path,
        SESSION_COOKIE_SAMESITE=samesite,
        SESSION_COOKIE_SAMESITE_OVERRIDE="SEC-142: reviewed cross-site embed flow",
    )
    assert production_violations(reviewed) == []


@pytest.mark.parametrize("samesite", ["Lax", "lax", "LAX"])
def test_g12_lax_needs_no_override(tmp_path: Path, samesite: str) -> None:
    settings = production(tmp_path, SESSION_COOKIE_SAMESITE=samesite)
    assert settings.session_cookie_samesite == "Lax"
    assert production_violations(settings) == []


def test_g13_session_secret_shorter_than_32_is_refused(tmp_path: Path) -> None:
    short = secrets.token_urlsafe(40)[:31]
    line = only_violation(production(tmp_path, SESSION_SECRET=short), "G13")
    assert "32" in line and short not in line
    assert production_violations(production(tmp_path, SESSION_SECRET=secrets.token_urlsafe(40)[:32])) == []


def test_g13_missing_session_secret_is_refused_not_generated(tmp_path: Path) -> None:
    only_violation(production(tmp_path, drop=("SESSION_SECRET",)), "G13")
    assert not (tmp_path / "data" / DEV_SECRETS_FILE).exists()


@pytest.mark.parametrize(
    "secret",
    [
        "a" * 40,
        "changeme" * 5,
        "abcd" * 10,
        "abcdefghijklmnopqrstuvwxyz012345",
        "0123456789" * 4,
        "my-session-secret-for-production-2024",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx12",
        "aaaaaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbbbbb",
    ],
)
def test_g13_visibly_non_random_session_secret_is_refused(tmp_path: Path, secret: str) -> None:
    line = only_violation(production(tmp_path, SESSION_SECRET=secret), "G13")
    assert secret not in line


def test_g13_generated_secrets_pass(tmp_path: Path) -> None:
    """What operators paste from `openssl rand -hex 16` or `secrets.token_urlsafe` must not be refused."""
    generated = [secrets.token_hex(16) for _ in range(300)] + [secrets.token_urlsafe(24) for _ in range(300)]
    refused = [value for value in generated if not looks_random(value)]
    assert refused == []
    assert production_violations(production(tmp_path, SESSION_SECRET=secrets.token_hex(16))) == []


def test_sqlite_in_production_is_refused(tmp_path: Path) -> None:
    line = only_violation(
        production(tmp_path, drop=("SILVER_POSTGRES_HOST", "SILVER_POSTGRES_PASSWORD")), "G20/G22"
    )
    assert "SQLite" in line
    by_url = production(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'prod.db'}")
    assert any("SQLite" in v for v in production_violations(by_url))


@pytest.mark.parametrize(
    "password",
    [
        # random but shorter than 16; a fixed id, since every xdist worker must collect the same tests
        pytest.param(secrets.token_urlsafe(24)[:15], id="random-15"),
        "password12345678",
        "Silver2024Silver2024",
        "q" * 20,
    ],
)
def test_g21_weak_silver_postgres_password_is_refused(tmp_path: Path, password: str) -> None:
    line = only_violation(production(tmp_path, SILVER_POSTGRES_PASSWORD=password), "G21")
    assert "SILVER_POSTGRES_PASSWORD" in line and password not in line


def test_g21_weak_password_inside_database_url_is_refused(tmp_path: Path) -> None:
    settings = production(
        tmp_path,
        drop=("SILVER_POSTGRES_HOST", "SILVER_POSTGRES_PASSWORD"),
        DATABASE_URL="postgresql://silver:hunter2@10.0.0.20:5432/silver",
    )
    line = only_violation(settings, "G21")
    assert "hunter2" not in line


def test_g21_weak_authentik_password_is_refused(tmp_path: Path) -> None:
    line = only_violation(production(tmp_path, AUTHENTIK_PG_PASS="authentik"), "G21")
    assert "AUTHENTIK_PG_PASS" in line


def test_g21_shared_database_password_is_refused(tmp_path: Path) -> None:
    shared = secrets.token_urlsafe(24)
    line = only_violation(
        production(tmp_path, SILVER_POSTGRES_PASSWORD=shared, AUTHENTIK_PG_PASS=shared), "G21"
    )
    assert "AUTHENTIK_PG_PASS" in line and "SILVER_POSTGRES_PASSWORD" in line and shared not in line


def test_g21_missing_postgres_password_is_refused(tmp_path: Path) -> None:
    only_violation(production(tmp_path, drop=("SILVER_POSTGRES_PASSWORD",)), "G21")


@pytest.mark.parametrize("host", [ALL_INTERFACES, "::", "8.8.8.8", "2001:4860:4860::8888", "api.seqn.in"])
def test_g5_public_bind_address_is_refused(tmp_path: Path, host: str) -> None:
    line = only_violation(production(tmp_path, SILVER_BIND_HOST=host), "G5")
    assert host in line


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "::1", "localhost", "10.0.0.5", "10.255.1.2", "172.17.0.1", "192.168.1.10", "fd00::5"],
)
def test_g5_loopback_and_private_bind_addresses_are_fine(tmp_path: Path, host: str) -> None:
    assert production_violations(production(tmp_path, SILVER_BIND_HOST=host)) == []


def test_every_violation_at_once_is_one_line_each(tmp_path: Path) -> None:
    settings = production(
        tmp_path,
        drop=("SILVER_POSTGRES_HOST", "SILVER_POSTGRES_PASSWORD"),
        SESSION_COOKIE_SECURE=False,
        SESSION_COOKIE_SAMESITE="None",
        SESSION_SECRET="changeme",
        SILVER_BIND_HOST=ALL_INTERFACES,
        AUTHENTIK_PG_PASS="short",
    )
    violations = production_violations(settings)
    guides = [line.split(":", 1)[0] for line in violations]
    assert guides == ["G5", "G11", "G12", "G13", "G20/G22", "G21"], violations
    assert all("\n" not in line for line in violations)


# --- the CLI refuses to serve -------------------------------------------------------------------------


def run_cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    return subprocess.run(
        [str(CLI), *args],
        env={**base, **env},
        cwd=tmp_path,  # no stray .env
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "guide"),
    [
        ({"SESSION_COOKIE_SECURE": "false"}, "G11"),
        ({"SESSION_COOKIE_SAMESITE": "None"}, "G12"),
        ({"SESSION_SECRET": "abcd" * 10}, "G13"),
        ({"SILVER_POSTGRES_PASSWORD": "short"}, "G21"),
        ({"SILVER_BIND_HOST": ALL_INTERFACES}, "G5"),
    ],
)
def test_cli_serve_refuses_production_violations(
    tmp_path: Path, overrides: dict[str, str], guide: str
) -> None:
    env = {**good_production_env(), "SILVER_DATA_DIR": str(tmp_path / "data"), **overrides}
    result = run_cli(tmp_path, env, "serve")
    assert result.returncode != 0, result
    lines = result.stderr.splitlines()
    assert lines[0].startswith("refusing to start in production: 1 setting"), result.stderr
    assert len(lines) == 2 and lines[1].strip().startswith(f"{guide}:"), result.stderr
    assert env["SESSION_SECRET"] not in result.stderr + result.stdout
    assert env["SILVER_POSTGRES_PASSWORD"] not in result.stderr + result.stdout


@pytest.mark.slow
def test_cli_serve_prints_one_line_per_violation_with_its_guide_line(tmp_path: Path) -> None:
    env = {
        **good_production_env(),
        "SILVER_DATA_DIR": str(tmp_path / "data"),
        "SILVER_BIND_HOST": "8.8.8.8",
        "SESSION_COOKIE_SECURE": "false",
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_SECRET": "a" * 40,
        "AUTHENTIK_PG_PASS": "x",
        "COLUMNS": "40",  # a narrow terminal must not wrap a violation over two lines
    }
    env.pop("SILVER_POSTGRES_HOST")
    env.pop("SILVER_POSTGRES_PASSWORD")
    expected = production_violations(
        load_settings(_env_file=None, **{k: v for k, v in env.items() if k != "COLUMNS"})
    )
    result = run_cli(tmp_path, env, "serve")
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"refusing to start in production: {len(expected)} setting(s)")
    assert [line.strip() for line in lines[1:]] == expected
    assert [line.split(":", 1)[0].strip() for line in lines[1:]] == [
        "G5",
        "G11",
        "G12",
        "G13",
        "G20/G22",
        "G21",
    ]


# --- development secrets ------------------------------------------------------------------------------


def test_development_generates_secrets_once_with_0600_and_reuses_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = load_settings(_env_file=None, SILVER_DATA_DIR=str(data))
    path = data / DEV_SECRETS_FILE
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) & 0o077 == 0  # the data dir is the owner's alone
    stored = json.loads(path.read_text())
    assert set(stored) == {"SESSION_SECRET", "SILVER_KEY_PEPPER", "SILVER_SEALING_KEYS"}
    assert first.secret("session_secret").decode() == stored["SESSION_SECRET"]
    assert first.secret("key_pepper").decode() == stored["SILVER_KEY_PEPPER"]
    for value in (stored["SESSION_SECRET"], stored["SILVER_KEY_PEPPER"]):
        assert len(value) >= 32 and looks_random(value)
    ring = first.sealing_key_ring()
    assert len(ring) == 1 and len(ring[0][1]) == 32

    modified = path.stat().st_mtime_ns
    second = load_settings(_env_file=None, SILVER_DATA_DIR=str(data))
    assert second.secret("session_secret") == first.secret("session_secret")
    assert second.secret("key_pepper") == first.secret("key_pepper")
    assert second.sealing_key_ring() == ring
    assert path.stat().st_mtime_ns == modified and json.loads(path.read_text()) == stored

    elsewhere = load_settings(_env_file=None, SILVER_DATA_DIR=str(tmp_path / "other"))
    assert elsewhere.secret("session_secret") != first.secret("session_secret")


def test_development_keeps_explicit_secrets_and_fills_only_the_missing(tmp_path: Path) -> None:
    explicit = secrets.token_urlsafe(40)
    settings = load_settings(_env_file=None, SILVER_DATA_DIR=str(tmp_path / "data"), SESSION_SECRET=explicit)
    stored = json.loads((tmp_path / "data" / DEV_SECRETS_FILE).read_text())
    assert settings.secret("session_secret").decode() == explicit
    assert settings.secret("key_pepper").decode() == stored["SILVER_KEY_PEPPER"]


def test_development_app_starts_on_generated_secrets(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None, SILVER_DATA_DIR=str(tmp_path / "data"))
    assert isinstance(create_app(settings), Litestar)


# --- sealing ------------------------------------------------------------------------------------------


def ring(*kids: str) -> list[tuple[str, bytes]]:
    return [(kid, secrets.token_bytes(32)) for kid in kids]


def test_seal_round_trip_and_fresh_nonce() -> None:
    keys = ring("k1")
    sealed = Sealer(keys).seal("whsec_top_secret_value", "webhook:wh_1")
    assert sealed.startswith("v1.k1.") and "whsec_top_secret_value" not in sealed
    assert Sealer(keys).unseal(sealed, "webhook:wh_1") == "whsec_top_secret_value"
    assert Sealer(keys).seal("whsec_top_secret_value", "webhook:wh_1") != sealed


def test_unseal_with_wrong_context_fails() -> None:
    keys = ring("k1")
    sealed = Sealer(keys).seal("secret", "webhook:wh_1")
    with pytest.raises(SealError):
        Sealer(keys).unseal(sealed, "webhook:wh_2")


def test_unseal_with_unknown_kid_or_another_key_fails() -> None:
    sealed = Sealer(ring("k1")).seal("secret", "ctx")
    with pytest.raises(SealError):
        Sealer(ring("k2")).unseal(sealed, "ctx")
    with pytest.raises(SealError):
        Sealer(ring("k1")).unseal(sealed, "ctx")  # same kid, another key


@pytest.mark.parametrize("part", ["version", "kid", "payload", "truncated", "garbage"])
def test_unseal_of_tampered_values_fails(part: str) -> None:
    keys = ring("k1")
    version, kid, payload = Sealer(keys).seal("secret", "ctx").split(".", 2)
    raw = bytearray(base64.urlsafe_b64decode(payload))
    raw[-1] ^= 1
    tampered = {
        "version": f"v2.{kid}.{payload}",
        "kid": f"{version}.k9.{payload}",
        "payload": f"{version}.{kid}.{base64.urlsafe_b64encode(bytes(raw)).decode()}",
        "truncated": f"{version}.{kid}.{payload[:10]}",
        "garbage": "not a sealed value",
    }[part]
    with pytest.raises(SealError):
        Sealer(keys).unseal(tampered, "ctx")


def test_unseal_after_key_rotation_uses_the_old_key_by_kid() -> None:
    old = ring("k1")
    sealed = Sealer(old).seal("secret", "ctx")
    rotated = ring("k2") + old
    assert Sealer(rotated).unseal(sealed, "ctx") == "secret"
    assert Sealer(rotated).seal("secret", "ctx").startswith("v1.k2.")
    with pytest.raises(SealError):
        Sealer(rotated[:1]).unseal(sealed, "ctx")


def test_signatures_compare_safely() -> None:
    secret = secrets.token_bytes(32)
    signature = sign(secret, "session:abc")
    assert verify_signature(secret, "session:abc", signature)
    assert not verify_signature(secret, "session:abd", signature)
    assert not verify_signature(secrets.token_bytes(32), "session:abc", signature)
    assert not verify_signature(secret, "session:abc", "\u00e9" * len(signature))  # no TypeError
    assert not verify_signature(secret, "session:abc", "")
    assert keyed_hash(b"pepper-1", "sk_live_x") == keyed_hash(b"pepper-1", "sk_live_x")
    assert keyed_hash(b"pepper-1", "sk_live_x") != keyed_hash(b"pepper-2", "sk_live_x")


# --- redaction ----------------------------------------------------------------------------------------


def test_redact_text_removes_planted_secrets() -> None:
    planted = {
        "secret key": "sk_live_" + secrets.token_hex(20),
        "test key": "sk_test_" + secrets.token_hex(20),
        "webhook secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
        "bearer": "Bearer " + secrets.token_urlsafe(24),
        "jwt": "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEifQ.c2lnbmF0dXJlLXBhcnQ",
        "url password": "postgresql://silver:" + secrets.token_urlsafe(16) + "@db:5432/silver",
    }
    for label, value in planted.items():
        line = f"failed while handling {value} for org_1"
        redacted = redact_text(line)
        assert REDACTED in redacted, label
        secret_part = value.split(" ", 1)[-1] if label == "bearer" else value
        if label == "url password":
            secret_part = value.split(":")[2].split("@")[0]
        assert secret_part not in redacted, label
        assert "org_1" in redacted and redacted.startswith("failed while handling"), label
    assert redact_text("authorization: bearer abcdefgh12345678") == f"authorization: {REDACTED}"


def test_redact_text_keeps_what_is_not_secret() -> None:
    text = "pk_live_abcdefghijk prefix sk_live_ab org_123 prj_456 https://auth.seqn.in/v1/config"
    assert redact_text(text) == text


def test_redact_structures_by_key_and_by_shape() -> None:
    password = secrets.token_urlsafe(12)
    metadata = {
        "password": password,
        "new_password": password,
        "SESSION_SECRET": "x" * 40,
        "csrf_token": "abc",
        "Authorization": "Basic dXNlcjpwYXNz",
        "cookie": "silver_session=abc.def",
        "api_key": "anything",
        "key": "sk_live_whatever",
        "pepper": "p",
        "name": "Acme",
        "key_id": "key_123",
        "prefix": "sk_live_abcd",
        "rotated": True,
        "token_ttl": 3600,
        "empty_secret": None,
        "nested": {"list": [{"password": password}, "Bearer " + "z" * 20, "plain"]},
        "note": "the key is sk_test_" + "q" * 24,
    }
    redacted = redact(metadata)
    for name in ("password", "new_password", "SESSION_SECRET", "csrf_token", "Authorization", "cookie"):
        assert redacted[name] == REDACTED, name
    for name in ("api_key", "key", "pepper"):
        assert redacted[name] == REDACTED, name
    assert redacted["name"] == "Acme" and redacted["key_id"] == "key_123"
    assert redacted["rotated"] is True and redacted["token_ttl"] == 3600 and redacted["empty_secret"] is None
    assert redacted["nested"]["list"] == [{"password": REDACTED}, REDACTED, "plain"]
    assert redacted["note"] == f"the key is {REDACTED}"
    assert password not in repr(redacted)
    assert metadata["password"] == password  # the input is left alone


def test_public_urls_follow_the_bind_address_in_development_unless_set() -> None:
    """Only SILVER_BIND_PORT changed: client-config, the hosted pages and the JWT issuer use that port."""
    moved = environment_settings(_env_file=None, SILVER_BIND_PORT=9123)
    assert moved.auth_url == moved.accounts_url == "http://127.0.0.1:9123"
    assert environment_settings(_env_file=None, SILVER_BIND_HOST="::1").auth_url == "http://[::1]:8000"
    explicit = environment_settings(
        _env_file=None, SILVER_BIND_PORT=9123, SILVER_AUTH_URL="https://auth.example.test"
    )
    assert explicit.auth_url == "https://auth.example.test"
    assert explicit.accounts_url == "http://127.0.0.1:9123"


def test_g1_production_needs_both_public_urls_set(tmp_path: Path) -> None:
    settings = production(tmp_path, drop=("SILVER_ACCOUNTS_URL", "SILVER_AUTH_URL"))
    problems = production_violations(settings)
    assert any("SILVER_ACCOUNTS_URL must be set" in line for line in problems), problems
    assert any("SILVER_AUTH_URL must be set" in line for line in problems), problems
