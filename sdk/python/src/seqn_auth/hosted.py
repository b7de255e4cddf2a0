"""The hosted sign-in's URLs and PKCE (RFC 7636), for an app that sends its users to SEQN's pages.

verifier, challenge = new_pkce()
state = new_state()
# keep verifier and state (a signed cookie, the server-side session), then redirect to:
url = sign_in_url(auth_url, project_id, "live", redirect_url=..., state=state, code_challenge=challenge)
# the browser comes back to redirect_url?code=…&state=…: compare state, then
# SeqnClient.exchange_code(code, redirect_url, code_verifier=verifier)
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import urlencode


def new_pkce() -> tuple[str, str]:
    """A fresh code verifier (64 URL-safe characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def new_state() -> str:
    return secrets.token_urlsafe(24)


def hosted_url(
    auth_url: str,
    project_id: str,
    environment: str,
    page: str,
    *,
    redirect_url: str | None = None,
    state: str | None = None,
    code_challenge: str | None = None,
) -> str:
    """`{auth_url}/p/{project_id}/{environment}/{page}` with the sign-in parameters given."""
    params: dict[str, str] = {}
    if redirect_url is not None:
        params["redirect_url"] = redirect_url
    if state is not None:
        params["state"] = state
    if code_challenge is not None:
        params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    base = f"{auth_url.rstrip('/')}/p/{project_id}/{environment}/{page}"
    return f"{base}?{urlencode(params)}" if params else base


def sign_in_url(
    auth_url: str,
    project_id: str,
    environment: str,
    *,
    redirect_url: str,
    state: str,
    code_challenge: str,
) -> str:
    return hosted_url(
        auth_url,
        project_id,
        environment,
        "sign-in",
        redirect_url=redirect_url,
        state=state,
        code_challenge=code_challenge,
    )


def sign_up_url(
    auth_url: str,
    project_id: str,
    environment: str,
    *,
    redirect_url: str,
    state: str,
    code_challenge: str,
) -> str:
    return hosted_url(
        auth_url,
        project_id,
        environment,
        "sign-up",
        redirect_url=redirect_url,
        state=state,
        code_challenge=code_challenge,
    )
