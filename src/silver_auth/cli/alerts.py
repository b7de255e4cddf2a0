"""`silver-auth alerts …`: prove the alert channels work, and read the recorded alerts (L2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from silver_auth.cli.base import database, fail, out, run, settings_or_exit
from silver_auth.settings import Settings

if TYPE_CHECKING:
    from silver_auth.alerts.schemas import AlertPage
    from silver_auth.alerts.service import TestAlertReport

alerts_app = typer.Typer(
    help="Alert channels (SILVER_ALERT_URLS) and the recorded alerts.", no_args_is_help=True
)


@alerts_app.command("test")
def alerts_test() -> None:
    """Send a test alert to every channel of SILVER_ALERT_URLS now and print each one's outcome; exit 1
    when none is configured or any failed. Channels are shown as scheme://host only (G28)."""
    from silver_auth.alerts.service import send_test_alert  # noqa: PLC0415 - keep `--help` fast

    if not settings_or_exit().alert_channel_urls():
        raise fail("no alert channel configured: set SILVER_ALERT_URLS to one or more apprise URLs (L2)")

    async def work(settings: Settings) -> TestAlertReport:
        async with database(settings) as sessionmaker:
            return await send_test_alert(sessionmaker, settings)

    report = run(work)
    for outcome in report.outcomes:
        service = f" ({outcome.service})" if outcome.service else ""
        status = "sent" if outcome.sent else f"failed: {outcome.error or 'no reason given'}"
        out.print(f"#{outcome.index} {outcome.channel}{service}: {status}", markup=False)
    failed = [outcome for outcome in report.outcomes if not outcome.sent]
    if failed:
        raise fail(
            f"{len(failed)} of {len(report.outcomes)} channel(s) failed (recorded as {report.alert_id})"
        )
    out.print(f"test alert {report.alert_id} sent to {len(report.outcomes)} channel(s)", markup=False)


@alerts_app.command("list")
def alerts_list(
    limit: Annotated[int, typer.Option(help="How many, newest first.", min=1, max=200)] = 20,
    standing: Annotated[bool, typer.Option("--standing", help="Only alerts not cleared.")] = False,
) -> None:
    """The recorded alerts, newest first: state, occurrences, and how each channel answered."""
    from silver_auth.alerts.service import list_alerts  # noqa: PLC0415

    async def work(settings: Settings) -> AlertPage:
        async with database(settings) as sessionmaker, sessionmaker() as db:
            return await list_alerts(db, limit=limit, offset=0, state="standing" if standing else None)

    page = run(work)
    for alert in page.items:
        sent = sum(d.status == "sent" for d in alert.deliveries)
        first_line = alert.message.splitlines()[0] if alert.message else ""
        out.print(
            f"{alert.id}  {alert.kind}  {alert.subject}  {alert.state}  "
            f"raised {alert.raised_at:%Y-%m-%d %H:%M}Z  seen {alert.occurrences}x  "
            f"delivered {sent}/{len(alert.deliveries)}  {first_line}",
            markup=False,
        )
    out.print(f"{len(page.items)} alert(s)", markup=False)
