"""The public JWKS of a project, and signing keys in the console (list: viewer; rotate: admin)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from silver_auth.accounts.guards import ConsoleContext
from silver_auth.core.errors import NotFound
from silver_auth.core.ids import looks_like
from silver_auth.orgs.guards import ADMIN, VIEWER
from silver_auth.projects.service import get_project
from silver_auth.settings import Settings
from silver_auth.signing import service
from silver_auth.signing.models import SigningKey
from silver_auth.signing.schemas import JwkSet, SigningKeyPage, SigningKeyPublic

# Short: a rotation's new key must reach verifiers soon; they should also refetch on an unknown kid.
JWKS_CACHE_CONTROL = "public, max-age=60"
JWK_SET_MEDIA_TYPE = "application/jwk-set+json"
"""RFC 7517 8.5: the JWKS's own media type, answered and documented."""


# The body is the service's dict; JwkSet documents its shape (the test of the document checks it).
JWKS_RESPONSES = {
    200: ResponseSpec(
        JwkSet, description="The project's JWK Set", media_type=JWK_SET_MEDIA_TYPE, generate_examples=False
    )
}


def signing_key_public(key: SigningKey) -> SigningKeyPublic:
    return SigningKeyPublic(
        kid=key.id,
        algorithm=key.algorithm,
        status=service.signing_key_status(key),
        created_at=key.created_at,
        rotated_at=key.rotated_at,
        retire_at=key.retire_at,
    )


@get(
    "/v1/projects/{project_id:str}/jwks.json",
    tags=["public"],
    summary="Public keys of the project's session JWTs",
    media_type=JWK_SET_MEDIA_TYPE,
    responses=JWKS_RESPONSES,
)
async def jwks(
    project_id: FromPath[str], db: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
) -> Response[dict[str, Any]]:
    if not looks_like("prj", project_id):
        raise NotFound("no such project")
    project = await get_project(db, project_id)
    body = await service.published_jwks(db, settings, project)
    return Response(body, media_type=JWK_SET_MEDIA_TYPE, headers={"Cache-Control": JWKS_CACHE_CONTROL})


class SigningKeyController(Controller):
    path = "/console/api/projects/{project_id:str}/signing-keys"
    tags = ["console: signing keys"]

    @get("/", opt=VIEWER, summary="Signing keys of a project (kid, algorithm, status; never key material)")
    async def list_keys(self, project_id: FromPath[str], db: NamedDependency[AsyncSession]) -> SigningKeyPage:
        return SigningKeyPage(items=[signing_key_public(k) for k in await service.all_keys(db, project_id)])

    @post(
        "/rotate",
        opt=ADMIN,
        status_code=201,
        summary="Rotate: a new current key; the old one stays published until its tokens expire",
    )
    async def rotate(
        self,
        project_id: FromPath[str],
        console: NamedDependency[ConsoleContext],
        db: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> SigningKeyPublic:
        project = await get_project(db, project_id)
        return signing_key_public(await service.rotate(db, settings, project, actor=console.actor))
