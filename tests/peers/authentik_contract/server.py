"""The contract server's routes: each handler checks the caller's permission, validates the request
with the client's request model, and answers JSON the client's model accepts."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import authentik_client as ak
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.peers.authentik_contract import serializers as ser
from tests.peers.authentik_contract.state import DEVICE_KINDS, ContractState, Refusal, random_secret


class ContractServer:
    """The Starlette app over a ContractState; `handle` maps every route."""

    def __init__(self) -> None:
        self.state = ContractState()
        self.state.seed()
        self.oidc_upstream: str | None = None
        """A running OpenID provider standing in for one application's OIDC endpoints (`/application/o/…`
        and the provider's own paths), reached through this host as with a real Authentik."""
        routes = [
            Route("/api/v3/{path:path}", self.handle, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
            Route("/{path:path}", self.proxy, methods=["GET", "POST"]),
        ]
        self.app = Starlette(routes=routes)

    def reset(self) -> ContractState:
        self.oidc_upstream = None
        self.state = ContractState()
        self.state.seed()
        return self.state

    async def proxy(self, request: Request) -> Response:
        """Everything outside the API goes to the OpenID provider, with this host's Host header (so the
        URLs it builds point here) and every Set-Cookie kept."""
        if self.oidc_upstream is None:
            return Response("no OpenID provider attached", status_code=404)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() != "content-length"]
        async with httpx.AsyncClient(follow_redirects=False, timeout=10) as http:
            upstream = await http.request(
                request.method,
                self.oidc_upstream + request.url.path,
                params=request.url.query,
                headers=headers,
                content=await request.body(),
            )
        response = Response(upstream.content, status_code=upstream.status_code)
        skip = {"content-length", "content-encoding", "transfer-encoding", "connection"}
        for key, value in upstream.headers.multi_items():
            if key.lower() not in skip:
                response.raw_headers.append((key.lower().encode(), value.encode()))
        return response

    # --- plumbing ------------------------------------------------------------------------------------
    def _send(self, model: Any, data: Any, status: int = 200) -> Response:
        if model is not None:
            if isinstance(data, list):
                for item in data:
                    model.from_dict(item)
            else:
                model.from_dict(data)  # the pinned client must be able to read every answer
        return Response(json.dumps(data), status_code=status, media_type="application/json")

    def _caller(self, request: Request) -> dict[str, Any]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        pk = self.state.tokens.get(token) if scheme == "Bearer" else None
        if pk is None or pk not in self.state.users or not self.state.users[pk]["is_active"]:
            raise Refusal(403, "Authentication credentials were not provided.")
        return self.state.users[pk]

    def _require(self, user: dict[str, Any], perm: str) -> None:
        if not self.state.is_superuser(user) and perm not in self.state.permissions(user):
            raise Refusal(403, "You do not have permission to perform this action.")

    async def handle(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        method = request.method
        self.state.calls.append((method, path))
        if self.state.on_call is not None:
            await asyncio.to_thread(self.state.on_call, method, path)
        try:
            user = self._caller(request)
            for (fail_method, fail_path), status in list(self.state.fail_next.items()):
                if fail_method == method and path.startswith(fail_path):
                    del self.state.fail_next[(fail_method, fail_path)]
                    return self._send(ak.GenericError, {"detail": "injected failure"}, status)
            body = await request.json() if method in ("POST", "PATCH", "PUT") and await request.body() else {}
            return self._route(method, path, request, body, user)
        except ValueError as invalid:  # a request body the client's request models reject: Authentik's 400
            return self._send(ak.GenericError, {"detail": type(invalid).__name__}, 400)
        except Refusal as refusal:
            return self._send(ak.GenericError, {"detail": refusal.detail}, refusal.status)

    def _route(self, method: str, path: str, request: Request, body: Any, user: dict[str, Any]) -> Response:
        parts = [p for p in path.split("/") if p]
        for (want_method, pattern), handler in self.routes().items():
            want = [p for p in pattern.split("/") if p]
            if want_method != method or len(want) != len(parts):
                continue
            args = []
            for expected, actual in zip(want, parts, strict=True):
                if expected == "*":
                    args.append(actual)
                elif expected != actual:
                    break
            else:
                return handler(request, body, user, *args)
        raise Refusal(404, f"no route {method} {path}")

    def routes(self) -> dict[tuple[str, str], Callable[..., Response]]:
        return {
            ("GET", "/admin/version/"): self.version,
            ("GET", "/core/users/me/"): self.me,
            ("GET", "/core/users/"): self.list_users,
            ("GET", "/core/users/*/"): self.get_user,
            ("PATCH", "/core/users/*/"): self.patch_user,
            ("GET", "/core/groups/"): self.list_groups,
            ("GET", "/core/groups/*/"): self.get_group,
            ("POST", "/core/groups/*/add_user/"): self.group_add_user,
            ("POST", "/core/groups/*/remove_user/"): self.group_remove_user,
            ("POST", "/core/applications/"): self.create_application,
            ("GET", "/core/applications/*/"): self.get_application,
            ("DELETE", "/core/applications/*/"): self.delete_application,
            ("POST", "/providers/oauth2/"): self.create_provider,
            ("GET", "/providers/oauth2/*/"): self.get_provider,
            ("PATCH", "/providers/oauth2/*/"): self.patch_provider,
            ("DELETE", "/providers/oauth2/*/"): self.delete_provider,
            ("GET", "/providers/oauth2/*/setup_urls/"): self.setup_urls,
            ("GET", "/flows/instances/"): self.list_flows,
            ("GET", "/crypto/certificatekeypairs/"): self.list_keypairs,
            ("GET", "/propertymappings/provider/scope/"): self.list_scope_mappings,
            ("GET", "/authenticators/admin/all/"): self.list_devices,
            ("DELETE", "/authenticators/admin/*/*/"): self.delete_device,
            ("GET", "/rbac/permissions/"): self.role_permissions,
            ("GET", "/rbac/permissions/roles/"): self.role_object_permissions,
        }

    # --- serializers ---------------------------------------------------------------------------------
    def version(self, request: Request, body: Any, user: dict[str, Any]) -> Response:
        current = self.state.version
        data = {
            "version_current": current,
            "version_latest": current,
            "version_latest_valid": True,
            "build_hash": "",
            "outdated": False,
            "outpost_outdated": False,
        }
        return self._send(ak.Version, data)

    def me(self, request: Request, body: Any, user: dict[str, Any]) -> Response:
        self_user = {
            "pk": user["pk"],
            "username": user["username"],
            "name": user["name"],
            "is_active": user["is_active"],
            "is_superuser": self.state.is_superuser(user),
            "is_current": False,
            "groups": [
                {"name": g["name"], "pk": g["pk"]}
                for g in self.state.groups.values()
                if user["pk"] in g["users"]
            ],
            "roles": [{"name": self.state.roles[r]["name"], "pk": r} for r in user["roles"]],
            "email": user["email"],
            "avatar": "data:image/svg+xml;base64,",
            "uid": user["uuid"].replace("-", ""),
            "settings": {},
            "type": user["type"],
            "system_permissions": sorted(user.get("system_permissions", [])),
        }
        return self._send(ak.SessionUser, {"user": self_user, "users": [self_user]})

    def list_users(self, request: Request, body: Any, user: dict[str, Any]) -> Response:
        self._require(user, "authentik_core.view_user")
        query = request.query_params
        users = sorted(self.state.users.values(), key=lambda u: u["username"])
        if query.get("uuid"):
            users = [u for u in users if u["uuid"] == query["uuid"]]
        if query.get("search"):
            term = query["search"].lower()
            users = [u for u in users if term in u["username"].lower() or term in (u["email"] or "").lower()]
        with_groups = query.get("include_groups", "true") == "true"
        return self._send(
            ak.PaginatedUserList,
            ser.page(request, [ser.user_json(self.state, u, with_groups=with_groups) for u in users]),
        )

    def _user_or_404(self, pk: str) -> dict[str, Any]:
        if not pk.isdigit() or int(pk) not in self.state.users:
            raise Refusal(404, "No User matches the given query.")
        return self.state.users[int(pk)]

    def get_user(self, request: Request, body: Any, user: dict[str, Any], pk: str) -> Response:
        self._require(user, "authentik_core.view_user")
        return self._send(ak.User, ser.user_json(self.state, self._user_or_404(pk)))

    def patch_user(self, request: Request, body: Any, user: dict[str, Any], pk: str) -> Response:
        self._require(user, "authentik_core.change_user")
        patch = ak.PatchedUserRequest.from_dict(body)
        target = self._user_or_404(pk)
        if patch.is_active is not None:
            target["is_active"] = patch.is_active
        return self._send(ak.User, ser.user_json(self.state, target))

    def list_groups(self, request: Request, body: Any, user: dict[str, Any]) -> Response:
        self._require(user, "authentik_core.view_group")
        groups = sorted(self.state.groups.values(), key=lambda g: g["name"])
        return self._send(ak.PaginatedGroupList, ser.page(request, [ser.group_json(g) for g in groups]))

    def get_group(self, request: Request, body: Any, user: dict[str, Any], pk: str) -> Response:
        self._require(user, "authentik_core.view_group")
        if pk not in self.state.groups:
            raise Refusal(404, "No Group matches the given query.")
        return self._send(ak.Group, ser.group_json(self.state.groups[pk]))

    def _membership(self, user: dict[str, Any], pk: str, body: Any, perm: str) -> dict[str, Any]:
        group = self.state.groups.get(pk)
        if group is None:
            raise Refusal(404, "No Group matches the given query.")
        allowed = self.state.is_superuser(user) or perm in self.state.permissions(user)
        allowed = allowed or any(
            (p, o) == (perm, pk) for r in user["roles"] for p, _, o in self.state.roles[r]["object_perms"]
        )
        if not allowed:
            raise Refusal(403, "You do not have permission to perform this action.")
        member = ak.UserAccountRequest.from_dict(body)
        self._user_or_404(str(member.pk))
        return {"group": group, "pk": member.pk}

    def group_add_user(self, request: Request, body: Any, user: dict[str, Any], pk: str) -> Response:
        found = self._membership(user, pk, body, "authentik_core.add_user_to_group")
        if found["pk"] not in found["group"]["users"]:
            found["group"]["users"].append(found["pk"])
        return Response(status_code=204)  # quirk: no body

    def group_remove_user(self, request: Request, body: Any, user: dict[str, Any], pk: str) -> Response:
        found = self._membership(user, pk, body, "authentik_core.remove_user_from_group")
        if found["pk"] in found["group"]["users"]:
            found["group"]["users"].remove(found["pk"])
        return Response(status_code=204)

    def create_application(self, request: Request, body: Any, user: dict[str, Any]) -> Response:
        self._require(user, "authentik_core.add_application")
        wanted = ak.ApplicationRequest.from_dict(body)
        if wanted.slug in self.state.applications:
            raise Refusal(400, "Application with this slug already exists.")
        if wanted.provider is not None and wanted.provider not in self.state.providers:
            raise Refusal(400, "Invalid provider.")
        app = {
            "pk": str(uuid.uuid4()),
            "name": wanted.name,
            "slug": wanted.slug,
            "provider": wanted.provider,
            "open_in_new_tab": False,
            "meta_launch_url": "",
            "meta_icon": None,
            "meta_description": "",
            "meta_publisher": "",
            "policy_engine_mode": "any",
            "group": "",
            "meta_hide": False,
        }
        self.state.applications[wanted.slug] = app
        return self._send(ak.Application, ser.application_json(app), 201)

    def get_application(self, request: Request, body: Any, user: dict[str, Any], slug: str) -> Response:
        self._require(user, "authentik_core.view_application")
        if slug not in self.state.applications:
            raise Refusal(404, "No Application matches the given query.")
        return self._send(ak.Application, ser.application_json(self.state.applications[slug]))

    def delete_application(self, request: Request, body: Any, user: dict[str, Any], slug: str) -> Response:
        self._require(user, "authentik_core.delete_application")
        if self.state.applications.pop(slug, None) is None:
            raise Refusal(404, "No Application matches the given query.")
        return Response(status_code=204)

    def create_provider(self, request: Request, body: Any, user: dict[str, Any]) -> Response:
        self._require(user, "authentik_providers_oauth2.add_oauth2provider")
        wanted = ak.OAuth2ProviderRequest.from_dict(body)
        flows = {f["pk"] for f in self.state.flows}
        if str(wanted.authorization_flow) not in flows or str(wanted.invalidation_flow) not in flows:
            raise Refusal(400, "Invalid flow.")
        pk = self.state.pk()
        provider = {
            "pk": pk,
            "name": wanted.name,
            "authentication_flow": None,
            "authorization_flow": str(wanted.authorization_flow),
            "invalidation_flow": str(wanted.invalidation_flow),
            "property_mappings": [str(m) for m in wanted.property_mappings or []],
            "client_type": (wanted.client_type.value if wanted.client_type else "confidential"),
            "grant_types": ["authorization_code", "refresh_token"],
            "client_id": wanted.client_id or random_secret(40),
            "client_secret": wanted.client_secret or random_secret(128),
            "access_code_validity": "minutes=1",
            "access_token_validity": "hours=1",
            "refresh_token_validity": "days=30",
            "refresh_token_threshold": "seconds=0",
            "include_claims_in_id_token": bool(wanted.include_claims_in_id_token),
            "signing_key": str(wanted.signing_key) if wanted.signing_key else None,
            "encryption_key": None,
            "redirect_uris": [
                {"matching_mode": r.matching_mode.value, "url": r.url} for r in wanted.redirect_uris
            ],
            "logout_uri": "",
            "logout_method": "backchannel",
            "sub_mode": "hashed_user_id",
            "issuer_mode": "per_provider",
            "jwt_federation_sources": [],
            "jwt_federation_providers": [],
        }
        self.state.providers[pk] = provider
        return self._send(ak.OAuth2Provider, ser.provider_json(self.state, provider), 201)

    def _provider_or_404(self, pk: str) -> dict[str, Any]:
        if not pk.isdigit() or int(pk) not in self.state.providers:
            raise Refusal(404, "No OAuth2 Provider matches the given query.")
        return self.state.providers[int(pk)]

    def get_provider(self, request: Request, body: Any, user: dict[str, Any], pk: str) -> Response:
        self._require(user, "authentik_providers_oauth2.view_oauth2provider")
        return self._send(
            ak.OAuth2Provider, ser.provider_json(self.state, self._provider_or_404(pk))
        )  # secret in clear

    def patch_provider(self, request: Request, body: Any, user: dict[str, Any], pk: str) -> Response:
        self._require(user, "authentik_providers_oauth2.change_oauth2provider")
        provider = self._provider_or_404(pk)
        patch = ak.PatchedOAuth2ProviderRequest.from_dict(body)
        if patch.client_secret is not None:
            provider["client_secret"] = patch.client_secret
        if patch.redirect_uris is not None:
            provider["redirect_uris"] = [
                {"matching_mode": r.matching_mode.value, "url": r.url} for r in patch.redirect_uris
            ]
        return self._send(ak.OAuth2Provider, ser.provider_json(self.state, provider))

    def delete_provider(self, request: Request, body: Any, user: dict[str, Any], pk: str) -> Response:
        self._require(user, "authentik_providers_oauth2.delete_oauth2provider")
        self._provider_or_404(pk)
        del self.state.providers[int(pk)]
        for app in self.state.applications.values():
            if app["provider"] == int(pk):
                app["provider"] = None
        return Response(status_code=204)

    def setup_urls(self, request: Request, body: Any, user: dict[str, Any], pk: str) -> Response:
        self._require(user, "authentik_providers_oauth2.view_oauth2provider")
        provider = ser.provider_json(self.state, self._provider_or_404(pk))
        base = str(request.base_url).rstrip("/")
        slug = provider["assigned_application_slug"] or "-"
        data = {
            "issuer": f"{base}/application/o/{slug}/",
            "authorize": f"{base}/application/o/authorize/",
            "token": f"{base}/application/o/token/",
            "user_info": f"{base}/application/o/userinfo/",
            "provider_info": f"{base}/application/o/{slug}/.well-known/openid-configuration",
            "logout": f"{base}/application/o/{slug}/end-session/",
            "jwks": f"{base}/application/o/{slug}/jwks/",
            "dcr_registration": None,
        }
        return self._send(ak.OAuth2ProviderSetupURLs, data)

    def list_flows(self, request: Request, body: Any, user: dict[str, Any]) -> Response:
        self._require(user, "authentik_flows.view_flow")
        slug = request.query_params.get("slug")
        flows = [f for f in self.state.flows if slug is None or f["slug"] == slug]
        return self._send(ak.PaginatedFlowList, ser.page(request, flows))

    def list_keypairs(self, request: Request, body: Any, user: dict[str, Any]) -> Response:
        self._require(user, "authentik_crypto.view_certificatekeypair")
        pairs = self.state.keypairs
        if request.query_params.get("has_key") == "true":
            pairs = [p for p in pairs if p["private_key_available"]]
        return self._send(ak.PaginatedCertificateKeyPairList, ser.page(request, pairs))

    def list_scope_mappings(self, request: Request, body: Any, user: dict[str, Any]) -> Response:
        self._require(user, "authentik_providers_oauth2.view_scopemapping")
        managed = request.query_params.getlist("managed")
        found = [m for m in self.state.scope_mappings if not managed or m["managed"] in managed]
        return self._send(ak.PaginatedScopeMappingList, ser.page(request, found))

    def list_devices(self, request: Request, body: Any, user: dict[str, Any]) -> Response:
        for kind in ("totp", "static", "webauthn"):
            app, model, _ = DEVICE_KINDS[kind]
            self._require(user, f"{app}.view_{model}")
        owner = request.query_params.get("user")
        devices = [d for d in self.state.devices if owner is None or str(d["user"]) == owner]
        return self._send(ak.Device, [ser.device_json(d) for d in devices])

    def delete_device(
        self, request: Request, body: Any, user: dict[str, Any], kind: str, pk: str
    ) -> Response:
        if kind not in DEVICE_KINDS:
            raise Refusal(404, "no such device type")
        app, model, _ = DEVICE_KINDS[kind]
        self._require(user, f"{app}.delete_{model}")
        match = [d for d in self.state.devices if str(d["pk"]) == pk and d["kind"] == kind]
        if not match:
            raise Refusal(404, "No Device matches the given query.")
        self.state.devices.remove(match[0])
        return Response(status_code=204)

    def role_permissions(self, request: Request, body: Any, user: dict[str, Any]) -> Response:
        role = self.state.roles.get(request.query_params.get("role", ""))
        perms = sorted(role["perms"]) if role else []
        items = []
        for number, perm in enumerate(perms, start=1):
            app, _, codename = perm.partition(".")
            model = codename.split("_", 1)[1] if "_" in codename else codename
            items.append(
                {
                    "id": number,
                    "name": codename.replace("_", " "),
                    "codename": codename,
                    "model": model,
                    "app_label": app,
                    "app_label_verbose": app,
                    "model_verbose": model,
                }
            )
        return self._send(ak.PaginatedPermissionList, ser.page(request, items))

    def role_object_permissions(self, request: Request, body: Any, user: dict[str, Any]) -> Response:
        role = self.state.roles.get(request.query_params.get("uuid", ""))
        items = []
        for number, (perm, model, object_pk) in enumerate(role["object_perms"] if role else [], start=1):
            app, _, codename = perm.partition(".")
            items.append(
                {
                    "id": number,
                    "codename": codename,
                    "model": model,
                    "app_label": app,
                    "object_pk": object_pk,
                    "name": codename.replace("_", " "),
                    "app_label_verbose": app,
                    "model_verbose": model,
                    "object_description": None,
                }
            )
        return self._send(ak.PaginatedExtraRoleObjectPermissionList, ser.page(request, items))
