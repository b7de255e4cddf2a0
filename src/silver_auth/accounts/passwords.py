"""Password hashing (argon2id) and the policy of ASVS 5.0 V6.2: 12-128 characters, never truncated,
no composition rules, the 10,000 most common passwords refused.

Every hash and verification runs in a worker thread, at most `SILVER_PASSWORD_HASH_THREADS` at once
(default: the CPU count): one costs ~0.1-0.2 s of CPU, and on the event loop it would stall every other
request of the worker for that long. argon2-cffi releases the GIL, so the threads use the cores; more
threads than cores would only make each sign-in slower, so the rest queue (first come, first served).
"""

from __future__ import annotations

import os
from functools import cache
from importlib.resources import files

from anyio import CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.core.errors import InvalidInput
from silver_auth.db.session import release_idle

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


_threads = os.cpu_count() or 1
# One limiter per event loop (its waiters belong to the loop they wait on; tests run several loops).
_limiter_var: RunVar[CapacityLimiter] = RunVar("silver_auth.password_hash_limiter")


def set_hash_threads(threads: int) -> None:
    """How many hashes or verifications may run at once in this process (SILVER_PASSWORD_HASH_THREADS)."""
    global _threads  # noqa: PLW0603 - one process-wide bound, set when the runtime is built
    _threads = threads


def _limiter() -> CapacityLimiter:
    limiter = _limiter_var.get(None)
    if limiter is None:
        limiter = CapacityLimiter(_threads)
        _limiter_var.set(limiter)
    elif limiter.total_tokens != _threads:
        limiter.total_tokens = _threads
    return limiter


async def hash_password(password: str, *, release: AsyncSession | None = None) -> str:
    """The policy (on the loop: a set lookup), then the argon2id hash in a worker thread. `release`:
    the caller's session, whose connection goes back to the pool meanwhile if it holds nothing."""
    check_policy(password)
    if release is not None:
        await release_idle(release)
    return await to_thread.run_sync(_hasher.hash, password, limiter=_limiter())


async def verify_password(encoded: str | None, password: str, *, release: AsyncSession | None = None) -> bool:
    """Constant-work check: a missing account still pays for one argon2id verification. `release` as
    for hash_password: a sign-in waiting for a thread must not sit on a connection others need."""
    if len(password) > MAX_LENGTH:
        return False
    if release is not None:
        await release_idle(release)
    return await to_thread.run_sync(_verify, encoded, password, limiter=_limiter())


def _verify(encoded: str | None, password: str) -> bool:
    try:
        return _hasher.verify(encoded or _DUMMY_HASH, password) and encoded is not None
    except (VerificationError, InvalidHashError):
        return False
