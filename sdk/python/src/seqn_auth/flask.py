"""Flask: a `@require_session` decorator that puts the verified session in `flask.g.seqn_session`.

    from flask import Flask, g
    from seqn_auth import TokenVerifier
    from seqn_auth.flask import require_session

    verifier = TokenVerifier(os.environ["SEQN_AUTH_URL"], os.environ["SEQN_PROJECT_ID"], "live")
    app = Flask(__name__)

    @app.get("/me")
    @require_session(verifier)
    def me():
        return {"user_id": g.seqn_session.user_id}

The token is read from `Authorization: Bearer`, else the cookie (`cookie=`). No or a refused token
answers 401 JSON with a `WWW-Authenticate` challenge; a JWKS that cannot be fetched, 503.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import g, jsonify, request

from seqn_auth._request import DEFAULT_COOKIE, bearer, challenge
from seqn_auth.errors import JWKSUnavailableError, TokenVerificationError
from seqn_auth.verify import SessionClaims, TokenVerifier

View = TypeVar("View", bound=Callable[..., Any])


def require_session(
    verifier: TokenVerifier, *, cookie: str | None = DEFAULT_COOKIE
) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = bearer(request.headers.get("authorization"))
            if token is None and cookie is not None:
                token = request.cookies.get(cookie) or None
            try:
                if token is None:
                    raise TokenVerificationError("missing-token")
                g.seqn_session = verifier.verify_session(token)
            except TokenVerificationError as error:
                response = jsonify(error="unauthorized", reason=error.reason)
                response.status_code = 401
                response.headers["WWW-Authenticate"] = challenge(error.reason)
                return response
            except JWKSUnavailableError:
                response = jsonify(error="unavailable")
                response.status_code = 503
                return response
            return view(*args, **kwargs)

        return cast(View, wrapper)

    return decorate


def current_session() -> SessionClaims | None:
    """The session `require_session` verified for this request, if any."""
    found = g.get("seqn_session")
    return found if isinstance(found, SessionClaims) else None
