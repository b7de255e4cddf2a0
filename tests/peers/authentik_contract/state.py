"""What the fake Authentik holds; tests read and change it directly."""

from __future__ import annotations

import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 11, 1, tzinfo=UTC).isoformat()
SECRET_ALPHABET = string.ascii_letters + string.digits
DEVICE_KINDS = {
    "totp": ("authentik_stages_authenticator_totp", "totpdevice", "TOTPDevice"),
    "static": ("authentik_stages_authenticator_static", "staticdevice", "StaticDevice"),
    "webauthn": ("authentik_stages_authenticator_webauthn", "webauthndevice", "WebAuthnDevice"),
}
MANAGED_SCOPES = ("openid", "email", "profile")


def random_secret(length: int) -> str:
    return "".join(secrets.choice(SECRET_ALPHABET) for _ in range(length))


class Refusal(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class ContractState:
    """Users, groups, roles, tokens, providers, applications, flows, keys, mappings, devices."""

    version: str = "2026.8.3"
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    providers: dict[int, dict[str, Any]] = field(default_factory=dict)
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    flows: list[dict[str, Any]] = field(default_factory=list)
    keypairs: list[dict[str, Any]] = field(default_factory=list)
    scope_mappings: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    fail_next: dict[tuple[str, str], int] = field(default_factory=dict)
    """(method, path) -> HTTP status to answer once instead of doing the work (0: drop the connection)."""
    calls: list[tuple[str, str]] = field(default_factory=list)
    on_call: Callable[[str, str], None] | None = None
    """Run (in the server's thread) as each request arrives, before it is answered: what else the
    service can do while it waits for Authentik."""
    next_pk: int = 100

    def pk(self) -> int:
        self.next_pk += 1
        return self.next_pk

    # --- seeding -------------------------------------------------------------------------------------
    def seed(self) -> None:
        for slug, designation in (
            ("default-provider-authorization-implicit-consent", "authorization"),
            ("default-provider-invalidation-flow", "invalidation"),
        ):
            pk = str(uuid.uuid4())
            self.flows.append(
                {
                    "pk": pk,
                    "policybindingmodel_ptr_id": pk,
                    "name": slug,
                    "slug": slug,
                    "title": slug,
                    "designation": designation,
                    "background_url": "/static/flow.png",
                    "background_themed_urls": None,
                    "stages": [],
                    "policies": [],
                    "cache_count": 0,
                    "export_url": f"/api/v3/flows/instances/{slug}/export/",
                }
            )
        self.keypairs.append(
            {
                "pk": str(uuid.uuid4()),
                "name": "authentik Self-signed Certificate",
                "fingerprint_sha256": None,
                "fingerprint_sha1": None,
                "cert_expiry": None,
                "cert_subject": None,
                "private_key_available": True,
                "key_type": "rsa",
                "certificate_download_url": "/cert",
                "private_key_download_url": "/key",
                "managed": None,
            }
        )
        for scope in MANAGED_SCOPES:
            self.scope_mappings.append(
                {
                    "pk": str(uuid.uuid4()),
                    "managed": f"goauthentik.io/providers/oauth2/scope-{scope}",
                    "name": f"authentik default OAuth Mapping: OpenID '{scope}'",
                    "expression": "return {}",
                    "component": "ak-property-mapping-provider-scope-form",
                    "verbose_name": "Scope Mapping",
                    "verbose_name_plural": "Scope Mappings",
                    "meta_model_name": "authentik_providers_oauth2.scopemapping",
                    "scope_name": scope,
                    "description": None,
                }
            )
        self.add_group("authentik Admins", superuser=True)
        self.add_group("SEQN-A")

    def add_group(self, name: str, *, superuser: bool = False) -> str:
        pk = str(uuid.uuid4())
        self.groups[pk] = {
            "pk": pk,
            "num_pk": self.pk(),
            "name": name,
            "is_superuser": superuser,
            "users": [],
        }
        return pk

    def add_user(
        self,
        username: str,
        *,
        email: str | None = None,
        groups: tuple[str, ...] = (),
        superuser: bool = False,
    ) -> dict[str, Any]:
        pk = self.pk()
        user = {
            "pk": pk,
            "uuid": str(uuid.uuid4()),
            "username": username,
            "name": username.title(),
            "email": email or f"{username}@example.com",
            "is_active": True,
            "superuser": superuser,
            "roles": [],
            "type": "internal",
        }
        self.users[pk] = user
        for name in groups:
            self.group_named(name)["users"].append(pk)
        return user

    def group_named(self, name: str) -> dict[str, Any]:
        return next(g for g in self.groups.values() if g["name"] == name)

    def add_role(self, name: str, perms: set[str], object_perms: list[tuple[str, str, str]] = ()) -> str:  # type: ignore[assignment]
        pk = str(uuid.uuid4())
        self.roles[pk] = {"name": name, "perms": set(perms), "object_perms": list(object_perms)}
        return pk

    def add_token(self, user_pk: int) -> str:
        token = random_secret(60)
        self.tokens[token] = user_pk
        return token

    def add_device(self, user_pk: int, kind: str = "totp", *, confirmed: bool = True) -> dict[str, Any]:
        device = {"pk": self.pk(), "kind": kind, "user": user_pk, "confirmed": confirmed}
        self.devices.append(device)
        return device

    # --- permissions ---------------------------------------------------------------------------------
    def is_superuser(self, user: dict[str, Any]) -> bool:
        return bool(user["superuser"]) or any(
            g["is_superuser"] and user["pk"] in g["users"] for g in self.groups.values()
        )

    def permissions(self, user: dict[str, Any]) -> set[str]:
        return {perm for role in user["roles"] for perm in self.roles[role]["perms"]}
