"""`silver-auth edge …`: the blocklist of hostile sources that Caddy refuses at the edge (G39)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from silver_auth.cli.base import err, fail, out
from silver_auth.settings import Settings, environment_settings

if TYPE_CHECKING:
    from silver_auth.ops.edge import Change

edge_app = typer.Typer(
    help="The edge (Caddy): block hostile sources before they reach the API (G39).", no_args_is_help=True
)

Address = Annotated[str, typer.Argument(help="An IP address (203.0.113.7) or network (198.51.100.0/24).")]
Reload = Annotated[
    bool, typer.Option("--reload", help="Then run SILVER_EDGE_RELOAD so Caddy applies the list now.")
]


def _edge_settings() -> Settings:
    """The settings as the environment gives them: these commands touch no database and no data dir."""
    try:
        return environment_settings()
    except ValidationError as exc:
        names = ", ".join(
            ".".join(str(part) for part in error["loc"])
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        raise fail(f"invalid setting {names}") from None


def _apply(change: Change, settings: Settings, reload: bool, *, blocked: bool) -> None:
    from silver_auth.ops.edge import BlocklistError, is_internal, reload_edge  # noqa: PLC0415

    out.print(f"{change.message} ({settings.edge_blocklist})", markup=False)
    if blocked and change.changed and is_internal(change.network):
        err.print(
            f"note: {change.network} is a loopback or private range; behind another proxy or Docker's "
            "userland proxy that may be every client (docs/deployment.md#blocking-hostile-sources)",
            markup=False,
        )
    if reload:
        try:
            reload_edge(settings.edge_reload)
        except BlocklistError as exc:
            raise fail(f"{exc} (the list is written; reload Caddy by hand)") from None
        out.print("edge reloaded", markup=False)
    elif change.changed:
        out.print("Caddy applies it on its next reload (--reload, or: systemctl reload caddy)", markup=False)


@edge_app.command("block")
def edge_block(
    address: Address,
    reason: Annotated[str, typer.Option("--reason", help="Why, kept beside the entry.")] = "",
    reload: Reload = False,
) -> None:
    """Refuse every request from ADDRESS with 403 at the edge. Idempotent: an address already covered
    by the list is left as it is."""
    from silver_auth.core import clock  # noqa: PLC0415
    from silver_auth.ops.edge import BlocklistError, block  # noqa: PLC0415

    settings = _edge_settings()
    try:
        change = block(settings.edge_blocklist, address, reason, clock.now())
    except BlocklistError as exc:
        raise fail(str(exc)) from None
    _apply(change, settings, reload, blocked=True)


@edge_app.command("unblock")
def edge_unblock(address: Address, reload: Reload = False) -> None:
    """Take ADDRESS off the blocklist (exactly as it was blocked). Idempotent."""
    from silver_auth.ops.edge import BlocklistError, unblock  # noqa: PLC0415

    settings = _edge_settings()
    try:
        change = unblock(settings.edge_blocklist, address)
    except BlocklistError as exc:
        raise fail(str(exc)) from None
    _apply(change, settings, reload, blocked=False)


@edge_app.command("blocklist")
def edge_blocklist(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, for scripts.")] = False,
) -> None:
    """The blocked sources: network, when it was added, why."""
    from silver_auth.ops.edge import BlocklistError, read_blocklist  # noqa: PLC0415

    settings = _edge_settings()
    try:
        entries = read_blocklist(settings.edge_blocklist)
    except BlocklistError as exc:
        raise fail(str(exc)) from None
    if as_json:
        rows = [{"network": str(e.network), "added": e.added or None, "reason": e.reason} for e in entries]
        typer.echo(json.dumps(rows))
        return
    if not entries:
        out.print(f"no source is blocked ({settings.edge_blocklist})", markup=False)
        return
    width = max(len(str(entry.network)) for entry in entries)
    for entry in entries:
        added = entry.added or "by hand"
        out.print(f"{entry.network!s:<{width}}  {added:<20}  {entry.reason}".rstrip(), markup=False)
