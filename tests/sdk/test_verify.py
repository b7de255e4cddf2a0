"""Offline verification with the SDK against tokens a running service issued: a real session JWT passes
(sync and async); a forged one, an expired one, another project's, another environment's, another
issuer's and junk are refused with their stable reasons; access tokens (`typ: at+jwt`) minted here
with the project's real signing key, to reach the claims the provider never issues wrong, pass only
as access tokens (the provider's own tokens: test_access_tokens.py); the JWKS cache honours max-age and
refetches once for an unknown kid, however many arrive."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey

from seqn_auth import AsyncTokenVerifier, JWKSUnavailableError, TokenVerificationError, TokenVerifier
from seqn_auth.verify import _max_age
from silver_auth.audit.service import Actor
from silver_auth.core.crypto import Sealer
from silver_auth.db.session import transaction
from silver_auth.projects.models import Project
from silver_auth.signing.service import _key, current_key, signing_key_context
from tests.endusers.support import CustomerProject, customer_project
from tests.factories import Harness
from tests.processes import ApiProcess
from tests.sdk.support import sign_in


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")

    def decode(part: str) -> dict[str, Any]:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    return decode(header), decode(payload)


def _reason(verifier: TokenVerifier, token: str, *, access: bool = False) -> str:
    with pytest.raises(TokenVerificationError) as refused:
        verifier.verify_access_token(token) if access else verifier.verify_session(token)
    return refused.value.reason


class CountingTransport(httpx.HTTPTransport):
    """A real HTTP transport that counts the requests it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        return super().handle_request(request)


def project_private_key(harness: Harness, project_id: str) -> tuple[str, str, Any]:
    """The project's current signing key (kid, alg, private key), unsealed in-process."""
    runtime = harness.runtime

    async def work() -> tuple[str, str, Any]:
        async with transaction(runtime.sessionmaker) as db:
            row = await db.get(Project, project_id)
            assert row is not None
            key = await current_key(db, runtime.settings, row, actor=Actor("system"))
            pem = Sealer(runtime.settings.sealing_key_ring()).unseal(
                key.private_sealed, signing_key_context(key.id)
            )
            return key.id, key.algorithm, _key(key.algorithm, pem)

    return harness.run(work)


def test_a_real_session_jwt_verifies_and_a_forged_expired_or_foreign_one_does_not(
    harness: Harness, service: ApiProcess, project: CustomerProject
) -> None:
    signed = sign_in(service, project)
    token = signed.session.jwt
    verifier = TokenVerifier(service.url, project.project_id, "test")

    claims = verifier.verify_session(token)
    assert claims.user_id == signed.session.user_id
    assert claims.session_id == signed.session.session_id
    assert (claims.project_id, claims.environment) == (project.project_id, "test")
    assert claims.expires_at > claims.issued_at
    assert claims.claims["iss"] == f"{service.url}/p/{project.project_id}"

    header, payload = _parts(token)
    # Forged: the same header (a real kid) and claims, signed by a key of ours, not the project's.
    other = OKPKey.generate_key("Ed25519")
    forged = jwt.encode(header, payload, other, algorithms=[header["alg"]])
    assert _reason(verifier, forged) == "bad-signature"
    # The same with a kid of our own: the JWKS has no such key.
    own_kid = jwt.encode({**header, "kid": "sig_forged"}, payload, other, algorithms=[header["alg"]])
    assert _reason(verifier, own_kid) == "unknown-kid"
    # alg confusion: HS256 keyed with the public JWK's bytes.
    hs_header = base64.urlsafe_b64encode(json.dumps({**header, "alg": "HS256"}).encode()).rstrip(b"=")
    assert _reason(verifier, hs_header.decode() + "." + token.split(".", 1)[1]) == "bad-signature"
    # alg none
    none = base64.urlsafe_b64encode(json.dumps({**header, "alg": "none"}).encode()).rstrip(b"=")
    assert _reason(verifier, none.decode() + "." + token.split(".")[1] + ".") == "bad-signature"

    # Expired: the real token, judged by a clock past its exp and the leeway.
    later = TokenVerifier(service.url, project.project_id, "test", now=lambda: time.time() + 3600)
    assert _reason(later, token) == "expired"
    # Within the leeway it still passes; before its nbf (less the leeway) it is not yet valid.
    edge = TokenVerifier(service.url, project.project_id, "test", now=lambda: claims.expires_at + 29)
    assert edge.verify_session(token).user_id == claims.user_id
    early = TokenVerifier(service.url, project.project_id, "test", now=lambda: claims.issued_at - 120)
    assert _reason(early, token) == "not-yet-valid"

    # Another project of the same service: its own keys and aud.
    elsewhere = customer_project(harness, owner=project.owner)
    foreign = sign_in(service, elsewhere).session.jwt
    assert _reason(verifier, foreign) == "wrong-project"
    assert TokenVerifier(service.url, elsewhere.project_id, "test").verify_session(foreign)

    # The same project's live environment does not take a test token.
    assert _reason(TokenVerifier(service.url, project.project_id, "live"), token) == "wrong-environment"
    # Another auth URL (the same server under another name): the issuer differs.
    renamed = service.url.replace("127.0.0.1", "localhost")
    assert _reason(TokenVerifier(renamed, project.project_id, "test"), token) == "wrong-issuer"

    for junk in ("", "abc", "a.b.c", token.rsplit(".", 1)[0]):
        assert _reason(verifier, junk) in {"malformed", "bad-signature"}
    verifier.close()


