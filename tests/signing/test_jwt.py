"""Session JWTs: per-project keys with a kid, the JWKS, rotation, and every tampering refused
(`alg: none`, unknown kid, HS256 keyed with the public key, edited payload, another project, expired);
fresh tokens verify with common libraries (PyJWT, jose, joserfc) on a clock a little behind ours."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import jwt
import jwt.api_jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from joserfc import jwt as joserfc_jwt
from joserfc.errors import UnsupportedAlgorithmError
from joserfc.jwk import KeySet
from litestar.testing import TestClient

from silver_auth.app import create_app
from silver_auth.core import clock
from silver_auth.projects.service import redirect_origin
from silver_auth.settings import Settings
from silver_auth.signing.service import BACKDATE, LEEWAY
from tests.conftest import base_settings
from tests.dbstate import snapshot
from tests.endusers.support import CustomerProject, backend, customer_project, exchange, refresh, sign_up
from tests.factories import Harness


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def _session(harness: Harness, project: CustomerProject, email: str) -> dict[str, Any]:
    _browser, code = sign_up(harness, project, email)
    response = exchange(harness, project, code)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _verify(harness: Harness, project: CustomerProject, token: str) -> dict[str, Any]:
    response = backend(harness, project, "POST", "/sessions/verify", json={"token": token})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _jwks(harness: Harness, project_id: str) -> dict[str, Any]:
    harness.client.cookies.clear()
    response = harness.client.get(f"/v1/projects/{project_id}/jwks.json")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _customer_decode(harness: Harness, project: CustomerProject, token: str) -> dict[str, Any]:
    """What a customer backend does: PyJWKSet from the published JWKS, algorithm pinned to the key's."""
    key = jwt.PyJWKSet.from_dict(_jwks(harness, project.project_id))[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=[key.algorithm_name], audience=project.project_id
    )
    return claims


def _tampered(token: str, other_token: str) -> dict[str, str]:
    header, payload, signature = _parts(token)
    signing_input = lambda h, p: f"{_b64(json.dumps(h).encode())}.{_b64(json.dumps(p).encode())}"  # noqa: E731
    none = signing_input({**header, "alg": "none"}, payload) + "."
    hs_header = {**header, "alg": "HS256"}
    stranger = ed25519.Ed25519PrivateKey.generate()
    unknown_kid = jwt.encode(payload, stranger, algorithm="EdDSA", headers={"kid": "sig_" + "0" * 26})
    edited = signing_input(header, {**payload, "sub": "usr_" + "1" * 26}) + "." + signature
    return {
        "none": none,
        "hs256_input": signing_input(hs_header, payload),
        "unknown_kid": unknown_kid,
        "edited": edited,
        "other_project": other_token,
    }


def test_tampered_tokens_are_refused_by_the_backend_and_by_pyjwt(harness: Harness) -> None:
    project = customer_project(harness)
    other = customer_project(harness, owner=project.owner)
    token = _session(harness, project, "real@example.com")["jwt"]
    other_token = _session(harness, other, "elsewhere@example.com")["jwt"]
    forged = _tampered(token, other_token)
    # HS256 keyed with the published public key, both as the raw key bytes and as the JWK's JSON.
    jwk = _jwks(harness, project.project_id)["keys"][0]
    raw_public = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    hs_input = forged.pop("hs256_input")
    for name, secret in (("hs256_raw", raw_public), ("hs256_jwk", json.dumps(jwk).encode())):
        forged[name] = hs_input + "." + _b64(hmac.new(secret, hs_input.encode(), hashlib.sha256).digest())
    expected = {
        "none": "bad-signature",
        "hs256_raw": "bad-signature",
        "hs256_jwk": "bad-signature",
        "unknown_kid": "unknown-kid",
        "edited": "bad-signature",
        "other_project": "wrong-project",
    }
    before = snapshot(harness)
    for name, bad in forged.items():
        verdict = _verify(harness, project, bad)
        assert verdict == {"valid": False, "reason": expected[name], "session": None, "user": None}, name
        with pytest.raises((jwt.PyJWTError, KeyError)):  # KeyError: the kid is not in this project's set
            _customer_decode(harness, project, bad)
    assert _verify(harness, project, "not.a.jwt")["reason"] == "malformed"
    assert _verify(harness, project, token)["valid"] is True
    after = snapshot(harness)
    del after["api_keys"], before["api_keys"]  # the key cache records the secret key's last use
    assert after == before  # verifying writes nothing


