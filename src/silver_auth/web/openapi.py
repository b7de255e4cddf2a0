"""The OpenAPI document, made to say what the service really answers (docs/api.md "The OpenAPI document").

Litestar builds the document from the route handlers. `describe(app)` then walks the same handlers once,
in this one place, and for each operation:
- drops Litestar's default 400 `ValidationException` schema: the service never sends that shape;
- declares the errors its shape implies, all `application/problem+json` (RFC 9457, `Problem`): a JSON
  body 400, 413, 415 and 422; query or header parameters 422; a path id 404; the database 503;
- declares what its access rule (`opt["access"]`) answers when it refuses, as the guard that enforces
  the rule registered it here (`documents_access`), and the rule's security requirement;
- keeps what the route declares itself (`responses={409: problem("…")}`), merged with the above;
- says `additionalProperties: false` of request bodies that refuse unknown fields (`Input` structs).
Success answers stay Litestar's, from each handler's status code and return type (a 204 without content).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, Final

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.routes import HTTPRoute

from silver_auth.core.errors import PROBLEM_BASE, PROBLEM_CONTENT_TYPE
from silver_auth.settings import Settings
from silver_auth.web.body import MAX_JSON_DEPTH

# Security schemes, by the names operations refer to them.
SESSION_SCHEME: Final = "consoleSession"
CSRF_SCHEME: Final = "csrfToken"
BEARER_SCHEME: Final = "secretKey"
PUBLISHABLE_SCHEME: Final = "publishableKey"
PUBLISHABLE_QUERY_SCHEME: Final = "publishableKeyQuery"
CLIENT_BASIC_SCHEME: Final = "clientSecretBasic"
ACCESS_TOKEN_SCHEME: Final = "accessToken"  # noqa: S105 (a scheme name)

UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class FieldError(msgspec.Struct, kw_only=True):
    """One refused field or parameter of a 422."""

    key: str
    message: str
    source: str | msgspec.UnsetType = msgspec.UNSET


class Problem(msgspec.Struct, kw_only=True):
    """An error (RFC 9457 problem details). `type` is stable: `https://seqn.in/problems/<slug>`. Some
    problems carry extension members: `errors` (a 422's fields), `error` and `reason` (a refused code
    exchange or refresh, RFC 6749 5.2), `over_quota` (a refused downgrade), `sso` (where to sign in),
    and on `quota-exceeded` `plan`, `plan_name`, `quota`, `limit` and `used` (L7)."""

    type: Annotated[str, msgspec.Meta(examples=[PROBLEM_BASE + "not-found"])]
    title: str
    status: Annotated[int, msgspec.Meta(ge=400, le=599)]
    detail: str
    errors: list[FieldError] | msgspec.UnsetType = msgspec.UNSET
    error: str | msgspec.UnsetType = msgspec.UNSET
    reason: str | msgspec.UnsetType = msgspec.UNSET
    over_quota: list[dict[str, Any]] | msgspec.UnsetType = msgspec.UNSET
    sso: str | msgspec.UnsetType = msgspec.UNSET
    plan: Annotated[str, msgspec.Meta(examples=["free"])] | msgspec.UnsetType = msgspec.UNSET
    """`quota-exceeded`: the org's plan, as in `/v1/config`."""
    plan_name: Annotated[str, msgspec.Meta(examples=["Free"])] | msgspec.UnsetType = msgspec.UNSET
    quota: Annotated[str, msgspec.Meta(examples=["projects"])] | msgspec.UnsetType = msgspec.UNSET
    """`quota-exceeded`: which limit, named as in `/v1/config`."""
    limit: int | msgspec.UnsetType = msgspec.UNSET
    used: int | msgspec.UnsetType = msgspec.UNSET


def problem(description: str) -> ResponseSpec:
    """A route's own error answer, for `responses={status: problem("when")}`."""
    return ResponseSpec(
        data_container=Problem,
        description=description,
        media_type=PROBLEM_CONTENT_TYPE,
        generate_examples=False,
    )


THROTTLED: Final = problem("too many failed attempts (`too-many-attempts`): wait `Retry-After` seconds")
OVER_QUOTA_DESCRIPTION: Final = (
    "the org's plan allows no more (`quota-exceeded`): `plan`, `plan_name`, `quota`, `limit` and `used` "
    "say which limit was reached"
)
OVER_QUOTA: Final = problem(OVER_QUOTA_DESCRIPTION)


Errors = tuple[tuple[int, str], ...]
"""(status, when) pairs; one status may appear more than once, its descriptions are joined."""


