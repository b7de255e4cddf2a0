"""Alert tests' helpers: a real JSON receiver on loopback as the channel (apprise `json://`), an app whose
lifespan runs the dispatcher, and reads of the alert records."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import select

from silver_auth.alerts.dispatcher import drain
from silver_auth.alerts.models import Alert, AlertDelivery
from silver_auth.alerts.service import clear_alert, raise_alert
from tests.conftest import AppPool, base_settings
from tests.factories import Harness
from tests.webhooks.support import Receiver

__all__ = ["Receiver"]


def json_url(target: Receiver) -> str:
    """The receiver as an apprise channel: `json://` posts apprise's JSON body over plain http."""
    return target.url.replace("http://", "json://", 1)


def port_of(target: Receiver) -> int:
    return int(target.url.rsplit(":", 1)[1].split("/", 1)[0])


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def messages(target: Receiver) -> list[dict[str, Any]]:
    """What the channel received: apprise's JSON body (`title`, `message`, `type`)."""
    return [json.loads(got.body) for got in target.received]


def subject() -> str:
    """A subject of this test alone: the process remembers standing alerts across tests."""
    return f"subject-{secrets.token_hex(4)}"


@contextmanager
def alerting(
    apps: AppPool, tmp_path: Path, database_url: str, *urls: str, **overrides: Any
) -> Iterator[Harness]:
    """The app with SILVER_ALERT_URLS set to `urls` (its lifespan starts the dispatcher), delivering
    no webhooks itself."""
    settings = base_settings(
        tmp_path,
        DATABASE_URL=database_url,
        SILVER_WEBHOOK_WORKER="external",
        SILVER_ALERT_TIMEOUT_SECONDS=5,
        **({"SILVER_ALERT_URLS": " ".join(urls)} if urls else {}),
        **overrides,
    )
    client: TestClient[Any]
    with apps.serve(settings) as client:
        yield Harness(client, client.app.state.runtime.settings)


def raise_now(harness: Harness, kind: str, subject: str, message: str, **context: Any) -> bool:
    """raise_alert from the app's event loop (as a request handler would), then wait for its sends."""

    async def work() -> bool:
        return raise_alert(kind, subject, message, **context)

    raised = harness.run(work)
    harness.run(drain)
    return raised


def clear_now(harness: Harness, kind: str, subject: str, message: str) -> bool:
    async def work() -> bool:
        return clear_alert(kind, subject, message)

    cleared = harness.run(work)
    harness.run(drain)
    return cleared


def alert_rows(harness: Harness, subject: str) -> list[tuple[Alert, list[AlertDelivery]]]:
    """The subject's alerts, oldest first, each with its deliveries in order."""

    async def work() -> list[tuple[Alert, list[AlertDelivery]]]:
        async with harness.runtime.sessionmaker() as db:
            alerts = list(
                await db.scalars(select(Alert).where(Alert.subject == subject).order_by(Alert.raised_at))
            )
            found = []
            for alert in alerts:
                deliveries = await db.scalars(
                    select(AlertDelivery)
                    .where(AlertDelivery.alert_id == alert.id)
                    .order_by(AlertDelivery.at, AlertDelivery.channel_index)
                )
                found.append((alert, list(deliveries)))
            return found

    return harness.run(work)
