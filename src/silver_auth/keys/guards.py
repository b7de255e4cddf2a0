"""The backend-key check (`Authorization: Bearer sk_…`)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.types import Scope

from silver_auth.core.errors import Unauthorized
from silver_auth.keys.service import KeyKind
from silver_auth.keys.verifier import KeyPrincipal
from silver_auth.runtime import runtime_of
from silver_auth.web.deps import bearer_token, set_actor
from silver_auth.web.openapi import BEARER_SCHEME, AccessRule, documents_access

SECRET_KEY_ACCESS = {"access": "secret-key"}
"""The opt of every route that calls require_secret_key (for the document: web.openapi)."""
documents_access(
    SECRET_KEY_ACCESS["access"],
    AccessRule(
        security=((BEARER_SCHEME,),),
        errors=((401, "a missing, malformed, unknown, revoked or expired secret key (`unauthorized`)"),),
    ),
)


VERIFIED_KEY = "silver_auth.verified_key"
"""Key of the scope state where the limiter leaves the key it verified, for the route to use again."""


def remember(scope: Scope, principal: KeyPrincipal) -> None:
    scope.setdefault("state", {})[VERIFIED_KEY] = principal
    set_actor(scope, principal.key_id)  # the access log names the key, refused with a 429 or not


def remembered(scope: Scope, kind: KeyKind) -> KeyPrincipal | None:
    """The key this request presented, if the limiter already verified it (one check per request)."""
    state = scope.get("state")
    principal: KeyPrincipal | None = state.get(VERIFIED_KEY) if state else None
    return principal if principal is not None and principal.kind == kind else None


async def require_secret_key(request: ASGIConnection[Any, Any, Any, Any]) -> KeyPrincipal:
    """The backend-key check: `Authorization: Bearer sk_…`, else 401 (missing, malformed, unknown, revoked,
    expired). A backend route calls it first thing; it is not a guard or a dependency because on this hot
    path Litestar's per-guard handler copy and its DI machinery cost more than the check itself.
    """
    principal = remembered(request.scope, "secret")  # the limiter checked it, and named the actor
    if principal is not None:
        return principal
    raw = bearer_token(request.scope)
    principal = None if raw is None else await runtime_of(request).keys.verify(raw, "secret")
    if principal is None:
        # WWW-Authenticate (Bearer, RFC 6750) is added to every /v1 401 by web.http.challenge.
        raise Unauthorized("a valid secret key is required: Authorization: Bearer sk_…")
    set_actor(request.scope, principal.key_id)
    return principal
