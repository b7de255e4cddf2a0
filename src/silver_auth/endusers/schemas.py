from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from silver_auth.core.schemas import Input, Output
from silver_auth.core.text import MAX_EMAIL

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=MAX_EMAIL, examples=["ada@example.com"])]
Password = Annotated[str, msgspec.Meta(max_length=1024)]
Opaque = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class EndUserCreate(Input):
    email: Email
    password: Password | None = None


class EndUserUpdate(Input):
    email: Email | None = None
    password: Password | None = None


class EndUserPublic(Output):
    id: str
    project_id: str
    environment: str
    email: str
    has_password: bool
    mfa: bool
    banned: bool
    banned_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_sign_in_at: datetime | None


class EndUserPage(Output):
    items: list[EndUserPublic]
    next: str | None


class EndUserSessionPublic(Output):
    id: str
    user_id: str
    environment: str
    status: str
    """`active`, `revoked`, `banned` or `session-expired`."""
    mfa: bool
    ip: str | None
    user_agent: str | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class EndUserSessionPage(Output):
    items: list[EndUserSessionPublic]


class VerifyRequest(Input):
    token: Opaque


class VerifyAnswer(Output):
    valid: bool
    reason: str | None
    """Why not: `malformed`, `expired`, `not-yet-valid`, `bad-signature`, `unknown-kid`, `wrong-project`,
    `wrong-issuer`, `wrong-environment`, `unknown-session`, `revoked`, `banned`, `session-expired`."""
    session: EndUserSessionPublic | None
    user: EndUserPublic | None


class CodeExchange(Input):
    code: Opaque
    redirect_url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
    """Exactly the redirect URL the hosted page was opened with (RFC 6749 4.1.3)."""
    code_verifier: (
        Annotated[str, msgspec.Meta(min_length=43, max_length=128, pattern=r"^[A-Za-z0-9._~-]+$")] | None
    ) = None
    """PKCE (RFC 7636): required with a publishable key; with the secret key, only when the page was
    opened with a code_challenge."""


class SessionRefresh(Input):
    session_token: Opaque


class SessionSignOut(Input):
    session_token: Opaque
    """The session's current session token (the last one the exchange or a refresh answered)."""


class ClientSession(Output):
    session_id: str
    user_id: str
    session_token: str
    """The opaque refresh token. Every refresh answers the next one and voids the one sent: present
    a replaced token again and the session is revoked."""
    jwt: str
    jwt_expires_at: datetime
