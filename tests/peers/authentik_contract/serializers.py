"""Authentik's JSON shapes, built from the contract state (the server validates them with the client)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from tests.peers.authentik_contract.state import DEVICE_KINDS, NOW, ContractState


def page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    page = int(request.query_params.get("page", "1"))
    size = int(request.query_params.get("page_size", "20"))
    start = (page - 1) * size
    chunk = items[start : start + size]
    has_next = start + size < len(items)
    return {
        "pagination": {
            "next": page + 1 if has_next else 0,
            "previous": page - 1 if page > 1 else 0,
            "count": len(items),
            "current": page,
            "total_pages": max(1, -(-len(items) // size)),
            "start_index": start + 1 if chunk else 0,
            "end_index": start + len(chunk),
        },
        "results": chunk,
        "autocomplete": {},
    }


def user_json(state: ContractState, user: dict[str, Any], *, with_groups: bool = True) -> dict[str, Any]:
    groups = [g for g in state.groups.values() if user["pk"] in g["users"]]
    return {
        "pk": user["pk"],
        "username": user["username"],
        "name": user["name"],
        "is_active": user["is_active"],
        "last_login": None,
        "date_joined": NOW,
        "is_superuser": state.is_superuser(user),
        "groups": [g["pk"] for g in groups],
        "groups_obj": [
            {"pk": g["pk"], "num_pk": g["num_pk"], "name": g["name"], "is_superuser": g["is_superuser"]}
            for g in groups
        ]
        if with_groups
        else None,
        "roles": list(user["roles"]),
        "roles_obj": [{"pk": r, "name": state.roles[r]["name"]} for r in user["roles"]],
        "email": user["email"],
        "avatar": "data:image/svg+xml;base64,",
        "attributes": {},
        "uid": user["uuid"].replace("-", ""),
        "path": "users",
        "type": user["type"],
        "uuid": user["uuid"],
        "password_change_date": NOW,
        "last_updated": NOW,
    }


def group_json(group: dict[str, Any]) -> dict[str, Any]:
    return {
        "pk": group["pk"],
        "num_pk": group["num_pk"],
        "name": group["name"],
        "is_superuser": group["is_superuser"],
        "parents": [],
        "parents_obj": [],
        "users": list(group["users"]),
        "users_obj": None,
        "attributes": {},
        "roles": [],
        "roles_obj": [],
        "inherited_roles_obj": None,
        "children": [],
        "children_obj": None,
    }


def provider_json(state: ContractState, provider: dict[str, Any]) -> dict[str, Any]:
    app = next((a for a in state.applications.values() if a["provider"] == provider["pk"]), None)
    return {
        **provider,
        "component": "ak-provider-oauth2-form",
        "assigned_application_slug": app["slug"] if app else None,
        "assigned_application_name": app["name"] if app else None,
        "assigned_backchannel_application_slug": None,
        "assigned_backchannel_application_name": None,
        "verbose_name": "OAuth2/OpenID Provider",
        "verbose_name_plural": "OAuth2/OpenID Providers",
        "meta_model_name": "authentik_providers_oauth2.oauth2provider",
    }


def application_json(app: dict[str, Any]) -> dict[str, Any]:
    return {
        **app,
        "pbm_uuid": app["pk"],
        "provider_obj": None,
        "backchannel_providers": [],
        "backchannel_providers_obj": [],
        "launch_url": None,
        "meta_icon_url": None,
        "meta_icon_themed_urls": None,
    }


def device_json(device: dict[str, Any]) -> dict[str, Any]:
    app, model, cls = DEVICE_KINDS[device["kind"]]
    return {
        "verbose_name": cls,
        "verbose_name_plural": cls + "s",
        "meta_model_name": f"{app}.{model}",
        "pk": str(device["pk"]),
        "name": f"{device['kind']} device",
        "type": f"{app}.{cls}",
        "confirmed": device["confirmed"],
        "created": NOW,
        "last_updated": NOW,
        "last_used": None,
        "extra_description": None,
        "external_id": None,
    }