@dataclass(frozen=True, slots=True)
class AccessRule:
    """What one `opt["access"]` rule means for the document. `security`: the ways to authenticate, each
    a set of schemes sent together; `errors`: what its guard answers when it refuses. The `unsafe_`
    fields apply to POST, PUT, PATCH and DELETE instead (security) or as well (errors)."""

    security: tuple[tuple[str, ...], ...] = ()
    errors: Errors = ()
    unsafe_security: tuple[tuple[str, ...], ...] | None = None
    unsafe_errors: Errors = ()

    def refusing(self, *errors: tuple[int, str]) -> AccessRule:
        """The same rule, whose guard also answers `errors`."""
        return replace(self, errors=self.errors + errors)


PUBLIC_ACCESS = AccessRule()
ACCESS_RULES: dict[str, AccessRule] = {"public": PUBLIC_ACCESS}


def documents_access(access: str, rule: AccessRule) -> None:
    """Register what the `opt={"access": access}` rule means; called by the guard that enforces it."""
    ACCESS_RULES[access] = rule


SHAPE_ERRORS: Final[Mapping[str, Errors]] = {
    "body": (
        (
            400,
            f"the body is not valid JSON (`bad-request`), or nests deeper than {MAX_JSON_DEPTH} levels "
            "(`too-deeply-nested`)",
        ),
        (413, "the body is larger than the service's limit (`payload-too-large`)"),
        (415, "the body is not sent as `application/json` (`unsupported-media-type`)"),
        (422, "missing, unknown or invalid fields (`invalid-request`), each named in `errors`"),
    ),
    "parameters": ((422, "an invalid query or header parameter (`invalid-request`), named in `errors`"),),
    "path": ((404, "no such resource, or not yours to see (`not-found`)"),),
    "database": (
        (503, "the database cannot be reached (`unavailable`): retry, after `Retry-After` seconds"),
    ),
}

RATE_LIMITED: Final = (
    429,
    "the caller's request limit is spent (`rate-limited`): wait `Retry-After` seconds (G35)",
)
"""Every route passes the app limiter, so every operation may answer it."""
RATE_LIMIT_HEADERS: Final[Mapping[str, str]] = {
    "RateLimit-Policy": 'the limits this request counts against, e.g. `"backend";q=600;w=60` '
    "(draft-ietf-httpapi-ratelimit-headers: quota `q` per `w` seconds)",
    "RateLimit": 'what is left of each, e.g. `"backend";r=599;t=60` (`r` requests left, refilled in `t` '
    "seconds)",
}
"""Sent on every answer of a limited route, success or not (docs/rate-limits.md)."""

ERROR_HEADERS: Final[Mapping[int, tuple[str, str, bool]]] = {
    401: (
        "WWW-Authenticate",
        "how to authenticate (RFC 9110 11.6.1): Bearer, or the console's sign-in",
        True,
    ),
    429: ("Retry-After", "seconds until the next attempt may be made", True),
    503: ("Retry-After", "seconds after which to try again", False),
}
"""Headers of an error answer: (name, description, always sent)."""


def describe(app: Litestar, settings: Settings) -> None:
    """Make the app's OpenAPI document say what the service answers: errors, security, media types."""
    document = app.openapi_schema
    components = document.components
    schema = (components.schemas or {}).get("Problem")
    if schema is None or schema.properties is None:
        raise RuntimeError("no route declares a problem() answer, so the Problem schema is missing")
    schema.description = Problem.__doc__
    kind = schema.properties["type"]
    if isinstance(kind, Schema):
        kind.format = OpenAPIFormat.URI
    components.security_schemes = dict(security_schemes(settings))
    for handler, method, operation in _operations(app, document):
        _describe_operation(handler, method, operation)
        data = handler.parsed_fn_signature.parameters.get("data")
        for struct in _structs(msgspec.inspect.type_info(data.annotation) if data else None):
            body = (components.schemas or {}).get(struct.__name__)
            if body is not None and struct.__struct_config__.forbid_unknown_fields:
                body.additional_properties = False  # an unknown field is a 422, so the schema says so


def security_schemes(settings: Settings) -> Iterator[tuple[str, SecurityScheme]]:
    yield (
        SESSION_SCHEME,
        SecurityScheme(
            type="apiKey",
            name=settings.session_cookie_name,
            security_scheme_in="cookie",
            description="The console session cookie that `POST /console/api/sign-in` sets.",
        ),
    )
    yield (
        CSRF_SCHEME,
        SecurityScheme(
            type="apiKey",
            name="X-CSRF-Token",
            security_scheme_in="header",
            description="The session's `csrf_token` (sign-in, `GET /console/api/me`), on every unsafe "
            "console request.",
        ),
    )
    yield (
        BEARER_SCHEME,
        SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="sk_live_… or sk_test_…",
            description="A project's secret key, for the customer's backend.",
        ),
    )
    yield (
        PUBLISHABLE_SCHEME,
        SecurityScheme(
            type="apiKey",
            name="X-Publishable-Key",
            security_scheme_in="header",
            description="A project's publishable key (`pk_live_…`, `pk_test_…`): public by design.",
        ),
    )
    yield (
        CLIENT_BASIC_SCHEME,
        SecurityScheme(
            type="http",
            scheme="basic",
            description="An OpenID Provider client (RFC 6749 2.3.1): the project id as `client_id` and the "
            "environment's secret key as `client_secret`; both may be sent in the form instead.",
        ),
    )
    yield (
        ACCESS_TOKEN_SCHEME,
        SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT (RFC 9068 access token)",
            description="An access token of the project environment's OpenID Provider.",
        ),
    )
    yield (
        PUBLISHABLE_QUERY_SCHEME,
        SecurityScheme(
            type="apiKey",
            name="publishable_key",
            security_scheme_in="query",
            description="The publishable key in the query, where a header cannot be sent.",
        ),
    )


