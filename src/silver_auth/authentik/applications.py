"""Project provisioning in Authentik: create, keep redirect URIs in step, rotate the secret, delete (G8, G10).

Authentik is outside the database transaction, so every change there is undone when the transaction
does not commit (`on_rollback`), and a failure there rolls the transaction back: no half state on
either side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.audit.service import Actor, AuditAction, record
from silver_auth.authentik.models import AuthentikApplication
from silver_auth.core import clock, urls
from silver_auth.core.crypto import Sealer
from silver_auth.core.errors import InvalidInput, NotFound
from silver_auth.db.session import on_rollback, transaction
from silver_auth.projects.models import Project
from silver_auth.settings import Settings

if TYPE_CHECKING:  # authentik-client is only imported with the Authentik backend
    from silver_auth.authentik.provisioner import ProvisionedApplication
    from silver_auth.identity.providers.authentik import AuthentikProvider


class IdentityNotEnabled(NotFound):
    """The route belongs to the Authentik backend and this service runs the builtin one."""


def secret_context(project_id: str) -> str:
    return f"authentik-client-secret:{project_id}"


def hosted_callback(settings: Settings, project_id: str) -> str:
    """The auth host's own callback for the project's hosted sign-in."""
    return urls.hosted_oidc_callback(settings.auth_url, project_id)


def redirect_uris(settings: Settings, project: Project) -> list[str]:
    # Never an empty list: Authentik then saves the first redirect URI anyone uses. The hosted
    # callback is always there; the project's own allowlist follows, matched strictly.
    return [hosted_callback(settings, project.id), *project.redirect_urls]


def authentik_issuer(settings: Settings, slug: str) -> str:
    return f"{(settings.authentik_url or '').rstrip('/')}/application/o/{slug}/"


@dataclass(frozen=True, slots=True)
class AuthentikApplications:
    """The project lifecycle under Authentik: each project gets an OAuth2 provider and application (G8)."""

    provider: AuthentikProvider
    settings: Settings
    sealer: Sealer
    """Seals each application's client secret at rest (G10, G17)."""

    def seal_client_secret(self, project_id: str, secret: str) -> str:
        return self.sealer.seal(secret, secret_context(project_id))

    def client_secret(self, row: AuthentikApplication) -> str:
        """The clear secret, for server-side use only (the hosted pages' code exchange); never send it
        out."""
        return self.sealer.unseal(row.client_secret_sealed, secret_context(row.project_id))

    async def provision(self, db: AsyncSession, project: Project) -> object | None:
        made = await self.provider.provisioning.create_application(
            project.id, project.name, redirect_uris(self.settings, project)
        )

        async def undo() -> None:
            await self.provider.provisioning.delete_application(
                made.application_slug, made.provider_pk, best_effort=True
            )

        on_rollback(db, undo)
        return made

    async def provisioned(
        self, db: AsyncSession, project: Project, provisioned: object | None, *, actor: Actor
    ) -> None:
        made = cast("ProvisionedApplication", provisioned)  # what provision() returned
        db.add(
            AuthentikApplication(
                project_id=project.id,
                provider_pk=made.provider_pk,
                application_slug=made.application_slug,
                client_id=made.client_id,
                client_secret_sealed=self.seal_client_secret(project.id, made.client_secret),
                created_at=clock.now(),
                secret_rotated_at=None,
            )
        )
        await db.flush()
        await record(
            db,
            AuditAction.PROJECT_IDENTITY_PROVISIONED,
            actor=actor,
            org_id=project.org_id,
            project_id=project.id,
            target=project.id,
            metadata={"application": made.application_slug, "provider": made.provider_pk},
        )

    async def redirects_changing(self, db: AsyncSession, project: Project, redirect_urls: list[str]) -> None:
        row = await db.get(AuthentikApplication, project.id)
        if row is None:
            return
        before = redirect_uris(self.settings, project)
        after = [hosted_callback(self.settings, project.id), *redirect_urls]
        provisioning = self.provider.provisioning
        await provisioning.set_redirect_uris(row.provider_pk, after)

        async def undo() -> None:  # the change did not commit: Authentik goes back to the stored list
            await provisioning.set_redirect_uris(row.provider_pk, before)

        on_rollback(db, undo)

    async def deleting(self, db: AsyncSession, project: Project) -> None:
        """Delete in Authentik first: if that fails, the project stays (fail closed, no live orphan)."""
        row = await db.get(AuthentikApplication, project.id)
        if row is not None:
            await self.provider.provisioning.delete_application(row.application_slug, row.provider_pk)


