"""What the app keeps for its lifetime, typed (instead of loose attributes on app.state)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from silver_auth.identity.providers.base import IdentityProvider
from silver_auth.keys.verifier import KeyVerifier
from silver_auth.sessions.service import SessionCodec
from silver_auth.settings import Settings

if TYPE_CHECKING:  # authentik-client takes seconds to import: only the Authentik backend loads it
    from silver_auth.identity.providers.authentik import AuthentikProvider
    from silver_auth.provisioning.service import ProjectIdentity
    from silver_auth.sso.service import ConsoleSso
else:  # Litestar resolves these hints at run time (dependency signatures)
    AuthentikProvider = ProjectIdentity = ConsoleSso = object


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    keys: KeyVerifier
    sessions: SessionCodec
    identity: IdentityProvider
    """The identity backend (builtin or Authentik) behind platform-admin proxy operations (G26)."""
    # SILVER_IDENTITY=authentik only (None with the builtin backend)
    authentik: AuthentikProvider | None = None
    project_identity: ProjectIdentity | None = None
    sso: ConsoleSso | None = None
