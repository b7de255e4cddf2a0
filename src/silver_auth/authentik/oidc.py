"""The console's OIDC client for Authentik (Authlib): authorization code + PKCE S256, state, nonce,
issuer, audience and expiry checks. Tokens, codes and the client secret are never logged (G10, G18).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.integrations.base_client.errors import OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from silver_auth.core import urls
from silver_auth.core.errors import IdentityProviderUnavailable, ProblemError
from silver_auth.settings import Settings

with warnings.catch_warnings():  # Authlib 1.9 nudges towards httpx2; httpx is what this service ships
    warnings.filterwarnings("ignore", "The httpx module is deprecated", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

SCOPES = "openid email profile"
# Asymmetric only: an HS256 ID token would be signed with the client secret (an Authentik provider
# without a signing key), which this client refuses.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_SECONDS = 30


class SignInFailed(ProblemError):
    status, slug, title = 401, "sso-failed", "Single sign-on failed"


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who the client is at which issuer: the console's application, or a project's (hosted pages)."""

    issuer: str
    client_id: str
    client_secret: str | None = field(repr=False)
    redirect_uri: str

    @classmethod
    def console(cls, settings: Settings) -> RelyingParty:
        if not settings.console_oidc_issuer or not settings.console_oidc_client_id:
            raise RuntimeError("SILVER_CONSOLE_OIDC_ISSUER and SILVER_CONSOLE_OIDC_CLIENT_ID are required")
        secret = settings.console_oidc_client_secret
        return cls(
            issuer=settings.console_oidc_issuer,
            client_id=settings.console_oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            redirect_uri=urls.console_oidc_callback(settings.accounts_url),
        )


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None
    jwks_uri: str


class OidcClient:
    """One OIDC relying party: the console application in Authentik by default, or `party`."""

    def __init__(self, settings: Settings, party: RelyingParty | None = None) -> None:
        party = party or RelyingParty.console(settings)
        self.issuer = party.issuer
        self.client_id = party.client_id
        self._client_secret = party.client_secret
        self.redirect_uri = party.redirect_uri
        self._verify = settings.authentik_verify_tls
        self._timeout = settings.authentik_timeout_seconds
        self._metadata: ProviderMetadata | None = None
        self._keys: KeySet | None = None

    def _oauth(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            scope=SCOPES,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            verify=self._verify,
            timeout=self._timeout,
        )

    async def _get_json(self, url: str, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(verify=self._verify, timeout=self._timeout) as http:
                response = await http.get(url, **kwargs)
        except httpx.HTTPError:
            raise IdentityProviderUnavailable(f"the identity provider is unreachable ({what})") from None
        if response.status_code != 200:
            raise IdentityProviderUnavailable(
                f"the identity provider answered {response.status_code} ({what})"
            )
        body: dict[str, Any] = response.json()
        return body

    async def metadata(self) -> ProviderMetadata:
        """Discovery, once per process; the document must name the configured issuer (OIDC Discovery 4.3)."""
        if self._metadata is not None:
            return self._metadata
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url, "discovery")
        if str(document.get("issuer", "")).rstrip("/") != self.issuer.rstrip("/"):
            raise SignInFailed("the identity provider's discovery document names another issuer")
        self._metadata = ProviderMetadata(
            issuer=str(document["issuer"]),
            authorization_endpoint=str(document["authorization_endpoint"]),
            token_endpoint=str(document["token_endpoint"]),
            userinfo_endpoint=document.get("userinfo_endpoint"),
            jwks_uri=str(document["jwks_uri"]),
        )
        return self._metadata

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            meta = await self.metadata()
            self._keys = KeySet.import_key_set(await self._get_json(meta.jwks_uri, "keys"))  # type: ignore[arg-type]
        return self._keys

    async def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        meta = await self.metadata()
        async with self._oauth() as oauth:
            url, _ = oauth.create_authorization_url(
                meta.authorization_endpoint, state=state, nonce=nonce, code_verifier=code_verifier
            )
        return str(url)

    async def exchange(self, code: str, *, code_verifier: str, nonce: str) -> dict[str, Any]:
        """Trade the code for tokens and return the verified ID token's claims, with userinfo's
        `groups` when the ID token carries none."""
        meta = await self.metadata()
        try:
            async with self._oauth() as oauth:
                token = await oauth.fetch_token(
                    meta.token_endpoint,
                    code=code,
                    code_verifier=code_verifier,
                    grant_type="authorization_code",
                )
        except OAuthError as exc:
            raise SignInFailed(f"the identity provider refused the code ({exc.error})") from None
        except httpx.HTTPError:
            raise IdentityProviderUnavailable("the identity provider is unreachable (token)") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed("the identity provider sent no ID token")
        access_token = token.get("access_token")
        claims = await self.verify_id_token(id_token, nonce=nonce, access_token=access_token)
        if "groups" not in claims and meta.userinfo_endpoint and isinstance(access_token, str):
            info = await self._get_json(
                meta.userinfo_endpoint, "userinfo", headers={"authorization": f"Bearer {access_token}"}
            )
            if info.get("sub") != claims["sub"]:  # OIDC Core 5.3.2: userinfo must be about the same user
                raise SignInFailed("userinfo describes another subject")
            claims = {**info, **claims}
        return claims

    async def verify_id_token(self, id_token: str, *, nonce: str, access_token: Any) -> dict[str, Any]:
        meta = await self.metadata()
        try:
            try:
                decoded = jwt.decode(id_token, await self._key_set(), algorithms=list(ALGORITHMS))
            except InvalidKeyIdError:  # the provider rotated its keys: read them again, once
                decoded = jwt.decode(id_token, await self._key_set(refresh=True), algorithms=list(ALGORITHMS))
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                options={
                    "iss": {"essential": True, "value": meta.issuer},
                    "aud": {"essential": True, "value": self.client_id},
                    "sub": {"essential": True},
                    "nonce": {"essential": True},
                },
                params={
                    "nonce": nonce,
                    "client_id": self.client_id,
                    "access_token": access_token if isinstance(access_token, str) else None,
                },
            )
            claims.validate(leeway=LEEWAY_SECONDS)
        except JoseError as exc:
            raise SignInFailed(f"the ID token is not valid ({_reason(exc)})") from None
        return dict(claims)


def _reason(exc: JoseError) -> str:
    """A short, secret-free reason: the error's name and the claim it concerns."""
    return getattr(exc, "description", None) or type(exc).__name__
