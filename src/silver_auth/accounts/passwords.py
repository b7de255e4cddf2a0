"""Password hashing (argon2id) and the policy of ASVS 5.0 V6.2: 12-128 characters, never truncated,
no composition rules, the 10,000 most common passwords refused."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from silver_auth.core.errors import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = "common-passwords.txt"
_hasher = PasswordHasher()
# Verified when the account does not exist, so both answers cost the same time (ASVS V6.3.8).
_DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-password")


@cache
def common_passwords() -> frozenset[str]:
    """The bundled list (lower-cased; scripts/update_common_passwords.py says where it comes from)."""
    text = files("silver_auth.accounts").joinpath("data", COMMON_PASSWORDS_FILE).read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def check_policy(password: str) -> None:
    """Raise InvalidInput, naming the rule (never the password), if the password may not be used."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"passwords need at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"passwords are limited to {MAX_LENGTH} characters")
    # ASVS V6.2.4: checked against the whole password as typed (case-insensitive), never a prefix.
    if password.lower() in common_passwords():
        raise InvalidInput("this password is one of the most common passwords; choose another")


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
