"""The provider's endpoints below each issuer, `/p/{project_id}/{environment}`: discovery and the JWKS
(public, cacheable, readable from any origin); authorize and end-session (browser pages); token,
userinfo, introspection and revocation (OAuth JSON, errors as RFC 6749 5.2 says)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import unquote_plus

import msgspec
from litestar import Controller, Response, get, post, route
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, FromPath
from litestar.response import Redirect
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core import urls
from silver_auth.core.errors import NotFound, ProblemError
from silver_auth.core.ids import looks_like
from silver_auth.endusers import sessions
from silver_auth.endusers.service import ENVIRONMENTS, ProjectEnvironment
from silver_auth.hosted.context import PAGE_HANDLERS, PageError, Req
from silver_auth.hosted.tokens import PAGE_OPT, PagePath, render
from silver_auth.oidc_provider import service
from silver_auth.oidc_provider.requests import (
    SUPPORTED_SCOPES,
    AuthorizeError,
    AuthorizeRefused,
    checked_request,
    prompt_values,
    seal_request,
)
from silver_auth.oidc_provider.schemas import (
    Discovery,
    Introspection,
    OAuthErrorAnswer,
    TokenAnswer,
    TokenOperation,
    TokenRequest,
    UserInfo,
)
from silver_auth.oidc_provider.service import ClientCredentials, OAuthError
from silver_auth.oidc_provider.tokens import id_token_hint, issuer
from silver_auth.projects.models import Project
from silver_auth.runtime import Runtime
from silver_auth.settings import Settings
from silver_auth.signing import service as signing
from silver_auth.signing.routes import JWK_SET_MEDIA_TYPE, JWKS_CACHE_CONTROL, JWKS_RESPONSES
from silver_auth.web.cors import allow_origins
from silver_auth.web.deps import bearer_token, request_ip
from silver_auth.web.openapi import ACCESS_TOKEN_SCHEME, CLIENT_BASIC_SCHEME, AccessRule, documents_access

ISSUER_PATH = "/p/{project_id:str}/{environment:str}"
OAUTH = "/oauth2"
PUBLIC_DOCUMENT = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FormBody = Body(media_type=RequestEncodingType.URL_ENCODED)

OIDC_CLIENT_ACCESS = "oidc-client"
"""A public client sends only its `client_id`; a confidential one authenticates with the secret key."""
documents_access(OIDC_CLIENT_ACCESS, AccessRule(security=((), (CLIENT_BASIC_SCHEME,))))
OIDC_CONFIDENTIAL_ACCESS = "oidc-confidential-client"
documents_access(OIDC_CONFIDENTIAL_ACCESS, AccessRule(security=((CLIENT_BASIC_SCHEME,),)))
OIDC_BEARER_ACCESS = "oidc-access-token"
documents_access(OIDC_BEARER_ACCESS, AccessRule(security=((ACCESS_TOKEN_SCHEME,),)))


def oauth_error(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=OAuthErrorAnswer,
        description=description,
        media_type="application/json",
        generate_examples=False,
    )


TITLES = {
    400: "The OAuth request is not valid",
    401: "Client or token authentication failed",
    403: "Not allowed",
}


def _oauth_answer(_: Req, exc: Exception) -> Response[Any]:
    if isinstance(exc, OAuthError):
        error, description, status, headers = exc.error, exc.description, exc.status, exc.headers
    else:  # a form Litestar could not read into the declared fields: a parameter twice, or too long
        error, description, status, headers = (
            "invalid_request",
            "a parameter is missing, repeated or too long",
            400,
            {},
        )
    body = {
        "error": error,
        "error_description": description,
        "type": f"https://seqn.in/problems/oauth-{error.replace('_', '-')}",
        "title": TITLES.get(status, "The OAuth request failed"),
        "status": status,
        "detail": description,
    }
    return Response(body, status_code=status, media_type="application/json", headers={**NO_STORE, **headers})


async def _issuer_of(
    db: AsyncSession, project_id: str, environment: str
) -> tuple[Project, ProjectEnvironment]:
    project = await db.get(Project, project_id) if looks_like("prj", project_id) else None
    if project is None or environment not in ENVIRONMENTS:
        raise NotFound("no such issuer: the project or environment does not exist")
    return project, ProjectEnvironment(project.id, environment)


def _credentials(request: Req, client_id: str | None, client_secret: str | None) -> ClientCredentials:
    """The client's authentication: HTTP Basic (RFC 6749 2.3.1, both parts form-encoded), or the form."""
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return ClientCredentials(client_id, client_secret)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(
            "invalid_client",
            "the Basic credentials are not base64",
            401,
            {"WWW-Authenticate": 'Basic realm="seqn"'},
        ) from None
    name, colon, secret = decoded.partition(":")
    if not colon:
        raise OAuthError(
            "invalid_client",
            "the Basic credentials need client_id:client_secret",
            401,
            {"WWW-Authenticate": 'Basic realm="seqn"'},
        )
    if client_secret is not None or (client_id is not None and client_id != unquote_plus(name)):
        # RFC 6749 2.3: a client uses one authentication method per request.
        raise OAuthError("invalid_request", "authenticate the client one way only: Basic or the form")
    return ClientCredentials(unquote_plus(name), unquote_plus(secret), basic=True)


