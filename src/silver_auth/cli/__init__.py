"""The `silver-auth` command: one module per command group, sharing `cli.base` (output, one-line
failures, settings, the database). Each subcommand exits non-zero with a one-line reason on failure."""

from __future__ import annotations

import typer

from silver_auth.cli import backup, doctor, housekeeping, monitor, server, worker
from silver_auth.cli.accounts import account_app
from silver_auth.cli.alerts import alerts_app
from silver_auth.cli.audit import audit_app
from silver_auth.cli.authentik import authentik_app
from silver_auth.cli.edge import edge_app
from silver_auth.cli.secrets import secrets_app

app = typer.Typer(
    help="Silver Auth API (SEQN Auth).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
server.register(app)
app.add_typer(account_app, name="account")
app.add_typer(audit_app, name="audit")
app.add_typer(alerts_app, name="alerts")
housekeeping.register(app)
worker.register(app)
backup.register(app)
monitor.register(app)
doctor.register(app)
app.add_typer(authentik_app, name="authentik")
app.add_typer(secrets_app, name="secrets")
app.add_typer(edge_app, name="edge")


def main() -> None:
    app()
