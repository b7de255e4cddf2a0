"""What the provider's JSON endpoints take and answer, for the OpenAPI document."""

from __future__ import annotations

from typing import Annotated

import msgspec

Token = Annotated[str, msgspec.Meta(max_length=512)]
"""A code, refresh or access token, or a secret key: ours are far shorter."""
ClientId = Annotated[str, msgspec.Meta(max_length=120)]
Uri = Annotated[str, msgspec.Meta(max_length=2048)]


class TokenRequest(msgspec.Struct, kw_only=True):
    """RFC 6749 4.1.3 and 6, form-encoded. The client authenticates with HTTP Basic (`client_id` and
    the secret key as `client_secret`), or with both in the form, or sends only `client_id` (a public,
    publishable-key client, whose code needs `code_verifier`)."""

    grant_type: Annotated[str, msgspec.Meta(examples=["authorization_code"], max_length=64)]
    code: Token | None = None
    redirect_uri: Uri | None = None
    code_verifier: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    """RFC 7636 4.1: 43 to 128 characters."""
    refresh_token: Token | None = None
    scope: Annotated[str, msgspec.Meta(max_length=512)] | None = None
    client_id: ClientId | None = None
    client_secret: Token | None = None


class TokenAnswer(msgspec.Struct, kw_only=True):
    """RFC 6749 5.1 with OpenID Connect Core 3.1.3.3: `access_token` is a JWT (RFC 9068, `typ:
    at+jwt`); `refresh_token` is spent by its first use."""

    access_token: str
    token_type: Annotated[str, msgspec.Meta(examples=["Bearer"])]
    expires_in: int
    refresh_token: str
    scope: str
    id_token: str | msgspec.UnsetType = msgspec.UNSET


class TokenOperation(msgspec.Struct, kw_only=True):
    """RFC 7662 2.1 and RFC 7009 2.1, form-encoded, with the client's authentication as at the token
    endpoint."""

    token: Annotated[str, msgspec.Meta(max_length=2048)]
    """An access token (a JWT) or a refresh token."""
    token_type_hint: Annotated[str, msgspec.Meta(examples=["refresh_token"], max_length=64)] | None = None
    client_id: ClientId | None = None
    client_secret: Token | None = None


class Introspection(msgspec.Struct, kw_only=True):
    """RFC 7662 2.2: only `active` for a token that is not (any more) valid."""

    active: bool
    token_type: str | msgspec.UnsetType = msgspec.UNSET
    scope: str | msgspec.UnsetType = msgspec.UNSET
    client_id: str | msgspec.UnsetType | None = msgspec.UNSET
    sub: str | msgspec.UnsetType = msgspec.UNSET
    sid: str | msgspec.UnsetType = msgspec.UNSET
    env: str | msgspec.UnsetType = msgspec.UNSET
    iss: str | msgspec.UnsetType = msgspec.UNSET
    aud: str | msgspec.UnsetType = msgspec.UNSET
    exp: int | msgspec.UnsetType = msgspec.UNSET
    iat: int | msgspec.UnsetType = msgspec.UNSET
    nbf: int | msgspec.UnsetType = msgspec.UNSET
    jti: str | msgspec.UnsetType = msgspec.UNSET
    auth_time: int | msgspec.UnsetType = msgspec.UNSET


class UserInfo(msgspec.Struct, kw_only=True):
    """OpenID Connect Core 5.3.2: the claims the access token's scopes release."""

    sub: str
    email: str | msgspec.UnsetType = msgspec.UNSET
    email_verified: bool | msgspec.UnsetType = msgspec.UNSET
    updated_at: int | msgspec.UnsetType = msgspec.UNSET


class OAuthErrorAnswer(msgspec.Struct, kw_only=True):
    """RFC 6749 5.2 (`application/json`, as OAuth clients expect), with the members of a problem
    (RFC 9457) beside `error` and `error_description`."""

    error: Annotated[str, msgspec.Meta(examples=["invalid_grant"])]
    error_description: str
    type: str
    title: str
    status: int
    detail: str


class Discovery(msgspec.Struct, kw_only=True):
    """OpenID Connect Discovery 1.0 3 (and RFC 8414) metadata of one project environment's issuer."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    end_session_endpoint: str
    introspection_endpoint: str
    revocation_endpoint: str
    scopes_supported: list[str]
    response_types_supported: list[str]
    response_modes_supported: list[str]
    grant_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    introspection_endpoint_auth_methods_supported: list[str]
    revocation_endpoint_auth_methods_supported: list[str]
    code_challenge_methods_supported: list[str]
    prompt_values_supported: list[str]
    claims_supported: list[str]
    authorization_response_iss_parameter_supported: bool
    request_parameter_supported: bool
    request_uri_parameter_supported: bool
    claims_parameter_supported: bool