def test_expired_tokens_are_refused(harness: Harness) -> None:
    project = customer_project(harness)
    token = _session(harness, project, "old@example.com")["jwt"]
    clock.advance(harness.settings.session_jwt_seconds + LEEWAY.total_seconds() + 1)
    assert _verify(harness, project, token) == {
        "valid": False,
        "reason": "expired",
        "session": None,
        "user": None,
    }


def test_jwt_claims(harness: Harness) -> None:
    project = customer_project(harness)
    body = _session(harness, project, "claims@example.com")
    header, claims, _sig = _parts(body["jwt"])
    assert header["alg"] == "EdDSA" and header["kid"].startswith("sig_")
    assert set(claims) == {"iss", "sub", "sid", "aud", "azp", "env", "iat", "nbf", "exp", "jti", "origin"}
    assert claims["iss"] == f"{harness.settings.auth_url}/p/{project.project_id}"
    assert claims["aud"] == claims["azp"] == project.project_id
    assert claims["origin"] == "https://app.example.com"  # where the session was started for
    # iat and nbf are back-dated; the lifetime still counts from the moment of issue.
    assert claims["iat"] == claims["nbf"]
    backdate = int(BACKDATE.total_seconds())
    assert claims["exp"] - claims["iat"] == harness.settings.session_jwt_seconds + backdate
    refreshed = refresh(harness, project, body["session_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert _parts(refreshed.json()["jwt"])[1]["origin"] == claims["origin"]  # lives as long as the session


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://App.Example.com:443/callback?x=1", "https://app.example.com"),
        ("https://app.example.com:8443/cb", "https://app.example.com:8443"),
        ("http://localhost:3000/cb", "http://localhost:3000"),
        ("http://[::1]:80/cb", "http://[::1]"),
        ("com.example.app:/callback", "com.example.app:"),
        ("com.example.app://oauth", "com.example.app:"),
    ],
)
def test_the_origin_claim_is_the_redirect_urls_origin(url: str, origin: str) -> None:
    assert redirect_origin(url) == origin


