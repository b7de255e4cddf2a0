"""Pick the identity backend named by `SILVER_IDENTITY`."""

from __future__ import annotations

import importlib
from typing import cast

from silver_auth.identity.providers.base import IdentityProvider
from silver_auth.identity.providers.builtin import BuiltinIdentityProvider
from silver_auth.settings import Settings

AUTHENTIK_MODULE = "silver_auth.identity.providers.authentik"


def build_identity_provider(settings: Settings) -> IdentityProvider:
    if settings.identity == "builtin":
        return BuiltinIdentityProvider()
    try:
        module = importlib.import_module(AUTHENTIK_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != AUTHENTIK_MODULE:  # a missing dependency inside it is a different failure
            raise
        raise RuntimeError(
            "SILVER_IDENTITY=authentik, but this build has no Authentik identity provider "
            f"({AUTHENTIK_MODULE}); use SILVER_IDENTITY=builtin"
        ) from None
    return cast(IdentityProvider, module.build_authentik_provider(settings))
