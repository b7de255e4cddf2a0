"""Password hashing (argon2id) and the length rule (ASVS V6.2: 12-128, never truncated)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from silver_auth.core.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 128
_hasher = PasswordHasher()
# Verified when the account does not exist, so both answers cost the same time (ASVS V6.3.8).
_DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-password")


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"passwords need at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"passwords are limited to {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


def verify_password(encoded: str | None, password: str) -> bool:
    """Constant-work check: a missing account still pays for one argon2id verification."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(encoded or _DUMMY_HASH, password) and encoded is not None
    except (VerificationError, InvalidHashError):
        return False
