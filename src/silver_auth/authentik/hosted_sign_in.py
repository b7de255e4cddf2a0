"""Hosted end-user sign-in through the project's Authentik application (SILVER_IDENTITY=authentik).

The hosted pages send the browser to Authentik (code + PKCE S256, state, nonce); the callback trades
the code server-side with the project's sealed client secret (G10), verifies the ID token, and finds
or creates the end-user by its OIDC `sub`. The session that follows is the builtin one, so the
customer's code exchange, refresh, JWT and JWKS are the same for both backends.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from silver_auth.accounts.service import normalize_email
from silver_auth.audit.service import Actor
from silver_auth.authentik.applications import (
    AuthentikApplications,
    authentik_issuer,
    end_user_authorize_url,
    hosted_callback,
)
from silver_auth.authentik.login_states import LoginStarted, LoginStates
from silver_auth.authentik.models import AuthentikApplication, OidcLogin
from silver_auth.authentik.oidc import OidcClient, RelyingParty, SignInFailed
from silver_auth.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from silver_auth.endusers import service
from silver_auth.endusers.models import EndUser
from silver_auth.endusers.service import ProjectEnvironment
from silver_auth.projects.models import Project
from silver_auth.settings import Settings

VIA = "authentik"


class NotConnected(NotFound):
    """The project has no Authentik application yet (made before the switch to Authentik)."""


async def application(db: AsyncSession, settings: Settings, project_id: str) -> AuthentikApplication:
    row = await db.get(AuthentikApplication, project_id) if settings.identity == "authentik" else None
    if row is None:
        raise NotConnected(
            "this project is not connected to Authentik yet; the operator runs "
            "`silver-auth authentik provision-missing`"
        )
    return row


async def start(
    db: AsyncSession,
    settings: Settings,
    project: Project,
    *,
    environment: str,
    redirect_url: str,
    client_state: str,
    client_challenge: str,
    client_authorization: str = "",
) -> LoginStarted:
    """Record the login (the caller checked redirect_url against the allowlist) and build the
    authorize URL of the project's Authentik application."""
    row = await application(db, settings, project.id)
    states = LoginStates(settings)
    login, state = await states.begin(
        db,
        project_id=project.id,
        environment=environment,
        redirect_url=redirect_url or None,
        client_state=client_state or None,
        client_challenge=client_challenge or None,
        client_authorization=client_authorization or None,
    )
    url = end_user_authorize_url(
        settings,
        row,
        project,
        redirect_uri=hosted_callback(settings, project.id),
        state=state,
        nonce=login.nonce,
        code_challenge=create_s256_code_challenge(login.code_verifier),
    )
    return LoginStarted(url, states.cookie_for(state))


def client_for(applications: AuthentikApplications, row: AuthentikApplication) -> OidcClient:
    """The project's application as a relying party: its issuer, client id and unsealed secret."""
    settings = applications.settings
    party = RelyingParty(
        issuer=authentik_issuer(settings, row.application_slug),
        client_id=row.client_id,
        client_secret=applications.client_secret(row),
        redirect_uri=hosted_callback(settings, row.project_id),
    )
    return OidcClient(settings, party)


async def finish(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    applications: AuthentikApplications,
    project_id: str,
    *,
    code: str | None,
    state: str | None,
    error: str | None,
    cookie: str | None,
) -> tuple[Project, dict[str, Any], OidcLogin]:
    """Use up the state (this browser, this project, once), then trade the code and verify the ID
    token with the project's application: (project, claims, login)."""
    settings = applications.settings
    states = LoginStates(settings)
    login = await states.claim(sessionmaker, state=state, cookie=cookie, project_id=project_id)
    project = await db.get(Project, project_id)
    if project is None:  # deleted while the user was at Authentik
        raise NotFound("this project does not exist any more")
    client = client_for(applications, await application(db, settings, project.id))
    return project, await states.exchange(client, login, code=code, error=error), login


async def end_user_for(
    db: AsyncSession, scope: ProjectEnvironment, claims: dict[str, Any], *, ip: str | None
) -> EndUser:
    """The project environment's end-user with this `sub`, created on first sign-in within the plan's
    quota; a banned one is refused (G29)."""
    subject = str(claims["sub"])
    user = await db.scalar(
        select(EndUser).where(
            EndUser.project_id == scope.project_id,
            EndUser.environment == scope.environment,
            EndUser.external_subject == subject,
        )
    )
    if user is None:
        email_claim = claims.get("email")
        if not isinstance(email_claim, str) or not email_claim:
            raise SignInFailed("Authentik sent no email address: grant the application the email scope")
        try:
            email = normalize_email(email_claim)
        except InvalidInput:
            raise SignInFailed("Authentik sent an email address that is not valid") from None
        taken = await db.scalar(
            select(EndUser.id).where(
                EndUser.project_id == scope.project_id,
                EndUser.environment == scope.environment,
                EndUser.email == email,
            )
        )
        if taken is not None:
            # Never link by email: an Authentik user who can set any address would take the account over.
            raise Conflict("an account with this email exists already and is not linked to this sign-in")
        user = await service.create_user(
            db, scope, email, None, actor=Actor("anonymous", ip), via=VIA, external_subject=subject
        )
    if user.banned_at is not None:
        raise Forbidden("this account cannot sign in to this project")
    return user


def signed_in_with_mfa(claims: dict[str, Any]) -> bool:
    """Authentik's `amr` says whether a second factor was used."""
    amr = claims.get("amr")
    return isinstance(amr, list) and "mfa" in amr