def test_the_async_verifier_verifies_the_same_token(service: ApiProcess, project: CustomerProject) -> None:
    token = sign_in(service, project).session.jwt

    async def work() -> None:
        async with AsyncTokenVerifier(service.url, project.project_id, "test") as verifier:
            results = await asyncio.gather(*(verifier.verify_session(token) for _ in range(5)))
            assert {claims.session_id for claims in results} == {results[0].session_id}
            with pytest.raises(TokenVerificationError) as refused:
                await verifier.verify_session(token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"))
            assert refused.value.reason == "bad-signature"
            with pytest.raises(TokenVerificationError) as refused:
                await verifier.verify_access_token(token)
            assert refused.value.reason == "wrong-token-type"

    asyncio.run(work())


def _access_token(harness: Harness, service: ApiProcess, project: CustomerProject, **changes: Any) -> str:
    kid, alg, private = project_private_key(harness, project.project_id)
    now = int(time.time())
    claims = {
        "iss": f"{service.url}/p/{project.project_id}/{project.environment}",
        "aud": project.project_id,
        "client_id": "oac_example",
        "sub": "usr_example",
        "sid": "ses_example",
        "scope": "openid profile email",
        "env": project.environment,
        "iat": now - 5,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(16),
    } | changes
    header = {"alg": alg, "kid": kid, "typ": changes.pop("typ", "at+jwt")}
    return jwt.encode(header, {k: v for k, v in claims.items() if k != "typ"}, private, algorithms=[alg])


def test_access_tokens_signed_by_the_project_key_pass_only_as_access_tokens(
    harness: Harness, service: ApiProcess, project: CustomerProject
) -> None:
    session_jwt = sign_in(service, project).session.jwt  # the service made the project's signing key
    verifier = TokenVerifier(service.url, project.project_id, "test")

    access = _access_token(harness, service, project)
    claims = verifier.verify_access_token(access)
    assert (claims.client_id, claims.user_id, claims.session_id) == (
        "oac_example",
        "usr_example",
        "ses_example",
    )
    assert claims.scopes == ("openid", "profile", "email") and claims.has_scope("email")

    assert _reason(verifier, access) == "wrong-token-type"  # never a session JWT
    assert _reason(verifier, session_jwt, access=True) == "wrong-token-type"  # nor the reverse
    # The access-token issuer has the environment in it; a session JWT's issuer does not pass.
    wrong_iss = _access_token(harness, service, project, iss=f"{service.url}/p/{project.project_id}")
    assert _reason(verifier, wrong_iss, access=True) == "wrong-issuer"
    expired = _access_token(harness, service, project, iat=int(time.time()) - 900, exp=int(time.time()) - 600)
    assert _reason(verifier, expired, access=True) == "expired"
    live = _access_token(
        harness, service, project, env="live", iss=f"{service.url}/p/{project.project_id}/live"
    )
    assert _reason(verifier, live, access=True) == "wrong-environment"
    # typ without at+jwt is not an access token, whatever its claims say
    plain = _access_token(harness, service, project, typ="JWT")
    assert _reason(verifier, plain, access=True) == "wrong-token-type"


def test_the_jwks_is_cached_and_an_unknown_kid_refetches_once(
    service: ApiProcess, project: CustomerProject
) -> None:
    token = sign_in(service, project).session.jwt
    header, payload = _parts(token)
    transport = CountingTransport()
    clock = [1000.0]
    verifier = TokenVerifier(
        service.url,
        project.project_id,
        "test",
        http_client=httpx.Client(transport=transport),
        monotonic=lambda: clock[0],
    )
    for _ in range(3):
        verifier.verify_session(token)
    assert len(transport.requests) == 1
    assert transport.requests[0] == f"{service.url}/v1/projects/{project.project_id}/jwks.json"

    stranger = OKPKey.generate_key("Ed25519")
    clock[0] += 31  # past the minimum interval between refetches
    for _ in range(20):  # a flood of invented kids costs one request
        kid = "sig_" + secrets.token_hex(8)
        forged = jwt.encode({**header, "kid": kid}, payload, stranger, algorithms=[header["alg"]])
        assert _reason(verifier, forged) == "unknown-kid"
    assert len(transport.requests) == 2
    verifier.verify_session(token)  # known kid: from the cache
    assert len(transport.requests) == 2

    clock[0] += 61  # the service says max-age=60: stale, fetched again
    verifier.verify_session(token)
    assert len(transport.requests) == 3

    service.stop()  # the JWKS is unreachable: the keys at hand keep serving
    clock[0] += 61
    verifier.verify_session(token)
    cold = TokenVerifier(service.url, project.project_id, "test")
    with pytest.raises(JWKSUnavailableError):
        cold.verify_session(token)


def test_cache_control_max_age() -> None:
    assert _max_age("public, max-age=60", 300) == 60
    assert _max_age(None, 300) == 300
    assert _max_age("max-age=999999999", 300) == 86_400
    assert _max_age("no-store", 300) == 30
    assert _max_age("private", 300) == 300


def test_a_rotated_signing_key_is_picked_up_by_the_unknown_kid_refetch(
    service: ApiProcess, project: CustomerProject
) -> None:
    before = sign_in(service, project).session.jwt
    clock = [1000.0]
    transport = CountingTransport()
    verifier = TokenVerifier(
        service.url,
        project.project_id,
        "test",
        http_client=httpx.Client(transport=transport),
        monotonic=lambda: clock[0],
    )
    verifier.verify_session(before)
    project.owner.ok("POST", f"/console/api/projects/{project.project_id}/signing-keys/rotate", 201)
    after = sign_in(service, project).session.jwt
    assert _parts(after)[0]["kid"] != _parts(before)[0]["kid"]
    clock[0] += 31  # the cached JWKS is still fresh (max-age 60), but the new kid is unknown to it
    assert verifier.verify_session(after).claims["iss"] == f"{service.url}/p/{project.project_id}"
    assert verifier.verify_session(before)  # the previous key stays published until its tokens expire
    assert len(transport.requests) == 2
