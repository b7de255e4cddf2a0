"""Access tokens of the service's own OpenID Provider, got the way a relying party gets them (Authlib's
OAuth 2 client, authorize through the hosted pages, the code grant with PKCE): the SDK verifies the
RFC 9068 access token offline, and never takes it as a session JWT; the ID token passes as neither."""

from __future__ import annotations

import asyncio
import time

import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client

from seqn_auth import AsyncTokenVerifier, TokenVerificationError, TokenVerifier
from tests.oidc_provider.support import CALLBACK, HostedBrowser, Provider, provider
from tests.sdk.support import sign_in

__all__ = ["provider"]  # the fixture


def _tokens(provider: Provider, email: str) -> dict[str, str]:
    project = provider.project
    metadata = provider.metadata()
    client = OAuth2Client(
        client_id=project.project_id,
        client_secret=project.secret,
        token_endpoint_auth_method="client_secret_basic",
        scope="openid email",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    url, _ = client.create_authorization_url(
        str(metadata["authorization_endpoint"]), code_verifier=verifier, nonce=generate_token(16)
    )
    callback = HostedBrowser(provider.url).sign_up(url, project, email)
    token: dict[str, str] = client.fetch_token(
        str(metadata["token_endpoint"]), authorization_response=callback, code_verifier=verifier
    )
    return token


def test_real_access_tokens_verify_and_pass_only_as_access_tokens(provider: Provider) -> None:
    project = provider.project
    tokens = _tokens(provider, "rp-user@example.com")
    verifier = TokenVerifier(provider.url, project.project_id, project.environment)

    claims = verifier.verify_access_token(tokens["access_token"])
    assert claims.client_id == project.project_id and claims.user_id.startswith("usr_")
    assert set(claims.scopes) == {"openid", "email"} and claims.session_id
    assert claims.claims["iss"] == provider.issuer and claims.expires_at > time.time()

    async def verify_async() -> str:
        async with AsyncTokenVerifier(provider.url, project.project_id, project.environment) as other:
            return (await other.verify_access_token(tokens["access_token"])).user_id

    assert asyncio.run(verify_async()) == claims.user_id

    with pytest.raises(TokenVerificationError) as refused:
        verifier.verify_session(tokens["access_token"])  # an access token is never a session JWT
    assert refused.value.reason == "wrong-token-type"
    for token, as_access in ((tokens["id_token"], True), (tokens["id_token"], False)):
        with pytest.raises(TokenVerificationError):  # the ID token is neither
            verifier.verify_access_token(token) if as_access else verifier.verify_session(token)

    # ...and a session JWT of the same project is never an access token.
    session_jwt = sign_in(provider.url, project).session.jwt
    with pytest.raises(TokenVerificationError) as refused:
        verifier.verify_access_token(session_jwt)
    assert refused.value.reason == "wrong-token-type"
    assert verifier.verify_session(session_jwt).claims["iss"] == f"{provider.url}/p/{project.project_id}"

    live = TokenVerifier(provider.url, project.project_id, "live")
    with pytest.raises(TokenVerificationError) as refused:
        live.verify_access_token(tokens["access_token"])
    assert refused.value.reason == "wrong-environment"
