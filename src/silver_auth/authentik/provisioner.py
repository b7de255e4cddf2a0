"""Per-project OAuth2 providers and applications in Authentik (G8, G10).

The client secret Authentik generates comes back in clear; it is handed to the caller to seal and is
never logged, audited or returned (G18).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from authentik_client import (
    ApplicationRequest,
    ClientTypeEnum,
    MatchingModeEnum,
    OAuth2ProviderRequest,
    OAuth2ProviderSetupURLs,
    PatchedOAuth2ProviderRequest,
    RedirectURIRequest,
)

from silver_auth.authentik.api import AuthentikApi, AuthentikFailed, AuthentikNotFound
from silver_auth.core.errors import ProblemError

SCOPE_MAPPINGS = (
    "goauthentik.io/providers/oauth2/scope-openid",
    "goauthentik.io/providers/oauth2/scope-email",
    "goauthentik.io/providers/oauth2/scope-profile",
)
SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_LENGTH = 128  # what Authentik itself generates


@dataclass(frozen=True, slots=True)
class Prerequisites:
    """Looked up once per process: the flows, the signing key and the scope mappings a provider needs."""

    authorization_flow: UUID
    invalidation_flow: UUID
    signing_key: UUID
    scope_mappings: list[UUID]


@dataclass(frozen=True, slots=True)
class ProvisionedApplication:
    provider_pk: int
    application_slug: str
    client_id: str
    client_secret: str
    """In clear, straight from Authentik: seal it and forget it (G10)."""


def application_slug(project_id: str) -> str:
    """A stable Authentik slug for a project (slugs allow letters, digits, `-` and `_`)."""
    return "silver-" + project_id.lower().replace("_", "-")


def new_client_secret() -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def redirect_uris(urls: list[str]) -> list[RedirectURIRequest]:
    # Strict matching only: Authentik's regex mode would turn an allowlist entry into a pattern.
    return [RedirectURIRequest(matching_mode=MatchingModeEnum.STRICT, url=url) for url in urls]


class Provisioner:
    def __init__(self, api: AuthentikApi, *, authorization_flow: str, invalidation_flow: str) -> None:
        self.api = api
        self.authorization_flow = authorization_flow
        self.invalidation_flow = invalidation_flow
        self._prerequisites: Prerequisites | None = None

    async def _flow(self, slug: str) -> UUID:
        answer = await self.api.call("look up a flow", self.api.flows.flows_instances_list, slug=slug)
        match = [flow for flow in answer.results if flow.slug == slug]
        if not match:
            raise AuthentikFailed(f"Authentik has no flow with the slug {slug!r}")
        return match[0].pk

    async def prerequisites(self) -> Prerequisites:
        if self._prerequisites is not None:
            return self._prerequisites
        keys = await self.api.call(
            "look up a certificate key pair",
            self.api.crypto.crypto_certificatekeypairs_list,
            has_key=True,
            ordering="name",
        )
        usable = [pair for pair in keys.results if pair.private_key_available]
        if not usable:
            # Without a signing key Authentik signs ID tokens HS256 with the client secret.
            raise AuthentikFailed("Authentik has no certificate key pair with a private key to sign tokens")
        mappings = await self.api.call(
            "look up scope mappings",
            self.api.mappings.propertymappings_provider_scope_list,
            managed=list(SCOPE_MAPPINGS),
        )
        found = {mapping.managed: mapping.pk for mapping in mappings.results}
        missing = [name for name in SCOPE_MAPPINGS if name not in found]
        if missing:
            raise AuthentikFailed(f"Authentik lacks the managed scope mappings {missing}")
        self._prerequisites = Prerequisites(
            authorization_flow=await self._flow(self.authorization_flow),
            invalidation_flow=await self._flow(self.invalidation_flow),
            signing_key=usable[0].pk,
            scope_mappings=[found[name] for name in SCOPE_MAPPINGS],
        )
        return self._prerequisites

    async def create_application(self, project_id: str, name: str, urls: list[str]) -> ProvisionedApplication:
        """Provider, then application; if the application fails, the provider is deleted again."""
        needs = await self.prerequisites()
        slug = application_slug(project_id)
        provider = await self.api.call(
            "create an OAuth2 provider",
            self.api.providers.providers_oauth2_create,
            OAuth2ProviderRequest(
                name=f"SEQN {name} ({project_id})",
                authorization_flow=needs.authorization_flow,
                invalidation_flow=needs.invalidation_flow,
                property_mappings=needs.scope_mappings,
                client_type=ClientTypeEnum.CONFIDENTIAL,
                signing_key=needs.signing_key,
                include_claims_in_id_token=True,
                redirect_uris=redirect_uris(urls),
            ),
        )
        try:
            await self.api.call(
                "create an application",
                self.api.core.core_applications_create,
                ApplicationRequest(name=f"SEQN {name}", slug=slug, provider=provider.pk),
            )
        except ProblemError:
            await self.delete_application(None, provider.pk, best_effort=True)
            raise
        if not provider.client_id or not provider.client_secret:
            await self.delete_application(slug, provider.pk, best_effort=True)
            raise AuthentikFailed("Authentik created a provider without client credentials")
        return ProvisionedApplication(provider.pk, slug, provider.client_id, provider.client_secret)

    async def set_redirect_uris(self, provider_pk: int, urls: list[str]) -> None:
        await self.api.call(
            "update redirect URIs",
            self.api.providers.providers_oauth2_partial_update,
            provider_pk,
            PatchedOAuth2ProviderRequest(redirect_uris=redirect_uris(urls)),
        )

    async def rotate_client_secret(self, provider_pk: int) -> str:
        """Authentik 2026.8 has no rotate action: PATCH a fresh secret and return it (to be sealed)."""
        secret = new_client_secret()
        await self.set_client_secret(provider_pk, secret)
        return secret

    async def set_client_secret(self, provider_pk: int, secret: str, *, best_effort: bool = False) -> None:
        try:
            await self.api.call(
                "set a client secret",
                self.api.providers.providers_oauth2_partial_update,
                provider_pk,
                PatchedOAuth2ProviderRequest(client_secret=secret),
            )
        except ProblemError:
            if not best_effort:
                raise

    async def delete_application(
        self, slug: str | None, provider_pk: int, *, best_effort: bool = False
    ) -> None:
        """Application first (it points at the provider), then the provider; already gone is fine."""
        steps: list[tuple[str, Callable[..., Any], Any]] = []
        if slug is not None:
            steps.append(("delete an application", self.api.core.core_applications_destroy, slug))
        steps.append(("delete an OAuth2 provider", self.api.providers.providers_oauth2_destroy, provider_pk))
        for what, fn, arg in steps:
            try:
                await self.api.call(what, fn, arg)
            except AuthentikNotFound:
                continue
            except ProblemError:
                if not best_effort:
                    raise

    async def setup_urls(self, provider_pk: int) -> OAuth2ProviderSetupURLs:
        return await self.api.call(
            "read the OIDC URLs", self.api.providers.providers_oauth2_setup_urls_retrieve, provider_pk
        )