async def provision_missing(
    sessionmaker: async_sessionmaker[AsyncSession], applications: AuthentikApplications, *, actor: Actor
) -> list[str]:
    """Provision every project that has no Authentik application yet (projects made before the switch
    to Authentik), one transaction each; returns the project ids provisioned."""
    async with sessionmaker() as db:
        missing = list(
            (
                await db.scalars(
                    select(Project.id)
                    .outerjoin(AuthentikApplication, AuthentikApplication.project_id == Project.id)
                    .where(AuthentikApplication.project_id.is_(None))
                    .order_by(Project.created_at)
                )
            ).all()
        )
    done = []
    for project_id in missing:
        async with transaction(sessionmaker) as db:
            project = await db.get(Project, project_id)
            if project is not None and await db.get(AuthentikApplication, project_id) is None:
                made = await applications.provision(db, project)
                await applications.provisioned(db, project, made, actor=actor)
                done.append(project_id)
    return done


async def get_application(
    db: AsyncSession, applications: AuthentikApplications | None, project_id: str
) -> AuthentikApplication:
    if applications is None:
        raise IdentityNotEnabled("this service does not use Authentik (SILVER_IDENTITY=builtin)")
    row = await db.get(AuthentikApplication, project_id)
    if row is None:
        raise NotFound("this project has no Authentik application")
    return row


async def rotate_secret(
    db: AsyncSession, applications: AuthentikApplications | None, project: Project, *, actor: Actor
) -> AuthentikApplication:
    """G9/G19: a new client secret in Authentik, sealed here; the old one stops working at once."""
    row = await get_application(db, applications, project.id)
    assert applications is not None
    provisioning = applications.provider.provisioning
    previous = applications.client_secret(row)
    secret = await provisioning.rotate_client_secret(row.provider_pk)

    async def undo() -> None:  # the transaction failed: Authentik goes back to the secret sealed here
        await provisioning.set_client_secret(row.provider_pk, previous, best_effort=True)

    on_rollback(db, undo)
    row.client_secret_sealed = applications.seal_client_secret(project.id, secret)
    row.secret_rotated_at = clock.now()
    await record(
        db,
        AuditAction.PROJECT_IDENTITY_SECRET_ROTATED,
        actor=actor,
        org_id=project.org_id,
        project_id=project.id,
        target=project.id,
        metadata={"application": row.application_slug},
    )
    return row


END_USER_SCOPES = "openid email profile"


def end_user_authorize_url(
    settings: Settings,
    row: AuthentikApplication,
    project: Project,
    *,
    redirect_uri: str,
    state: str,
    nonce: str,
    code_challenge: str,
) -> str:
    """The project's Authentik authorize URL for an end-user (code + PKCE S256), for the hosted pages.

    `code_challenge` is BASE64URL(SHA-256(verifier)) (RFC 7636); the caller keeps the verifier, state
    and nonce server-side. The redirect URI must be one the provider has, matched exactly.
    """
    if redirect_uri not in redirect_uris(settings, project):
        raise InvalidInput("redirect_uri is not one of the project's redirect URLs")
    query = urlencode(
        {
            "response_type": "code",
            "client_id": row.client_id,
            "redirect_uri": redirect_uri,
            "scope": END_USER_SCOPES,
            "state": state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{(settings.authentik_url or '').rstrip('/')}/application/o/authorize/?{query}"