async def _client_request(
    request: Req,
    db: AsyncSession,
    runtime: Runtime,
    issuer_path: tuple[str, str],
    data: TokenRequest | TokenOperation,
) -> tuple[Project, ProjectEnvironment, service.Client]:
    """The issuer of the path and the request's authenticated client; a public client's page may read
    the answer from the project's allowed origins."""
    project, where = await _issuer_of(db, *issuer_path)
    credentials = _credentials(request, data.client_id, data.client_secret)
    client = await service.authenticate_client(runtime.keys, where, credentials)
    if client.public:
        allow_origins(request.scope, client.allowed_origins)
    return project, where, client


def _form(data: msgspec.Struct) -> dict[str, str]:
    return {name: value for name, value in msgspec.structs.asdict(data).items() if isinstance(value, str)}


class OpenIdProvider(Controller):
    path = ISSUER_PATH
    tags = ["OpenID Provider"]
    exception_handlers = {OAuthError: _oauth_answer, ValidationException: _oauth_answer}

    @get(
        "/.well-known/openid-configuration",
        summary="OpenID Provider metadata of the project environment's issuer",
        description="OpenID Connect Discovery 1.0; the issuer is this path without the well-known suffix.",
    )
    async def discovery(
        self,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[Discovery]:
        project, _ = await _issuer_of(db, project_id, environment)
        base = issuer(settings, project.id, environment)
        algorithms = sorted(
            {
                settings.signing_algorithm,
                *(key.algorithm for key in await signing.published_keys(db, project.id)),
            }
        )
        document = Discovery(
            issuer=base,
            authorization_endpoint=f"{base}{OAUTH}/authorize",
            token_endpoint=f"{base}{OAUTH}/token",
            userinfo_endpoint=f"{base}{OAUTH}/userinfo",
            jwks_uri=f"{base}{OAUTH}/jwks",
            end_session_endpoint=f"{base}{OAUTH}/end-session",
            introspection_endpoint=f"{base}{OAUTH}/introspect",
            revocation_endpoint=f"{base}{OAUTH}/revoke",
            scopes_supported=list(SUPPORTED_SCOPES),
            response_types_supported=["code"],
            response_modes_supported=["query"],
            grant_types_supported=["authorization_code", "refresh_token"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=algorithms,
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post", "none"],
            introspection_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
            revocation_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post", "none"],
            code_challenge_methods_supported=["S256"],
            prompt_values_supported=["none", "login"],
            claims_supported=[
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "amr",
                "azp",
                "sid",
                "env",
                "email",
                "email_verified",
                "updated_at",
            ],
            authorization_response_iss_parameter_supported=True,
            request_parameter_supported=False,
            request_uri_parameter_supported=False,
            claims_parameter_supported=False,
        )
        return Response(document, headers=PUBLIC_DOCUMENT)

    @get(
        f"{OAUTH}/jwks",
        summary="Public keys of the issuer's ID and access tokens",
        media_type=JWK_SET_MEDIA_TYPE,
        responses=JWKS_RESPONSES,
    )
    async def jwks(
        self,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[dict[str, Any]]:
        project, _ = await _issuer_of(db, project_id, environment)
        body = await signing.published_jwks(db, settings, project)
        headers = {"Cache-Control": JWKS_CACHE_CONTROL, "Access-Control-Allow-Origin": "*"}
        return Response(body, media_type=JWK_SET_MEDIA_TYPE, headers=headers)

    @post(
        f"{OAUTH}/token",
        status_code=200,
        summary="Redeem an authorization code or a refresh token (OAuth 2.1)",
        description="Form-encoded. `authorization_code` needs `code`, `redirect_uri` and, for a public "
        "client or a code started with a challenge, `code_verifier`. `refresh_token` spends the token and "
        "answers the next; a spent one presented again revokes the session.",
        opt={"rate_limit": "code-exchange", "access": OIDC_CLIENT_ACCESS},
        responses={
            400: oauth_error(
                "`invalid_request`, `invalid_grant`, `unsupported_grant_type` or `invalid_scope` "
                "(RFC 6749 5.2)"
            ),
            401: oauth_error("`invalid_client`: unknown client, or a wrong or missing secret key"),
        },
    )
    async def token(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        data: Annotated[TokenRequest, FormBody],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[TokenAnswer]:
        project, where, client = await _client_request(request, db, runtime, (project_id, environment), data)
        grant = {"authorization_code": service.code_grant, "refresh_token": service.refresh_grant}.get(
            data.grant_type
        )
        if grant is None:
            raise OAuthError("unsupported_grant_type", "grant_type is authorization_code or refresh_token")
        context = service.TokenRequestContext(
            db, runtime.sessionmaker, runtime.settings, project, where, client, request_ip(request)
        )
        answer = await grant(context, _form(data))
        return Response(msgspec.convert(answer.body(), TokenAnswer), headers=NO_STORE)

    @route(
        f"{OAUTH}/userinfo",
        http_method=["GET", "POST"],
        status_code=200,
        summary="The signed-in user's claims, for an access token",
        opt={"access": OIDC_BEARER_ACCESS},
        responses={
            401: oauth_error("`invalid_token`: missing, malformed, expired, or its session has ended"),
            403: oauth_error("`insufficient_scope`: the token was not granted `openid`"),
        },
    )
    async def userinfo(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[UserInfo]:
        _, where = await _issuer_of(db, project_id, environment)
        claims = await service.userinfo(db, settings, where, bearer_token(request.scope))
        return Response(msgspec.convert(claims, UserInfo), headers=NO_STORE)

    @post(
        f"{OAUTH}/introspect",
        status_code=200,
        summary="Whether a token is active, and what it grants (RFC 7662), for the secret key",
        opt={"access": OIDC_CONFIDENTIAL_ACCESS},
        responses={
            400: oauth_error("`invalid_request`: no `token`"),
            401: oauth_error("`invalid_client`: introspection needs the project's secret key"),
        },
    )
    async def introspect(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        data: Annotated[TokenOperation, FormBody],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Introspection]:
        _, where, client = await _client_request(request, db, runtime, (project_id, environment), data)
        if client.public:
            raise OAuthError("invalid_client", "introspection needs the project's secret key", 401)
        answer = await service.introspect(db, runtime.settings, where, data.token, data.token_type_hint)
        return Response(msgspec.convert(answer, Introspection), headers=NO_STORE)

    @post(
        f"{OAUTH}/revoke",
        status_code=200,
        summary="End the session of a refresh or access token (RFC 7009)",
        description="Answers 200 for any token, valid or not (RFC 7009 2.2).",
        opt={"access": OIDC_CLIENT_ACCESS},
        responses={
            400: oauth_error("`invalid_request`: no `token`"),
            401: oauth_error("`invalid_client`: unknown client, or a wrong secret key"),
        },
    )
    async def revoke(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        data: Annotated[TokenOperation, FormBody],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[None]:
        _, where, client = await _client_request(request, db, runtime, (project_id, environment), data)
        await service.revoke(db, runtime.settings, where, client, data.token, data.token_type_hint)
        return Response(None, status_code=200, headers=NO_STORE)


async def _parameters(request: Req) -> dict[str, str]:
    """The request's parameters: the query, or the form of a POST (OpenID Connect Core 3.1.2.1).
    A parameter given twice is refused (RFC 6749 3.1)."""
    if request.method == "POST":
        try:
            form = await request.form()
        except Exception:  # a malformed body is the caller's mistake, never a 500
            raise PageError(400, "The request could not be read.") from None
        items = list(form.multi_items())
    else:
        items = list(request.query_params.multi_items())
    params: dict[str, str] = {}
    for name, value in items:
        if name in params or not isinstance(value, str) or len(value) > 4096 or "\x00" in value:
            raise PageError(400, f"The parameter {name} is repeated or not valid.")
        params[name] = value
    return params


class OpenIdProviderPages(Controller):
    """The browser's side: authorize (signs the user in with the hosted pages) and end-session."""

    path = ISSUER_PATH
    tags = ["OpenID Provider"]
    include_in_schema = False
    exception_handlers = PAGE_HANDLERS

    @route(f"{OAUTH}/authorize", http_method=["GET", "POST"], opt=PAGE_OPT)
    async def authorize(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        settings = runtime.settings
        project, where = await _page_issuer(db, project_id, environment)
        params = await _parameters(request)
        try:
            client = await _client_of(runtime, where, params)
            redirect_uri = params.get("redirect_uri", "")
            if not redirect_uri or redirect_uri not in project.redirect_urls:
                raise AuthorizeRefused(
                    "The redirect_uri is missing or not registered for this project. Registered URLs match "
                    "exactly, character for character."
                )
        except AuthorizeRefused as refused:
            raise PageError(400, str(refused), context={"title": "This sign-in link is not valid"}) from None
        state = params.get("state", "")
        iss = issuer(settings, project.id, environment)
        try:
            authorization = checked_request(
                params, client_id=client.client_id, redirect_uri=redirect_uri, public=client.public
            )
            current = await sessions.session_from_cookie(
                db, settings, where, request.cookies.get(settings.end_user_cookie_name)
            )
            if current is not None and service.fresh_enough(current[0], authorization):
                target = await service.code_redirect(db, settings, current[0], authorization)
                return Redirect(target, status_code=303, headers={"Cache-Control": "no-store"})
            if "none" in prompt_values(params.get("prompt", "")):
                raise AuthorizeError("login_required", "the user is not signed in (prompt=none)")
        except AuthorizeError as error:
            target = urls.with_query(
                redirect_uri, error=error.error, error_description=error.description, state=state, iss=iss
            )
            return Redirect(target, status_code=303, headers={"Cache-Control": "no-store"})
        sealed = seal_request(settings, project.id, environment, authorization)
        page = "sign-up" if "create" in prompt_values(params.get("prompt", "")) else "sign-in"
        sign_in = PagePath(settings.auth_url, project.id, environment).url(page, authorization=sealed)
        return Redirect(sign_in, status_code=303, headers={"Cache-Control": "no-store"})

    @route(f"{OAUTH}/end-session", http_method=["GET", "POST"], opt=PAGE_OPT)
    async def end_session(
        self,
        request: Req,
        project_id: FromPath[str],
        environment: FromPath[str],
        db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Any]:
        """RP-initiated logout 1.0: with a valid `id_token_hint` the session ends at once; without one
        the hosted sign-out page asks the user first (a link alone must not sign anyone out)."""
        settings = runtime.settings
        project, where = await _page_issuer(db, project_id, environment)
        params = await _parameters(request)
        back, state = params.get("post_logout_redirect_uri", ""), params.get("state", "")
        if back and back not in project.redirect_urls:
            raise PageError(400, "The post_logout_redirect_uri is not registered for this project.")
        pages = PagePath(settings.auth_url, project.id, environment)
        hint_token = params.get("id_token_hint")
        if not hint_token:
            return Redirect(pages.url("sign-out", redirect_url=back, state=state), status_code=303)
        hint = await id_token_hint(db, settings, project.id, environment, hint_token)
        client_id = params.get("client_id")
        if hint is None or (client_id and hint.get("aud") != client_id):
            raise PageError(400, "The id_token_hint is not an ID token of this issuer (for this client_id).")
        cookie = request.cookies.get(settings.end_user_cookie_name)
        current = await sessions.session_from_cookie(db, settings, where, cookie)
        await service.end_session(db, settings, where, hint, current[0] if current else None)
        response: Response[Any] = (
            Redirect(urls.with_query(back, state=state), status_code=303)
            if back
            else render(
                "message.html",
                200,
                title="Signed out",
                project_name=project.name,
                error=None,
                info="You are signed out.",
            )
        )
        response.delete_cookie(settings.end_user_cookie_name, path=pages.path)
        return response


async def _page_issuer(
    db: AsyncSession, project_id: str, environment: str
) -> tuple[Project, ProjectEnvironment]:
    try:
        return await _issuer_of(db, project_id, environment)
    except ProblemError:
        raise PageError(404, "There is no such sign-in page.") from None


async def _client_of(runtime: Runtime, where: ProjectEnvironment, params: dict[str, str]) -> service.Client:
    client_id = params.get("client_id", "")
    client = await service.known_client(runtime.keys, where, client_id) if client_id else None
    if client is None:
        raise AuthorizeRefused("The client_id is missing, or is not a client of this project environment.")
    return client