def _operations(app: Litestar, document: OpenAPI) -> Iterator[tuple[HTTPRouteHandler, str, Operation]]:
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or document.paths is None:
            continue
        path_item = document.paths.get(route.path_format or "/")
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods):
                operation = getattr(path_item, method.lower(), None) if path_item else None
                if isinstance(operation, Operation):
                    yield handler, method, operation


def _describe_operation(handler: HTTPRouteHandler, method: str, operation: Operation) -> None:
    access = handler.opt.get("access") or "public"
    rule = ACCESS_RULES.get(access)
    if rule is None:
        raise RuntimeError(f"{method} {handler}: the access rule {access!r} is not documented")
    unsafe = method in UNSAFE_METHODS
    errors: list[tuple[int, str]] = [*rule.errors, *(rule.unsafe_errors if unsafe else ())]
    parameters = [p for p in operation.parameters or [] if not isinstance(p, Reference)]
    if operation.request_body is not None:
        errors += SHAPE_ERRORS["body"]
    if any(p.param_in in ("query", "header") for p in parameters):
        errors += SHAPE_ERRORS["parameters"]
    if any(p.param_in == "path" for p in parameters):
        errors += SHAPE_ERRORS["path"]
    if rule.security or "db" in handler.parsed_fn_signature.parameters:
        errors += SHAPE_ERRORS["database"]
    errors.append(RATE_LIMITED)
    own = {str(status) for status in handler.responses or {}}
    responses = operation.responses or {}
    for status in [s for s in responses if s[0] in "45" and s not in own]:
        del responses[status]  # Litestar's own ValidationException schema: never sent
    for status, description in _joined(errors):
        responses[status] = _merged(responses.get(status), description)
    for status, response in responses.items():
        if isinstance(response, OpenAPIResponse) and status == "204":
            response.content = None  # a handler typed Response[None]: Litestar would say `null`
        if isinstance(response, OpenAPIResponse) and status[0] in "45":
            response.description = response.description[0].upper() + response.description[1:]
        if isinstance(response, OpenAPIResponse) and int(status) in ERROR_HEADERS:
            name, description, required = ERROR_HEADERS[int(status)]
            response.headers = {
                **(response.headers or {}),
                name: OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING), description=description, required=required
                ),
            }
        if isinstance(response, OpenAPIResponse):
            response.headers = {
                **(response.headers or {}),
                **{
                    name: OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), description=description)
                    for name, description in RATE_LIMIT_HEADERS.items()
                },
            }
    operation.responses = dict(sorted(responses.items()))
    security = rule.unsafe_security if unsafe and rule.unsafe_security is not None else rule.security
    operation.security = [_requirement(schemes) for schemes in security] or None


def _structs(info: msgspec.inspect.Type | None) -> Iterator[type[msgspec.Struct]]:
    """The Struct types a body type is made of, nested ones included."""
    if isinstance(info, msgspec.inspect.StructType):
        yield info.cls
        for field in info.fields:
            yield from _structs(field.type)
    elif isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            yield from _structs(member)
    elif isinstance(info, msgspec.inspect.ListType | msgspec.inspect.SetType | msgspec.inspect.FrozenSetType):
        yield from _structs(info.item_type)
    elif isinstance(info, msgspec.inspect.DictType):
        yield from _structs(info.value_type)


def _joined(errors: list[tuple[int, str]]) -> Iterator[tuple[str, str]]:
    by_status: dict[int, list[str]] = {}
    for status, description in errors:
        if description not in by_status.setdefault(status, []):
            by_status[status].append(description)
    for status, descriptions in by_status.items():
        yield str(status), "; or ".join(descriptions)


def _merged(declared: OpenAPIResponse | Reference | None, description: str) -> OpenAPIResponse:
    """An error answer with `description`, after what the route itself declared for that status."""
    if isinstance(declared, OpenAPIResponse):
        return replace(declared, description=f"{declared.description}; or {description}")
    content = {PROBLEM_CONTENT_TYPE: OpenAPIMediaType(schema=Reference("#/components/schemas/Problem"))}
    return OpenAPIResponse(description=description, content=content)


def _requirement(schemes: tuple[str, ...]) -> SecurityRequirement:
    return {scheme: [] for scheme in schemes}