def _clock_behind(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """PyJWT's clock (it reads datetime.now) `seconds` behind the service clock as it is now."""
    at = clock.now() - timedelta(seconds=seconds)

    class Behind(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Behind:
            return cls.fromtimestamp(at.timestamp(), tz=tz)

    monkeypatch.setattr(jwt.api_jwt, "datetime", Behind)


def test_a_fresh_jwt_verifies_with_pyjwt_on_a_clock_one_second_behind_without_leeway(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "behind@example.com")
    _clock_behind(monkeypatch, 1)  # taken before the token exists: the verifier is at least 1 s behind
    token = exchange(harness, project, code).json()["jwt"]
    key = jwt.PyJWKSet.from_dict(_jwks(harness, project.project_id))[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(
        token,
        key.key,
        algorithms=[key.algorithm_name],
        audience=project.project_id,
        issuer=f"{harness.settings.auth_url}/p/{project.project_id}",
        options={"require": ["exp", "iat", "nbf", "sub", "sid"]},
        leeway=0,
    )
    assert claims["sub"] == _verify(harness, project, token)["user"]["id"]


@pytest.mark.slow  # starts node
def test_a_fresh_jwt_verifies_with_node_jose_on_a_clock_one_second_behind(harness: Harness) -> None:
    node = shutil.which("node")
    script = Path(__file__).resolve().parents[1] / "peers" / "oidc-provider" / "verify-jwt.js"
    if node is None or not (script.parent / "node_modules" / "jose").exists():
        pytest.fail("the oidc-provider peer is not installed: run npm ci --prefix tests/peers/oidc-provider")
    project = customer_project(harness)
    _browser, code = sign_up(harness, project, "jose@example.com")
    now = clock.now().timestamp() - 1
    token = exchange(harness, project, code).json()["jwt"]
    request = {
        "token": token,
        "jwks": _jwks(harness, project.project_id),
        "issuer": f"{harness.settings.auth_url}/p/{project.project_id}",
        "audience": project.project_id,
        "now": now,
    }
    run = subprocess.run(
        [node, str(script)], input=json.dumps(request), capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(run.stdout).get("sid") is not None, run.stdout


def test_joserfc_verifies_when_eddsa_is_allowed_explicitly(harness: Harness) -> None:
    """docs/end-users.md: joserfc refuses `EdDSA` unless `algorithms=["EdDSA"]` (RFC 9864)."""
    project = customer_project(harness)
    token = _session(harness, project, "joserfc@example.com")["jwt"]
    keys = KeySet.import_key_set(_jwks(harness, project.project_id))
    with pytest.raises(UnsupportedAlgorithmError):
        joserfc_jwt.decode(token, keys)
    decoded = joserfc_jwt.decode(token, keys, algorithms=["EdDSA"])
    registry = joserfc_jwt.JWTClaimsRegistry(
        leeway=int(LEEWAY.total_seconds()),
        iss={"essential": True, "value": f"{harness.settings.auth_url}/p/{project.project_id}"},
        aud={"essential": True, "value": project.project_id},
        sub={"essential": True},
        sid={"essential": True},
    )
    registry.validate(decoded.claims)
    assert decoded.claims["origin"] == "https://app.example.com"


def test_jwks_lists_public_keys_only_and_unknown_projects_are_404(harness: Harness) -> None:
    project = customer_project(harness)
    harness.client.cookies.clear()
    response = harness.client.get(f"/v1/projects/{project.project_id}/jwks.json")
    assert response.headers["cache-control"] == "public, max-age=60"
    keys = response.json()["keys"]
    assert len(keys) == 1
    assert set(keys[0]) == {"kty", "crv", "x", "kid", "alg", "use"}
    for path in ("/v1/projects/prj_00000000000000000000000000/jwks.json", "/v1/projects/nope/jwks.json"):
        missing = harness.client.get(path)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")


def test_rotation_keeps_the_old_key_until_its_tokens_expire(harness: Harness) -> None:
    project = customer_project(harness)
    body = _session(harness, project, "rotate@example.com")
    old_kid = jwt.get_unverified_header(body["jwt"])["kid"]
    keys_url = f"/console/api/projects/{project.project_id}/signing-keys"
    rotated = project.owner.ok("POST", f"{keys_url}/rotate", 201)
    assert rotated["status"] == "current" and rotated["kid"] != old_kid
    assert set(rotated) == {"kid", "algorithm", "status", "created_at", "rotated_at", "retire_at"}
    listed = {k["kid"]: k["status"] for k in project.owner.ok("GET", keys_url)["items"]}
    assert listed == {rotated["kid"]: "current", old_kid: "previous"}
    assert {k["kid"] for k in _jwks(harness, project.project_id)["keys"]} == {old_kid, rotated["kid"]}
    assert _verify(harness, project, body["jwt"])["valid"] is True  # tokens of the old key still verify
    assert _customer_decode(harness, project, body["jwt"])["sid"] == body["session_id"]

    fresh = refresh(harness, project, body["session_token"]).json()
    assert jwt.get_unverified_header(fresh["jwt"])["kid"] == rotated["kid"]

    clock.advance(harness.settings.access_token_seconds + LEEWAY.total_seconds() + 1)
    assert [k["kid"] for k in _jwks(harness, project.project_id)["keys"]] == [rotated["kid"]]
    listed = {k["kid"]: k["status"] for k in project.owner.ok("GET", keys_url)["items"]}
    assert listed[old_kid] == "retired"
    assert "signing_key.rotated" in " ".join(snapshot(harness)["audit_events"])


def test_es256_keys_when_configured(settings: Settings, tmp_path: Path) -> None:
    es = base_settings(
        tmp_path / "es", DATABASE_URL=settings.sqlalchemy_url, SILVER_SIGNING_ALGORITHM="ES256"
    )
    with TestClient(create_app(es), raise_server_exceptions=False) as client:
        harness = Harness(client, es)
        project = customer_project(harness)
        token = _session(harness, project, "es@example.com")["jwt"]
        assert jwt.get_unverified_header(token)["alg"] == "ES256"
        assert _customer_decode(harness, project, token)["env"] == "test"
        assert _verify(harness, project, token)["valid"] is True
        jwk = _jwks(harness, project.project_id)["keys"][0]
        assert jwk["kty"] == "EC" and "d" not in jwk
