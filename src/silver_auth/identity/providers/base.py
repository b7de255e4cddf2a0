"""The identity backend seen by the rest of the service: builtin accounts or Authentik.

Platform-admin proxy operations (G26) and the admin MFA check (G6) go through this one interface, so
the admin routes and their audit trail are the same whichever backend is configured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A user as the identity backend knows it; never carries a password, token or secret."""

    id: str
    """The backend's id: an account id (builtin) or Authentik's user pk (as a string)."""
    email: str | None
    name: str | None
    is_active: bool
    groups: list[str] = field(default_factory=list)
    mfa_devices: int = 0
    """Confirmed second-factor devices."""


@dataclass(frozen=True, slots=True)
class DirectoryGroup:
    id: str
    name: str
    member_count: int | None = None


class IdentityProvider(Protocol):
    name: Literal["builtin", "authentik"]

    async def list_users(
        self, db: AsyncSession, *, search: str | None, limit: int, offset: int
    ) -> list[DirectoryUser]: ...

    async def list_groups(self, db: AsyncSession) -> list[DirectoryGroup]: ...

    async def get_user(self, db: AsyncSession, user_id: str) -> DirectoryUser:
        """The user, or NotFound."""
        ...

    async def deactivate_user(self, db: AsyncSession, user_id: str) -> DirectoryUser: ...

    async def reset_mfa(self, db: AsyncSession, user_id: str) -> int:
        """Remove every second-factor device of the user; returns how many were removed."""
        ...

    async def has_confirmed_mfa(self, db: AsyncSession, user_id: str) -> bool: ...
