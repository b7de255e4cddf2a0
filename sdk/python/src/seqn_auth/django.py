"""Django: a middleware that sets `request.seqn_user` to the verified session (or None).

    # settings.py
    SEQN_AUTH = {
        "AUTH_URL": "https://auth.example.com",
        "PROJECT_ID": "prj_…",
        "ENVIRONMENT": "live",
        # optional: "COOKIE": "seqn_session", "LEEWAY": 30
    }
    MIDDLEWARE = [..., "seqn_auth.django.SeqnAuthMiddleware"]

    # views.py
    from seqn_auth.django import seqn_login_required

    @seqn_login_required
    def me(request):
        return JsonResponse({"user_id": request.seqn_user.user_id})

The token is read from `Authorization: Bearer`, else the cookie. `request.seqn_user` is a
`SessionClaims` or None, and `request.seqn_auth_error` the refusal's reason (`expired`,
`missing-token`…). `seqn_login_required` answers 401 JSON (with a `WWW-Authenticate` challenge)
when there is no verified session.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse

from seqn_auth._request import DEFAULT_COOKIE, bearer, challenge
from seqn_auth.errors import JWKSUnavailableError, TokenVerificationError
from seqn_auth.verify import DEFAULT_LEEWAY, TokenVerifier

View = TypeVar("View", bound=Callable[..., HttpResponse])


def verifier_from_settings() -> TokenVerifier:
    config: dict[str, Any] = getattr(settings, "SEQN_AUTH", None) or {}
    missing = [name for name in ("AUTH_URL", "PROJECT_ID", "ENVIRONMENT") if not config.get(name)]
    if missing:
        raise ImproperlyConfigured(f"settings.SEQN_AUTH needs {', '.join(missing)}")
    return TokenVerifier(
        config["AUTH_URL"],
        config["PROJECT_ID"],
        config["ENVIRONMENT"],
        leeway=float(config.get("LEEWAY", DEFAULT_LEEWAY)),
    )


class SeqnAuthMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.verifier = verifier_from_settings()
        self.cookie: str = (getattr(settings, "SEQN_AUTH", None) or {}).get("COOKIE", DEFAULT_COOKIE)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = bearer(request.headers.get("authorization")) or request.COOKIES.get(self.cookie) or None
        user, reason = None, None
        if token is None:
            reason = "missing-token"
        else:
            try:
                user = self.verifier.verify_session(token)
            except TokenVerificationError as error:
                reason = error.reason
            except JWKSUnavailableError:
                reason = "jwks-unavailable"
        setattr(request, "seqn_user", user)  # noqa: B010 - Django has no typed slot for it
        setattr(request, "seqn_auth_error", reason)  # noqa: B010
        return self.get_response(request)


def seqn_login_required(view: View) -> View:
    """401 JSON unless SeqnAuthMiddleware verified a session for this request (503 if the keys could
    not be fetched)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if getattr(request, "seqn_user", None) is not None:
            return view(request, *args, **kwargs)
        reason = getattr(request, "seqn_auth_error", None) or "missing-token"
        if reason == "jwks-unavailable":
            return JsonResponse({"error": "unavailable"}, status=503)
        response = JsonResponse({"error": "unauthorized", "reason": reason}, status=401)
        response["WWW-Authenticate"] = challenge(reason)
        return response

    return cast(View, wrapper)
