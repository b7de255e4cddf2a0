"""`silver-auth doctor`: check every line of the hardening guide on this deployment (table or JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from silver_auth.cli.base import ResolveOption, fail, out, run, settings_or_exit
from silver_auth.settings import Settings

if TYPE_CHECKING:
    from silver_auth.ops.doctor import DoctorReport


def _https_url(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    if not value.startswith("https://") or len(value) <= len("https://"):
        raise fail(f"{option} must be an https:// URL (the public URL Caddy serves)", code=2)
    return value


def doctor(  # noqa: PLR0917 - one parameter per option, as Typer reads them
    url: Annotated[
        str | None, typer.Option("--url", help="The auth host's public https:// URL: the live edge (G1-G3).")
    ] = None,
    accounts_url: Annotated[
        str | None, typer.Option("--accounts-url", help="The accounts host's public https:// URL.")
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            "--ca-file", help="The CA of the edge's certificate (a private CA, Caddy's internal one)."
        ),
    ] = None,
    http_port: Annotated[
        int,
        typer.Option("--http-port", help="The edge's plain-http port, to see it redirect.", min=1, max=65535),
    ] = 80,
    checkout: Annotated[
        Path | None, typer.Option("--checkout", help="A source checkout whose README is checked too (L8).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object: every guide line with its status.")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    resolve: ResolveOption = None,
) -> None:
    """Check every line of the hardening guide this deployment can show (settings, file modes, listening
    sockets, the live edge, identity, webhooks, limiter, backups and drills, alerts, plans, docs); lines
    it cannot see are named as the code's or an operator step with its runbook. Exit 1 on any fail."""
    from silver_auth.ops.doctor import DoctorOptions, run_doctor  # noqa: PLC0415 - keep `--help` fast
    from silver_auth.ops.probing import ResolveError, parse_resolve  # noqa: PLC0415

    if ca_file is not None and not ca_file.is_file():
        raise fail(f"--ca-file {ca_file} is not a readable file", code=2)
    try:
        pins = parse_resolve(resolve or ())
    except ResolveError as exc:
        raise fail(str(exc), code=2) from None
    options = DoctorOptions(
        url=_https_url(url, "--url"),
        accounts_url=_https_url(accounts_url, "--accounts-url"),
        ca_file=ca_file,
        http_port=http_port,
        checkout=checkout,
        pins=pins,
    )

    async def work(settings: Settings) -> DoctorReport:
        return await run_doctor(settings, options)

    # The database is one of the things checked: a missing one is a finding, not a refusal to run.
    report = run(work, settings=settings_or_exit(new_database=True, generate=False))
    if as_json:
        typer.echo(report.json_text())
    else:
        report.print_table(out)
    raise typer.Exit(report.exit_code(strict=strict))


def register(app: typer.Typer) -> None:
    app.command()(doctor)
