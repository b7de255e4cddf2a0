"""`silver-auth worker`: webhook delivery in a process of its own (SILVER_WEBHOOK_WORKER=external), and the
backup schedule (SILVER_BACKUP_INTERVAL_HOURS: L3)."""

from __future__ import annotations

import asyncio
import signal
from contextlib import suppress

import typer

from silver_auth.cli.base import database, out, run
from silver_auth.core.errors import ProblemError
from silver_auth.settings import Settings


def worker(
    once: bool = typer.Option(
        False, "--once", help="Deliver what is due now (and make a due backup), then exit."
    ),
) -> None:
    """Deliver webhooks: sequence the outbox, send what is due, retry on schedule. Run as many as you
    like on Postgres (they never claim the same delivery); one on SQLite. SIGTERM stops it cleanly.
    It also makes a backup every SILVER_BACKUP_INTERVAL_HOURS (one worker of many makes each; in
    development only once env.backup exists). Its alerts (failing endpoints, the backlog, failed or missed
    backups) go to SILVER_ALERT_URLS (L2)."""

    async def work(settings: Settings) -> None:
        from silver_auth.alerts.dispatcher import dispatching  # noqa: PLC0415 - keep `--help` fast
        from silver_auth.core.crypto import Sealer  # noqa: PLC0415
        from silver_auth.core.logging import configure_logging  # noqa: PLC0415
        from silver_auth.core.metrics import metrics_listener  # noqa: PLC0415
        from silver_auth.ops.backup.schedule import BackupSchedule, schedule_active  # noqa: PLC0415
        from silver_auth.webhooks.delivery import DeliveryWorker  # noqa: PLC0415

        configure_logging(settings.log_level, settings.log_format)
        if settings.is_production:  # L2: the service's own start-up check, for this process too
            from silver_auth.core.production_guard import alert_channel_violations  # noqa: PLC0415

            problems = alert_channel_violations(settings)
            if problems:
                raise ProblemError("refusing to start in production: " + "; ".join(problems))
        async with database(settings) as sessionmaker, dispatching(sessionmaker, settings):
            deliveries = DeliveryWorker(sessionmaker, Sealer(settings.sealing_key_ring()), settings)
            backups = BackupSchedule(sessionmaker, settings) if schedule_active(settings) else None
            if once:
                sent = await deliveries.run_until_idle()
                out.print(f"attempts made: {sent}")
                if backups is not None and (run_id := await backups.tick()) is not None:
                    out.print(f"scheduled backup run: {run_id}")
                return
            # A listener of its own (attempt outcomes, the backlog): on a host that also runs the API,
            # give the worker another SILVER_METRICS_PORT.
            with metrics_listener(settings, process="worker"):
                tasks = [asyncio.create_task(deliveries.run_forever())]
                if backups is not None:
                    tasks.append(asyncio.create_task(backups.run_forever()))
                loop = asyncio.get_running_loop()

                def stop_all() -> None:  # sends in flight and a backup in progress finish, then it stops
                    deliveries.stop()
                    if backups is not None:
                        backups.stop()

                for stop in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(stop, stop_all)
                schedule = (
                    f"backups every {settings.backup_interval_hours:g} h"
                    if backups is not None
                    else "no backups"
                )
                out.print(f"webhook worker running, {schedule} (SIGTERM to stop)")
                with suppress(asyncio.CancelledError):
                    await asyncio.gather(*tasks)
            out.print("webhook worker stopped")

    run(work)


def register(app: typer.Typer) -> None:
    app.command()(worker)
