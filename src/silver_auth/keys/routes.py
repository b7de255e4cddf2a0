"""API keys in the console, and the backend-key check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.types import Scope
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.keys import service
from silver_auth.keys.guards import SECRET_KEY_ACCESS, remembered, require_secret_key
from silver_auth.keys.models import ApiKey
from silver_auth.keys.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPage,
    ApiKeyPublic,
    ApiKeyRotate,
    ApiKeyRotated,
    BackendKey,
    BackendProject,
    BackendProjectAnswer,
)
from silver_auth.keys.service import KeyService
from silver_auth.keys.verifier import KeyPrincipal
from silver_auth.orgs.guards import DEVELOPER, VIEWER, resolves_org
from silver_auth.projects.service import get_project
from silver_auth.runtime import scope_runtime
from silver_auth.web.deps import bearer_token, set_actor
from silver_auth.web.hot import hot_answer
from silver_auth.web.openapi import OVER_QUOTA, problem


def api_key_public(key: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.id,
        project_id=key.project_id,
        kind=key.kind,
        environment=key.environment,
        prefix=key.prefix,
        name=key.name,
        status=service.api_key_status(key),
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        replaced_by=key.replaced_by,
        publishable_key=key.publishable_key,
    )


def api_key_created(issued: service.IssuedKey) -> ApiKeyCreated:
    public = api_key_public(issued.key)
    return ApiKeyCreated(**msgspec.structs.asdict(public), key=issued.raw)


class KeyController(Controller):
    path = "/console/api"
    tags = ["console: keys"]

    @get("/projects/{project_id:str}/keys", opt=VIEWER, summary="Keys of a project (display prefixes only)")
    async def list_keys(self, project_id: FromPath[str], db: NamedDependency[AsyncSession]) -> ApiKeyPage:
        return ApiKeyPage(items=[api_key_public(k) for k in await service.list_keys(db, project_id)])

    @post(
        "/projects/{project_id:str}/keys",
        opt=DEVELOPER,
        summary="Create a key (a secret key is shown once)",
        responses={403: OVER_QUOTA},
    )
    async def create_key(
        self,
        project_id: FromPath[str],
        data: JSONBody[ApiKeyCreate],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        key_service: NamedDependency[KeyService],
    ) -> ApiKeyCreated:
        project = await get_project(db, project_id)
        issued = await key_service.create(
            project, data.kind, data.environment, name=data.name, actor=console.actor
        )
        return api_key_created(issued)

    @post(
        "/keys/{key_id:str}/rotate",
        opt=DEVELOPER,
        status_code=201,
        summary="Rotate a key: a new key now, the old one for a grace period",
        responses={409: problem("the key is revoked, expiring or was already rotated (`conflict`)")},
    )
    async def rotate_key(
        self,
        key_id: FromPath[str],
        data: JSONBody[ApiKeyRotate],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        key_service: NamedDependency[KeyService],
    ) -> ApiKeyRotated:
        issued, old = await key_service.rotate(
            await service.get_key(db, key_id), grace_seconds=data.grace_seconds, actor=console.actor
        )
        return ApiKeyRotated(new=api_key_created(issued), old=api_key_public(old))

    @delete("/keys/{key_id:str}", opt=DEVELOPER, status_code=200, summary="Revoke a key at once")
    async def revoke_key(
        self,
        key_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        key_service: NamedDependency[KeyService],
    ) -> ApiKeyPublic:
        key = await key_service.revoke(await service.get_key(db, key_id), actor=console.actor)
        return api_key_public(key)


resolves_org("key_id", service.org_of_key)


def backend_project_answer(key: KeyPrincipal) -> BackendProjectAnswer:
    expires = datetime.fromtimestamp(key.expires_at, tz=UTC) if key.expires_at is not None else None
    return BackendProjectAnswer(
        project=BackendProject(id=key.project_id, name=key.project_name, org_id=key.org_id),
        environment=key.environment,
        key=BackendKey(id=key.key_id, prefix=key.prefix, expires_at=expires),
    )


def _backend_project_hot(scope: Scope) -> BackendProjectAnswer | None:
    key = remembered(scope, "secret")
    if key is None:
        raw = bearer_token(scope)
        key = None if raw is None else scope_runtime(scope).keys.cached(raw, "secret")
    if key is None:
        return None
    set_actor(scope, key.key_id)
    return backend_project_answer(key)


@get(
    "/v1/backend/project",
    tags=["backend"],
    summary="The backend-key check: the project and environment of this secret key",
    opt=SECRET_KEY_ACCESS,
    middleware=[hot_answer(_backend_project_hot)],
)
async def backend_project(request: Request[Any, Any, Any]) -> BackendProjectAnswer:
    return backend_project_answer(await require_secret_key(request))
