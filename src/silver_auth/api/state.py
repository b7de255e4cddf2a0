"""What the app keeps for its lifetime, typed (instead of loose attributes on app.state)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from silver_auth.identity.providers.base import IdentityProvider
from silver_auth.keys.verifier import KeyVerifier
from silver_auth.sessions.service import SessionCodec
from silver_auth.settings import Settings


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    keys: KeyVerifier
    sessions: SessionCodec
    identity: IdentityProvider
    """The identity backend (builtin or Authentik) behind platform-admin proxy operations (G26)."""
