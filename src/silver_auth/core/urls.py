"""The one URL map: paths that other code builds links to (hosted pages, OIDC callbacks, JWKS, console)."""

from __future__ import annotations

from urllib.parse import urlencode

CONSOLE_API = "/console/api"
CONSOLE_OIDC = f"{CONSOLE_API}/oidc"
"""The console's Authentik sign-in: `/start` and `/callback` (also the state cookie's path)."""


def _base(url: str) -> str:
    return url.rstrip("/")


def hosted_pages_path(project_id: str, environment: str) -> str:
    """Where a project environment's hosted pages live: `/p/{project_id}/{environment}`."""
    return f"/p/{project_id}/{environment}"


def hosted_pages(auth_url: str, project_id: str, environment: str) -> str:
    return _base(auth_url) + hosted_pages_path(project_id, environment)


HOSTED_ASSETS = "/p/assets"
"""The hosted pages' stylesheet, and each project's logo and colours (`/logos/…`, `/branding/…`)."""


def hosted_logo_path(file_name: str) -> str:
    return f"{HOSTED_ASSETS}/logos/{file_name}"


def hosted_oidc_callback_path(project_id: str) -> str:
    """Where Authentik sends an end-user back after the project's hosted sign-in."""
    return f"/p/{project_id}/oidc/callback"


def hosted_oidc_callback(auth_url: str, project_id: str) -> str:
    return _base(auth_url) + hosted_oidc_callback_path(project_id)


def jwks(auth_url: str, project_id: str) -> str:
    return f"{_base(auth_url)}/v1/projects/{project_id}/jwks.json"


def session_jwt_issuer(auth_url: str, project_id: str) -> str:
    """The `iss` of a project's session JWTs."""
    return f"{_base(auth_url)}/p/{project_id}"


def console_oidc_callback(accounts_url: str) -> str:
    return f"{_base(accounts_url)}{CONSOLE_OIDC}/callback"


def console_try_callback_path(project_id: str) -> str:
    """Where the console's Try sign-in page receives the hosted pages' code for `project_id`."""
    return f"/console/projects/{project_id}/try/callback"


def console_try_callback(accounts_url: str, project_id: str) -> str:
    return _base(accounts_url) + console_try_callback_path(project_id)


def with_query(url: str, **params: str | None) -> str:
    """`url` with the non-empty `params` appended to its query (the URL itself is used exactly as
    registered: nothing in it is normalised)."""
    kept = {k: v for k, v in params.items() if v}
    return url + ("&" if "?" in url else "?") + urlencode(kept)
