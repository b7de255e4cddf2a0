"""Authentik as the identity engine (SILVER_IDENTITY=authentik). Every Authentik API call is behind this
package: `api.AuthentikApi.call` is the only place a request leaves for Authentik (G8).
"""

from __future__ import annotations

from importlib.metadata import version as package_version

import structlog

from silver_auth.authentik.api import AuthentikApi, AuthentikFailed, AuthentikNotFound, AuthentikUnavailable
from silver_auth.authentik.directory import AuthentikDirectory
from silver_auth.authentik.permissions import TokenReport, token_report
from silver_auth.authentik.provisioner import ProvisionedApplication, Provisioner
from silver_auth.identity.providers.base import IdentityProvider
from silver_auth.settings import Settings

__all__ = [
    "AuthentikFailed",
    "AuthentikNotFound",
    "AuthentikProvider",
    "AuthentikUnavailable",
    "ProvisionedApplication",
    "TokenReport",
    "build_authentik_provider",
]
CLIENT_VERSION = package_version("authentik-client")


def log() -> structlog.typing.FilteringBoundLogger:
    # Looked up per use: a logger cached at import would keep the stderr of the first configuration.
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(__name__)
    return logger


def major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


class AuthentikProvider(AuthentikDirectory):
    """The IdentityProvider for Authentik, plus project provisioning and the token check."""

    def __init__(self, api: AuthentikApi, settings: Settings) -> None:
        super().__init__(api)
        self.provisioning = Provisioner(
            api,
            authorization_flow=settings.authentik_authorization_flow,
            invalidation_flow=settings.authentik_invalidation_flow,
        )

    async def server_version(self) -> str:
        answer = await self.api.call("read the version", self.api.admin.admin_version_retrieve)
        return answer.version_current

    async def check_version(self) -> str | None:
        """Warn (once, at start-up) when Authentik's major.minor differs from the pinned client's."""
        try:
            current = await self.server_version()
        except (AuthentikUnavailable, AuthentikFailed, AuthentikNotFound) as exc:
            log().warning("authentik_version_unknown", detail=exc.detail)
            return None
        if major_minor(current) != major_minor(CLIENT_VERSION):
            log().warning(
                "authentik_version_mismatch",
                server=current,
                client=CLIENT_VERSION,
                detail="pin authentik-client to the server's version (authentik-notes: the schema changes)",
            )
        return current

    async def token_report(self) -> TokenReport:
        return await token_report(self.api)

    def close(self) -> None:
        self.api.close()


def as_identity_provider(provider: AuthentikProvider) -> IdentityProvider:
    """The adapter seen through the shared interface (mypy checks that it conforms)."""
    return provider


def build_authentik_provider(settings: Settings) -> AuthentikProvider:
    """The Authentik adapter from settings; raises RuntimeError when they are incomplete."""
    if not settings.authentik_url or settings.authentik_token is None:
        raise RuntimeError("SILVER_AUTHENTIK_URL and SILVER_AUTHENTIK_TOKEN are required for Authentik")
    api = AuthentikApi(
        settings.authentik_url,
        settings.authentik_token.get_secret_value(),
        verify_tls=settings.authentik_verify_tls,
        timeout=settings.authentik_timeout_seconds,
    )
    return AuthentikProvider(api, settings)
