"""Authlib's OAuth 2 client (Python), unmodified, against a running service: discovery, authorize (the
hosted sign-up form driven like a browser), token, ID-token validation with Authlib's own OpenID
Connect claims rules, userinfo, refresh, revocation and RP-initiated logout; then the specs' refusals."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken
from sqlalchemy import update

from silver_auth.core import clock
from silver_auth.db.session import transaction
from silver_auth.endusers.models import RedirectCode
from tests.factories import Harness
from tests.oidc_provider.support import CALLBACK, SIGNED_OUT, HostedBrowser, Provider, provider, query_of

__all__ = ["provider"]  # the fixture

SCOPE = "openid email offline_access"


def _client(provider: Provider, **kwargs: Any) -> OAuth2Client:
    project = provider.project
    options: dict[str, Any] = {
        "client_id": project.project_id,
        "client_secret": project.secret,
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": SCOPE,
        "redirect_uri": CALLBACK,
        "code_challenge_method": "S256",
    }
    return OAuth2Client(**(options | kwargs))


def _authorize(
    provider: Provider, client: OAuth2Client, email: str, *, sign_up: bool = True
) -> tuple[str, str, str]:
    """Authorize through the hosted pages: (the callback URL, the PKCE verifier, the nonce)."""
    metadata = provider.metadata()
    verifier, nonce = generate_token(48), secrets.token_urlsafe(16)
    url, _state = client.create_authorization_url(
        str(metadata["authorization_endpoint"]), code_verifier=verifier, nonce=nonce
    )
    browser = HostedBrowser(provider.url)
    back = (
        browser.sign_up(url, provider.project, email)
        if sign_up
        else browser.sign_in(url, provider.project, email)
    )
    return back, verifier, nonce


def _id_token_claims(provider: Provider, id_token: str, nonce: str | None, client_id: str) -> Any:
    metadata = provider.metadata()
    keys = JsonWebKey.import_key_set(httpx.get(str(metadata["jwks_uri"])).json())
    claims = jwt.decode(
        id_token,
        keys,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": provider.issuer}},
        claims_params={"nonce": nonce, "client_id": client_id},
    )
    claims.validate(leeway=30)
    return claims


def test_authlib_completes_the_whole_flow(provider: Provider) -> None:
    metadata = provider.metadata()
    assert metadata["issuer"] == provider.issuer
    client = _client(provider)
    callback, verifier, nonce = _authorize(provider, client, "ada@example.com")
    assert callback.startswith(CALLBACK + "?")
    assert query_of(callback)["iss"] == provider.issuer  # RFC 9207

    token = client.fetch_token(
        str(metadata["token_endpoint"]), authorization_response=callback, code_verifier=verifier
    )
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0
    assert set(token["scope"].split()) == set(SCOPE.split())
    claims = _id_token_claims(provider, token["id_token"], nonce, provider.project.project_id)
    assert claims["email"] == "ada@example.com" and claims["amr"] == ["pwd"]
    assert claims["aud"] == provider.project.project_id and "auth_time" in claims

    # The access token is an RFC 9068 JWT, and userinfo answers for it.
    assert JsonWebKey.import_key_set(httpx.get(str(metadata["jwks_uri"])).json())
    header = jwt.decode(
        token["access_token"], JsonWebKey.import_key_set(httpx.get(str(metadata["jwks_uri"])).json())
    ).header
    assert header["typ"] == "at+jwt"
    info = client.get(str(metadata["userinfo_endpoint"]))
    assert info.status_code == 200, info.text
    assert info.json() == {"sub": claims["sub"], "email": "ada@example.com", "email_verified": False}

    # Refresh: a new pair, and the spent refresh token is refused.
    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(str(metadata["token_endpoint"]))
    assert refreshed["refresh_token"] != first_refresh
    assert (
        _id_token_claims(provider, refreshed["id_token"], None, provider.project.project_id)["sub"]
        == claims["sub"]
    )
    assert client.get(str(metadata["userinfo_endpoint"])).status_code == 200

    # Introspection (secret key): the access token is active.
    introspected = client.post(
        str(metadata["introspection_endpoint"]),
        data={"token": refreshed["access_token"]},
        auth=(provider.project.project_id, provider.project.secret),
    )
    assert introspected.json()["active"] is True and introspected.json()["sub"] == claims["sub"]

    # RP-initiated logout with the ID token as hint: back to the registered URL, session over.
    logout = httpx.get(
        str(metadata["end_session_endpoint"]),
        params={
            "id_token_hint": refreshed["id_token"],
            "post_logout_redirect_uri": SIGNED_OUT,
            "state": "bye",
        },
    )
    assert logout.status_code == 303 and logout.headers["location"] == f"{SIGNED_OUT}?state=bye"
    after = client.get(str(metadata["userinfo_endpoint"]))
    assert after.status_code == 401 and 'error="invalid_token"' in after.headers["www-authenticate"]
    with pytest.raises(OAuthError) as refused:
        client.refresh_token(str(metadata["token_endpoint"]))
    assert refused.value.error == "invalid_grant"


def test_a_public_client_uses_pkce_and_no_secret(provider: Provider) -> None:
    metadata = provider.metadata()
    client = _client(
        provider,
        client_id=provider.project.publishable,
        client_secret=None,
        token_endpoint_auth_method="none",
    )
    callback, verifier, nonce = _authorize(provider, client, "grace@example.com")
    token = client.fetch_token(
        str(metadata["token_endpoint"]), authorization_response=callback, code_verifier=verifier
    )
    claims = _id_token_claims(provider, token["id_token"], nonce, provider.project.publishable)
    assert claims["azp"] == provider.project.publishable
    # Revocation (RFC 7009) by the public client ends the session.
    revoked = client.revoke_token(str(metadata["revocation_endpoint"]), token=token["refresh_token"])
    assert revoked.status_code == 200
    assert client.get(str(metadata["userinfo_endpoint"])).status_code == 401


def test_the_specs_refusals(provider: Provider, harness: Harness) -> None:
    metadata = provider.metadata()
    authorize, token_endpoint = str(metadata["authorization_endpoint"]), str(metadata["token_endpoint"])
    project = provider.project
    browser = HostedBrowser(provider.url)

    # An unregistered redirect_uri is shown as a page, never redirected to (RFC 6749 4.1.2.1).
    stranger = _client(provider, redirect_uri="https://evil.example/callback")
    url, _ = stranger.create_authorization_url(authorize, code_verifier=generate_token(48))
    page = browser.open(url)
    assert page.status_code == 400 and "redirect_uri" in page.text and "location" not in page.headers

    # A public client without PKCE: the error goes back to its redirect URI.
    public = _client(
        provider,
        client_id=project.publishable,
        client_secret=None,
        token_endpoint_auth_method="none",
        code_challenge_method=None,
    )
    url, state = public.create_authorization_url(authorize)
    back = browser.open(url)
    assert back.status_code == 303
    answer = query_of(back.headers["location"])
    assert (
        answer["error"] == "invalid_request" and answer["state"] == state and answer["iss"] == provider.issuer
    )

    # A code used twice: the second is refused, and the session the first started is revoked.
    client = _client(provider)
    callback, verifier, _ = _authorize(provider, client, "alan@example.com")
    token = client.fetch_token(token_endpoint, authorization_response=callback, code_verifier=verifier)
    with pytest.raises(OAuthError) as reused:
        _client(provider).fetch_token(token_endpoint, authorization_response=callback, code_verifier=verifier)
    assert reused.value.error == "invalid_grant"
    with pytest.raises(OAuthError):
        client.refresh_token(token_endpoint, refresh_token=token["refresh_token"])

    # A wrong client secret: 401 invalid_client, with a Basic challenge.
    callback, verifier, _ = _authorize(provider, client, "alan@example.com", sign_up=False)
    code = query_of(callback)["code"]
    wrong = httpx.post(
        token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        auth=(project.project_id, project.secret[:-4] + "AAAA"),
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")

    # A wrong verifier, then a wrong redirect_uri: invalid_grant, and the code stays usable.
    for field, value in (("code_verifier", generate_token(48)), ("redirect_uri", SIGNED_OUT)):
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
            field: value,
        }
        refused = httpx.post(token_endpoint, data=form, auth=(project.project_id, project.secret))
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
        assert refused.headers["cache-control"] == "no-store"

    # An expired code: invalid_grant.
    async def expire() -> None:
        async with transaction(harness.runtime.sessionmaker) as db:
            await db.execute(update(RedirectCode).values(expires_at=clock.now()))

    harness.run(expire)
    expired = httpx.post(
        token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        auth=(project.project_id, project.secret),
    )
    assert expired.status_code == 400 and "expired" in expired.json()["error_description"]

    # An unsupported grant, and a form with a parameter twice.
    odd = httpx.post(
        token_endpoint, data={"grant_type": "password"}, auth=(project.project_id, project.secret)
    )
    assert odd.status_code == 400 and odd.json()["error"] == "unsupported_grant_type"
    twice = httpx.post(
        token_endpoint,
        content="grant_type=refresh_token&grant_type=refresh_token",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(project.project_id, project.secret),
    )
    assert twice.status_code == 400 and twice.json()["error"] == "invalid_request"
