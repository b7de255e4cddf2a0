"""TOTP (RFC 6238, pyotp) and recovery-code primitives shared by console accounts and end-users.

Pure functions: storage (sealed secrets, hashed codes), throttling and auditing belong to the callers.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import pyotp
import segno

DIGITS = 6
PERIOD = 30
# One step either side absorbs clock drift between phone and server without widening much further.
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper


def new_secret() -> str:
    """A 160-bit base32 secret (RFC 4226's recommended length)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account_name: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI that authenticator apps import."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
        name=account_name, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as an inline SVG QR code (no external image service sees the secret)."""
    svg: str = segno.make(uri, error="m").svg_inline(scale=4)
    return svg


def normalize_code(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


@dataclass(frozen=True, slots=True)
class TotpMatch:
    step: int
    """The time step the code belongs to; store it so the same code cannot be replayed."""


def verify(
    secret: str, code: str, *, last_used_step: int | None, at: float | None = None
) -> TotpMatch | None:
    """The matching time step for a 6-digit code within the drift window, never one already used."""
    code = normalize_code(code)
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    now = time.time() if at is None else at
    current = int(now // PERIOD)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if last_used_step is not None and step <= last_used_step:
            continue
        if secrets.compare_digest(totp.generate_otp(step), code):
            return TotpMatch(step)
    return None


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Single-use codes shown once, as `xxxxx-xxxxx` (50 bits each)."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes
