"""Bodies of the console account routes: sign-in, the account, its sessions, password change and TOTP MFA."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from silver_auth.core.schemas import Input, Output
from silver_auth.core.text import MAX_EMAIL

Password = Annotated[str, msgspec.Meta(max_length=1024)]
Code = Annotated[str, msgspec.Meta(max_length=32, examples=["123456"])]
RecoveryCodeText = Annotated[str, msgspec.Meta(max_length=64, examples=["abcde-fghjk"])]


class SignIn(Input):
    """Step one: `email` and `password`. Step two, when the answer said `mfa_required`: `code` (TOTP)
    or `recovery_code`, sent with the pending cookie that step one set."""

    email: Annotated[str, msgspec.Meta(max_length=MAX_EMAIL, examples=["dev@example.com"])] | None = None
    password: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    code: Annotated[str, msgspec.Meta(max_length=32, examples=["123456"])] | None = None
    recovery_code: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class MfaChallenge(Output):
    """The password was right; finish signing in with a second factor within `expires_in` seconds."""

    mfa_required: bool
    methods: list[str]
    expires_in: int


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
    device: str
    """A readable label from the user agent, e.g. "Firefox on Linux"."""
    mfa: bool


class SessionPage(Output):
    items: list[SessionPublic]


class PasswordInput(Input):
    password: Password
    """Your current password (re-authentication)."""


class PasswordChange(Input):
    current_password: Password
    new_password: Password


class MfaStatusPublic(Output):
    enabled: bool
    confirmed_at: datetime | None
    pending: bool
    """An enrolment was started and awaits its first code."""
    recovery_codes_remaining: int


class TotpEnrolment(Output):
    """Shown once: add the secret to an authenticator app (scan the QR code or open the URI)."""

    secret: str
    otpauth_uri: str
    qr_svg: str


class CodeInput(Input):
    code: Code


class MfaDisable(Input):
    password: Password
    code: Code | None = None
    recovery_code: RecoveryCodeText | None = None


class RecoveryCodes(Output):
    """Shown once: each code signs in one time instead of a TOTP code. Store them offline."""

    recovery_codes: list[str]


class OtherSessionsEnded(Output):
    sessions_revoked: int
    """Other sessions of the account that were ended."""
