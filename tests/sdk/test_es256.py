"""A service that signs with ES256 (P-256): its real session JWTs verify; a token signed by another
P-256 key, or by an Ed25519 key under the project's kid (the key's own alg is pinned), does not."""

from __future__ import annotations

import asyncio

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey

from seqn_auth import AsyncTokenVerifier, TokenVerificationError, TokenVerifier
from tests.endusers.support import CustomerProject
from tests.processes import ApiProcess
from tests.sdk.support import sign_in
from tests.sdk.test_verify import _parts


@pytest.fixture
def service_env() -> dict[str, str]:
    return {"SILVER_SIGNING_ALGORITHM": "ES256"}


def test_es256_tokens(service: ApiProcess, project: CustomerProject) -> None:
    token = sign_in(service, project).session.jwt
    header, payload = _parts(token)
    assert header["alg"] == "ES256"
    verifier = TokenVerifier(service.url, project.project_id, "test")
    assert verifier.verify_session(token).session_id == payload["sid"]

    async def verify_async() -> str:
        async with AsyncTokenVerifier(service.url, project.project_id, "test") as async_verifier:
            return (await async_verifier.verify_session(token)).user_id

    assert asyncio.run(verify_async()) == payload["sub"]

    other_p256 = jwt.encode(header, payload, ECKey.generate_key("P-256"), algorithms=["ES256"])
    eddsa = jwt.encode(
        {**header, "alg": "EdDSA"}, payload, OKPKey.generate_key("Ed25519"), algorithms=["EdDSA"]
    )
    for forged in (other_p256, eddsa):
        with pytest.raises(TokenVerificationError) as refused:
            verifier.verify_session(forged)
        assert refused.value.reason == "bad-signature"
