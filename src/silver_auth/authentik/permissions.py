"""What the provisioning token needs, and what it can really do (G8: `silver-auth authentik check-token`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from silver_auth.authentik.api import AuthentikApi, AuthentikNotFound

DEVICE_MODELS = (
    "authentik_stages_authenticator_totp.totpdevice",
    "authentik_stages_authenticator_static.staticdevice",
    "authentik_stages_authenticator_webauthn.webauthndevice",
    "authentik_stages_authenticator_duo.duodevice",
    "authentik_stages_authenticator_sms.smsdevice",
    "authentik_stages_authenticator_email.emaildevice",
    "authentik_stages_authenticator_endpoint_gdtc.endpointdevice",
)


def _perms(model: str, *actions: str) -> set[str]:
    app, _, name = model.partition(".")
    return {f"{app}.{action}_{name}" for action in actions}


# Exactly what the adapter calls, as global (model-level) permissions of the token's role.
NEEDED: frozenset[str] = frozenset(
    _perms("authentik_core.user", "view", "change")  # directory, deactivate
    | _perms("authentik_core.group", "view")
    | _perms("authentik_core.application", "view", "add", "delete")
    | _perms("authentik_providers_oauth2.oauth2provider", "view", "add", "change", "delete")
    | _perms("authentik_providers_oauth2.scopemapping", "view")
    | _perms("authentik_flows.flow", "view")
    | _perms("authentik_crypto.certificatekeypair", "view")
    | {perm for model in DEVICE_MODELS for perm in _perms(model, "view", "delete")}  # device check, MFA reset
)
GROUP_MEMBERSHIP = frozenset({"authentik_core.add_user_to_group", "authentik_core.remove_user_from_group"})


@dataclass(frozen=True, slots=True)
class ObjectPermission:
    permission: str
    model: str
    object_pk: str


@dataclass
class TokenReport:
    """The token user's effective permissions, and where they go beyond what provisioning needs."""

    username: str
    is_superuser: bool
    roles: list[str]
    global_permissions: list[str]
    object_permissions: list[ObjectPermission]
    system_permissions: list[str]
    beyond: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def over_privileged(self) -> bool:
        return self.is_superuser or bool(self.beyond)


async def _pages(api: AuthentikApi, what: str, fn: Any, **kwargs: Any) -> list[Any]:
    results: list[Any] = []
    page = 1
    while True:
        answer = await api.call(what, fn, page=page, page_size=100, **kwargs)
        results.extend(answer.results)
        if not answer.pagination.next:
            return results
        page = int(answer.pagination.next)


async def token_report(api: AuthentikApi) -> TokenReport:
    """Read the token user (`/core/users/me/`), its roles' global and object permissions, and judge them."""
    me = (await api.call("read the token's user", api.core.core_users_me_retrieve)).user
    global_perms: set[str] = set()
    object_perms: list[ObjectPermission] = []
    role_pks = {role.pk for role in me.roles}
    for role in me.roles:
        for perm in await _pages(
            api, "list a role's permissions", api.rbac.rbac_permissions_list, role=role.pk
        ):
            global_perms.add(f"{perm.app_label}.{perm.codename}")
        for perm in await _pages(
            api, "list a role's object permissions", api.rbac.rbac_permissions_roles_list, uuid=UUID(role.pk)
        ):
            object_perms.append(
                ObjectPermission(f"{perm.app_label}.{perm.codename}", perm.model, perm.object_pk)
            )
    report = TokenReport(
        username=me.username,
        is_superuser=me.is_superuser,
        roles=sorted(role.name for role in me.roles),
        global_permissions=sorted(global_perms),
        object_permissions=sorted(object_perms, key=lambda p: (p.permission, p.object_pk)),
        system_permissions=sorted(me.system_permissions),
    )
    if me.is_superuser:
        report.beyond.append("superuser: the token can do anything in Authentik (G8)")
    for perm in report.global_permissions:
        if perm in GROUP_MEMBERSHIP:
            report.beyond.append(
                f"{perm} granted globally: the token could add anyone, itself included, to the superuser "
                "group; grant it only as an object permission on the groups Silver manages"
            )
        elif perm not in NEEDED:
            report.beyond.append(f"{perm}: not needed by provisioning")
    for system in report.system_permissions:
        report.beyond.append(f"system permission {system}: not needed by provisioning")
    for item in report.object_permissions:
        report.beyond.extend(await _judge_object_permission(api, item, role_pks))
    report.missing = sorted(NEEDED - global_perms) if not me.is_superuser else []
    return report


async def _judge_object_permission(
    api: AuthentikApi, item: ObjectPermission, own_roles: set[str]
) -> list[str]:
    if item.permission in NEEDED:
        return []  # a narrower form of a needed grant
    if item.permission == "authentik_rbac.view_role" and item.object_pk in own_roles:
        return []  # lets check-token read its own role
    if item.permission in GROUP_MEMBERSHIP and item.model == "group":
        try:
            group = await api.call("read a group", api.core.core_groups_retrieve, UUID(item.object_pk))
        except (AuthentikNotFound, ValueError):
            return []
        if group.is_superuser:
            return [f"{item.permission} on the superuser group {group.name!r}: a path to superuser"]
        return []
    return [f"{item.permission} on {item.model} {item.object_pk}: not needed by provisioning"]
