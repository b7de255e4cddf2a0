"""The authorization request (OpenID Connect Core 3.1.2.1): checked at the authorize endpoint, then
carried through the hosted sign-in pages as one signed value, so the pages cannot be handed a
redirect URI, challenge or nonce other than the ones checked here."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import asdict, dataclass
from datetime import timedelta

from silver_auth.core import clock
from silver_auth.core.crypto import sign, verify_signature
from silver_auth.settings import Settings

SUPPORTED_SCOPES = ("openid", "profile", "email", "offline_access")
AUTHORIZATION_TTL = timedelta(minutes=30)
"""How long a sign-in started by the authorize endpoint may take (sign-up and two-step included)."""
MAX_NONCE = 512
MAX_STATE = 512
"""The longest `state` the hosted pages and the authorize endpoint carry back."""
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def s256_challenge_ok(challenge: str, method: str) -> bool:
    """Whether a PKCE challenge and method, when either is sent, are S256 with a 43-character
    challenge: no method means `plain` (RFC 7636), which the OAuth 2.1 draft and RFC 9700 2.1.1 rule
    out, and a method alone is a mistake too."""
    return not (challenge or method) or (method == "S256" and bool(S256_CHALLENGE.fullmatch(challenge)))


class AuthorizeRefused(Exception):
    """The request names no client or redirect URI this issuer knows: shown as a page, never redirected
    (RFC 6749 4.1.2.1: an unchecked redirect URI would make this an open redirector)."""


class AuthorizeError(Exception):
    """An error sent back to the client's (checked) redirect URI: `error` as RFC 6749 4.1.2.1 and
    OpenID Connect Core 3.1.2.6 name it."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """What the authorize endpoint accepted, for the code it leads to."""

    client_id: str
    redirect_uri: str
    state: str
    code_challenge: str
    """PKCE S256 challenge, "" when a confidential client sent none."""
    nonce: str
    scope: str
    """The granted scopes, space-separated: the supported ones the client asked for."""
    signed_in_after: int
    """Epoch seconds: only a sign-in at or after this moment will do (`prompt=login`, `max_age`); 0: any."""
    expires: int


def granted_scope(requested: str) -> str:
    """The supported scopes among those asked for, in the order asked (RFC 6749 3.3: others ignored)."""
    asked = requested.split()
    return " ".join(scope for scope in SUPPORTED_SCOPES if scope in asked)


def _message(project_id: str, environment: str, payload: str) -> str:
    return f"oidc_authorization:{project_id}:{environment}:{payload}"


def seal_request(settings: Settings, project_id: str, environment: str, request: AuthorizationRequest) -> str:
    """`payload.signature` under SESSION_SECRET, valid for this project environment only."""
    raw = json.dumps(asdict(request), separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    signature = sign(settings.secret("session_secret"), _message(project_id, environment, payload))
    return f"{payload}.{signature}"


def open_request(
    settings: Settings, project_id: str, environment: str, sealed: str
) -> AuthorizationRequest | None:
    """The request `seal_request` sealed for this project environment, unless forged or expired."""
    payload, dot, signature = sealed.partition(".")
    if not dot or not verify_signature(
        settings.secret("session_secret"), _message(project_id, environment, payload), signature
    ):
        return None
    try:
        fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        request = AuthorizationRequest(**fields)
    except (ValueError, TypeError):
        return None
    return request if request.expires > clock.now().timestamp() else None


def prompt_values(prompt: str) -> set[str]:
    """`prompt` as a set; `none` with anything else is an error (OpenID Connect Core 3.1.2.1)."""
    values = set(prompt.split())
    if "none" in values and len(values) > 1:
        raise AuthorizeError("invalid_request", "prompt=none cannot be combined with other values")
    unsupported = values - {"none", "login", "consent", "select_account", "create"}
    if unsupported:
        raise AuthorizeError("invalid_request", f"unsupported prompt value {sorted(unsupported)[0]!r}")
    return values


def checked_request(
    params: dict[str, str], *, client_id: str, redirect_uri: str, public: bool
) -> AuthorizationRequest:
    """The authorization request of `params` once client and redirect URI are known good; AuthorizeError
    for anything else wrong (the caller sends it back to `redirect_uri`)."""
    if params.get("request") or params.get("request_uri"):
        error = "request_uri_not_supported" if params.get("request_uri") else "request_not_supported"
        raise AuthorizeError(error, "request objects are not supported; send the parameters themselves")
    if params.get("response_type") != "code":
        raise AuthorizeError(
            "unsupported_response_type", "only response_type=code (the code flow) is supported"
        )
    if params.get("response_mode", "query") != "query":
        raise AuthorizeError("invalid_request", "only response_mode=query is supported")
    challenge, method = params.get("code_challenge", ""), params.get("code_challenge_method", "")
    if not s256_challenge_ok(challenge, method):
        raise AuthorizeError(
            "invalid_request",
            "code_challenge_method must be S256, with a code_challenge of 43 base64url characters",
        )
    if not challenge and public:
        raise AuthorizeError("invalid_request", "a public client must send a PKCE code_challenge (S256)")
    state, nonce = params.get("state", ""), params.get("nonce", "")
    if len(state) > MAX_STATE or len(nonce) > MAX_NONCE:
        raise AuthorizeError("invalid_request", f"state and nonce are at most {MAX_STATE} characters")
    now = int(clock.now().timestamp())
    signed_in_after = 0
    if "login" in prompt_values(params.get("prompt", "")):
        signed_in_after = now
    max_age = params.get("max_age")
    if max_age is not None:
        if not max_age.isdigit() or len(max_age) > 10:
            raise AuthorizeError("invalid_request", "max_age is a number of seconds")
        signed_in_after = max(signed_in_after, now - int(max_age))
    return AuthorizationRequest(
        client_id=client_id,
        redirect_uri=redirect_uri,
        state=state,
        code_challenge=challenge,
        nonce=nonce,
        scope=granted_scope(params.get("scope", "")),
        signed_in_after=signed_in_after,
        expires=now + int(AUTHORIZATION_TTL.total_seconds()),
    )
