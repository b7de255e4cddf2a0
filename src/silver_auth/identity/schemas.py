"""Bodies of the console account routes: password change and TOTP MFA."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from silver_auth.core.schemas import Input, Output

Password = Annotated[str, msgspec.Meta(max_length=1024)]
Code = Annotated[str, msgspec.Meta(max_length=32, examples=["123456"])]
RecoveryCodeText = Annotated[str, msgspec.Meta(max_length=64, examples=["abcde-fghjk"])]


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


class SessionsRevoked(Output):
    sessions_revoked: int
    """Other sessions of the account that were ended."""
