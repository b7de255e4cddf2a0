"""The one door to Authentik's REST API: every call runs off the event loop, with errors mapped to problems.

authentik-client is generated and synchronous (urllib3), so each call runs in a worker thread. Nothing
here logs a request or an answer: answers can carry client secrets in clear (G10, G18).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
import urllib3
from authentik_client import (
    AdminApi,
    ApiClient,
    AuthenticatorsApi,
    Configuration,
    CoreApi,
    CryptoApi,
    FlowsApi,
    PropertymappingsApi,
    ProvidersApi,
    RbacApi,
)
from authentik_client.exceptions import ApiException, NotFoundException, OpenApiException

from silver_auth.core.errors import IdentityProviderUnavailable, ProblemError

T = TypeVar("T")
API_PATH = "/api/v3"


# Authentik did not answer (down, timeout, TLS failure): the one "identity provider unavailable" problem.
AuthentikUnavailable = IdentityProviderUnavailable


class AuthentikFailed(ProblemError):
    """Authentik answered with an error Silver cannot act on (refused, invalid, missing permission)."""

    status, slug, title = 502, "identity-provider-error", "Identity provider error"


class AuthentikNotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class AuthentikApi:
    """Typed groups of Authentik endpoints sharing one connection pool and Bearer token."""

    def __init__(self, base_url: str, token: str, *, verify_tls: bool, timeout: float) -> None:
        config = Configuration(host=base_url.rstrip("/") + API_PATH, access_token=token)
        config.verify_ssl = verify_tls
        config.retries = 0  # the caller decides; a retry storm against a struggling Authentik helps nobody
        self._client = ApiClient(config)
        self.timeout = timeout
        self.admin = AdminApi(self._client)
        self.authenticators = AuthenticatorsApi(self._client)
        self.core = CoreApi(self._client)
        self.crypto = CryptoApi(self._client)
        self.flows = FlowsApi(self._client)
        self.mappings = PropertymappingsApi(self._client)
        self.providers = ProvidersApi(self._client)
        self.rbac = RbacApi(self._client)

    async def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one generated-client call in a thread; `what` names it in errors (never its payload)."""
        bound = partial(fn, *args, _request_timeout=self.timeout, **kwargs)
        try:
            return await anyio.to_thread.run_sync(bound)
        except NotFoundException:
            raise AuthentikNotFound(f"Authentik has no such object ({what})") from None
        except ApiException as exc:
            if not exc.status:  # TLS and transport failures surface as status 0
                raise AuthentikUnavailable(f"Authentik is unreachable ({what})") from None
            raise AuthentikFailed(
                f"Authentik refused {what} (HTTP {exc.status})", upstream=exc.status
            ) from None
        except (OpenApiException, ValueError):  # an answer the pinned client cannot parse: version mismatch
            raise AuthentikFailed(f"Authentik's answer to {what} does not match the pinned client") from None
        except (urllib3.exceptions.HTTPError, OSError):
            raise AuthentikUnavailable(f"Authentik is unreachable ({what})") from None

    def close(self) -> None:
        self._client.rest_client.pool_manager.clear()
