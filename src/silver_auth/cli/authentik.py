"""`silver-auth authentik …`: the Authentik identity engine (G8, G9)."""

from __future__ import annotations

from typing import Any

import typer

from silver_auth.cli.base import database, err, fail, out, run
from silver_auth.core.errors import ProblemError
from silver_auth.settings import Settings

authentik_app = typer.Typer(help="The Authentik identity engine.", no_args_is_help=True)


@authentik_app.command("check-token")
def authentik_check_token() -> None:
    """Print the provisioning token's effective permissions; exit 1 if it holds more than provisioning
    needs (G8), or lacks some of it."""

    async def work(settings: Settings) -> Any:
        from silver_auth.identity.providers.authentik import build_authentik_provider  # noqa: PLC0415

        if not settings.authentik_url or settings.authentik_token is None:
            raise ProblemError("set SILVER_AUTHENTIK_URL and SILVER_AUTHENTIK_TOKEN first")
        provider = build_authentik_provider(settings)
        try:
            return await provider.server_version(), await provider.token_report()
        finally:
            provider.close()

    version, report = run(work, new_database=True)  # asks Authentik only
    out.print(f"Authentik {version}; token user {report.username}", markup=False)
    out.print(f"roles: {', '.join(report.roles) or '(none)'}", markup=False)
    out.print("global permissions:", markup=False)
    for perm in report.global_permissions or ["(none)"]:
        out.print(f"  {perm}", markup=False)
    out.print("object permissions:", markup=False)
    for item in report.object_permissions:
        out.print(f"  {item.permission} on {item.model} {item.object_pk}", markup=False)
    if not report.object_permissions:
        out.print("  (none)", markup=False)
    for line in report.beyond:
        err.print(f"beyond the needed set: {line}", markup=False, highlight=False)
    for perm in report.missing:
        err.print(f"missing: {perm}", markup=False, highlight=False)
    if report.over_privileged:
        raise fail(
            f"the token is over-privileged ({len(report.beyond)} finding(s)); G8 wants least privilege"
        )
    if report.missing:
        raise fail(f"the token lacks {len(report.missing)} permission(s) provisioning needs")
    out.print("the token holds exactly what provisioning needs (G8)", markup=False)


@authentik_app.command("provision-missing")
def authentik_provision_missing() -> None:
    """Give every project without one its Authentik OAuth2 provider and application."""

    async def work(settings: Settings) -> list[str]:
        from silver_auth.audit.service import CLI_ACTOR  # noqa: PLC0415
        from silver_auth.authentik.applications import AuthentikApplications, provision_missing  # noqa: PLC0415
        from silver_auth.core.crypto import Sealer  # noqa: PLC0415
        from silver_auth.identity.providers.authentik import build_authentik_provider  # noqa: PLC0415

        if settings.identity != "authentik" or not settings.authentik_url or settings.authentik_token is None:
            raise ProblemError(
                "set SILVER_IDENTITY=authentik, SILVER_AUTHENTIK_URL and SILVER_AUTHENTIK_TOKEN"
            )
        provider = build_authentik_provider(settings)
        try:
            async with database(settings) as sessionmaker:
                applications = AuthentikApplications(provider, settings, Sealer(settings.sealing_key_ring()))
                return await provision_missing(sessionmaker, applications, actor=CLI_ACTOR)
        finally:
            provider.close()

    done = run(work)
    for project_id in done:
        out.print(f"provisioned {project_id}", markup=False)
    out.print(f"{len(done)} project(s) provisioned in Authentik", markup=False)
