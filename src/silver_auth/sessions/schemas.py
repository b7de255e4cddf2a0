from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from silver_auth.core.schemas import Input, Output


class SignIn(Input):
    email: Annotated[str, msgspec.Meta(max_length=320, examples=["dev@example.com"])]
    password: Annotated[str, msgspec.Meta(max_length=1024)]


class AccountPublic(Output):
    id: str
    email: str
    groups: list[str]
    created_at: datetime


class Me(Output):
    account: AccountPublic
    session_id: str
    mfa: bool
    csrf_token: str
    """Send it as X-CSRF-Token on every unsafe console request."""


class SessionPublic(Output):
    id: str
    current: bool
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    mfa: bool


class SessionPage(Output):
    items: list[SessionPublic]


class RevokedCount(Output):
    revoked: int
