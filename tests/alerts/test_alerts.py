"""L2: every alert goes through one path to an attended channel — here a real JSON receiver on loopback
reached through apprise's `json://` — deduplicated across processes in the database, recorded with
each channel's outcome, and redacted on the way (G28)."""

from __future__ import annotations

import asyncio
import base64
import secrets
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from silver_auth.alerts.dispatcher import AlertDispatcher, current, drain
from silver_auth.alerts.records import Notice
from silver_auth.alerts.service import list_alerts, raise_alert, standing
from silver_auth.core import clock
from silver_auth.core.logging import configure_logging
from silver_auth.db.engine import create_engine, create_sessionmaker
from tests.admin.support import ADMIN, platform_admin
from tests.alerts.support import (
    alert_rows,
    alerting,
    clear_now,
    closed_port,
    json_url,
    messages,
    port_of,
    raise_now,
    subject,
)
from tests.conftest import AppPool, base_settings
from tests.dbstate import snapshot
from tests.webhooks.support import receiver


def test_l2_an_alert_reaches_the_channel_and_is_recorded(
    apps: AppPool, tmp_path: Path, database_url: str
) -> None:
    about = subject()
    with receiver() as target, alerting(apps, tmp_path, database_url, json_url(target)) as harness:
        assert raise_now(harness, "webhook_backlog", about, "1200 deliveries waiting", backlog=1200)
        [got] = messages(target)
        alerts = alert_rows(harness, about)
        admin = platform_admin(harness)
        listed = admin.ok("GET", f"{ADMIN}/alerts?kind=webhook_backlog&state=standing")["items"]
    assert got["type"] == "failure"
    assert "webhook_backlog" in got["title"] and about in got["title"]
    assert "1200 deliveries waiting" in got["message"] and "backlog: 1200" in got["message"]
    [(alert, [delivery])] = alerts
    assert alert.id.startswith("alr_") and alert.id in got["message"]
    assert (alert.kind, alert.subject, alert.state, alert.occurrences) == (
        "webhook_backlog",
        about,
        "raised",
        1,
    )
    assert alert.context == {"backlog": 1200} and alert.notified_at is not None
    assert (delivery.event, delivery.status, delivery.error) == ("raised", "sent", None)
    # The channel as scheme://host only: not the apprise URL (its path and query hold the tokens).
    assert (delivery.channel, delivery.channel_index, delivery.service) == (
        f"json://127.0.0.1:{port_of(target)}",
        1,
        "JSON",
    )
    [shown] = [item for item in listed if item["subject"] == about]
    assert shown["id"] == alert.id and shown["state"] == "raised"
    assert [(d["event"], d["status"], d["channel"]) for d in shown["deliveries"]] == [
        ("raised", "sent", delivery.channel)
    ]


def test_g28_a_canary_secret_reaches_no_channel_row_answer_or_log(
    apps: AppPool, tmp_path: Path, database_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    key = "sk_live_" + secrets.token_hex(16)
    hook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    canaries = (key, hook_secret, key.removeprefix("sk_live_"), hook_secret.removeprefix("whsec_"))
    about = subject()
    with receiver() as target, alerting(apps, tmp_path, database_url, json_url(target)) as harness:
        configure_logging(harness.settings.log_level)  # to this test's stderr, which capfd reads
        raise_now(
            harness,
            "sustained_429",
            about,
            f"key {key} is flooding; its webhook signs with {hook_secret}",
            note=f"seen with {key}",
            token=hook_secret,
            nested={"values": [key, hook_secret]},
        )
        clear_now(harness, "sustained_429", about, f"{key} calmed down")
        sent = [got.body.decode() for got in target.received]
        database = repr(snapshot(harness))
        answer = platform_admin(harness).get(f"{ADMIN}/alerts").text
    captured = capfd.readouterr()
    logs = captured.out + captured.err
    assert "sustained_429" in logs and len(sent) == 2 and about in answer  # each output was searched
    assert "[REDACTED]" in sent[0] and "[REDACTED]" in answer
    for canary in canaries:
        for where, text in (("a channel", "".join(sent)), ("the database", database), ("the log", logs)):
            assert canary not in text, f"a secret in {where}"
        assert canary not in answer, "a secret in the admin API"
        assert canary not in repr(standing())


def test_l2_a_repeat_within_the_window_is_not_sent_again(
    apps: AppPool, tmp_path: Path, database_url: str
) -> None:
    about = subject()
    with receiver() as target, alerting(apps, tmp_path, database_url, json_url(target)) as harness:
        assert raise_now(harness, "redis_down", about, "Redis is unreachable")
        assert not raise_now(harness, "redis_down", about, "Redis is unreachable")  # standing here
        clear_now(harness, "redis_down", about, "Redis answers again")
        # Back within the window of its notification: recorded (held), not sent.
        assert raise_now(harness, "redis_down", about, "Redis is unreachable")
        assert [m["type"] for m in messages(target)] == ["failure", "success"]
        [(alert, deliveries)] = alert_rows(harness, about)
        assert (alert.state, alert.occurrences, alert.cleared_at) == ("held", 2, None)
        assert [d.event for d in deliveries] == ["raised", "resolved"]
        # Still standing once the window is over: sent once more, as still standing.
        harness.run(_sweep)
        assert len(target.received) == 2
        clock.advance(harness.settings.alert_dedupe_minutes * 60 + 1)
        harness.run(_sweep)
        harness.run(_sweep)
        assert [m["type"] for m in messages(target)] == ["failure", "success", "failure"]
        assert "still standing" in messages(target)[-1]["title"]
        [(alert, deliveries)] = alert_rows(harness, about)
        assert alert.state == "raised"
        assert [d.event for d in deliveries] == ["raised", "resolved", "raised"]


async def _sweep() -> None:
    dispatcher = current()
    assert dispatcher is not None
    await dispatcher.sweep()
    await dispatcher.idle()


def test_l2_a_cleared_alert_sends_one_resolution(apps: AppPool, tmp_path: Path, database_url: str) -> None:
    about = subject()
    with receiver() as target, alerting(apps, tmp_path, database_url, json_url(target)) as harness:
        raise_now(harness, "webhook_endpoint_failing", about, "20 of 20 attempts failed", failure_rate=1.0)
        assert clear_now(harness, "webhook_endpoint_failing", about, "the endpoint answers again")
        assert not clear_now(harness, "webhook_endpoint_failing", about, "the endpoint answers again")
        got = messages(target)
        [(alert, deliveries)] = alert_rows(harness, about)
    assert [m["type"] for m in got] == ["failure", "success"]
    assert "resolved" in got[1]["title"] and about in got[1]["title"]
    assert "the endpoint answers again" in got[1]["message"] and alert.id in got[1]["message"]
    assert (alert.state, alert.clear_message) == ("cleared", "the endpoint answers again")
    assert alert.cleared_at is not None
    assert [(d.event, d.status) for d in deliveries] == [("raised", "sent"), ("resolved", "sent")]


def test_l2_an_unreachable_channel_records_a_failure_and_the_others_still_get_it(
    apps: AppPool, tmp_path: Path, database_url: str
) -> None:
    token = "tok" + secrets.token_hex(12)
    dead = f"json://127.0.0.1:{closed_port()}/hooks/{token}?-X-Token={token}"
    about = subject()
    with (
        receiver() as target,
        alerting(apps, tmp_path, database_url, dead, json_url(target), "nosuchscheme://x") as harness,
        capture_logs() as logs,
    ):
        assert raise_now(harness, "monitor_failed", about, "client-config check failed")  # the caller is fine
        [(alert, deliveries)] = alert_rows(harness, about)
        database = repr(snapshot(harness))
    assert len(target.received) == 1
    failed, sent, unknown = deliveries
    assert (failed.channel_index, failed.status, failed.service) == (1, "failed", "JSON")
    assert failed.channel.startswith("json://127.0.0.1:") and failed.error
    assert (sent.channel_index, sent.status) == (2, "sent")
    assert (unknown.channel_index, unknown.status, unknown.service) == (3, "failed", None)
    assert unknown.channel == "nosuchscheme://…" and "apprise" in (unknown.error or "")
    assert alert.state == "raised"
    failures = [line for line in logs if line["event"] == "alert_delivery_failed"]
    assert [line["channel_index"] for line in failures] == [1, 3]
    assert token not in database and token not in repr(logs)


def test_l2_without_channels_development_logs_and_records(
    apps: AppPool, tmp_path: Path, database_url: str
) -> None:
    about = subject()
    with alerting(apps, tmp_path, database_url) as harness, capture_logs() as logs:
        assert harness.settings.alert_channel_urls() == []
        raise_now(harness, "backup_stale", about, "no backup for 30 hours", hours=30)
        [(alert, deliveries)] = alert_rows(harness, about)
    [line] = [line for line in logs if line["event"] == "alert" and line["subject"] == about]
    assert (line["kind"], line["message"], line["hours"]) == ("backup_stale", "no backup for 30 hours", 30)
    assert (alert.state, deliveries) == ("raised", [])


def test_l2_raised_from_a_thread_it_reaches_the_running_dispatcher(
    apps: AppPool, tmp_path: Path, database_url: str
) -> None:
    """Off the event loop (a sync handler in a thread): the call returns at once, the send follows."""
    about = subject()
    with receiver() as target, alerting(apps, tmp_path, database_url, json_url(target)) as harness:
        assert raise_alert("webhook_backlog", about, "from a thread")
        harness.run(lambda: asyncio.sleep(0))  # the hand-over to the loop is queued before this
        harness.run(drain)
        assert [m["message"].splitlines()[0] for m in messages(target)] == ["from a thread"]


def test_without_a_dispatcher_an_alert_is_logged_only() -> None:
    with capture_logs() as logs:
        assert current() is None
        assert raise_alert("monitor_failed", subject(), "no dispatcher in this process")
    assert [line["event"] for line in logs] == ["alert"]


def test_l2_two_dispatchers_on_one_database_send_once(tmp_path: Path, database_url: str) -> None:
    """Two replicas (two engines, two dispatchers, one database) raise the same alert: the database's
    standing index lets one of them send it; each clear sends one resolution between them."""
    about = subject()
    with receiver() as target:
        settings = base_settings(tmp_path, DATABASE_URL=database_url, SILVER_ALERT_URLS=json_url(target))

        async def work() -> tuple[set[tuple[str, str]], list[tuple[str, int]]]:
            engines = [create_engine(settings), create_engine(settings)]
            replicas = [AlertDispatcher(create_sessionmaker(engine), settings) for engine in engines]
            try:
                for replica in replicas:
                    await replica.start()
                for replica in replicas:
                    replica.submit(Notice("raise", "redis_down", about, "Redis is unreachable"))
                await asyncio.gather(*(replica.idle() for replica in replicas))
                second = replicas[1]
                await second.sweep()  # what the other replica knows stands: its clear may end it
                known = set(second.standing_in_database)
                for replica in replicas:
                    replica.submit(Notice("clear", "redis_down", about, "Redis answers again"))
                await asyncio.gather(*(replica.idle() for replica in replicas))
                async with second.sessionmaker() as db:
                    page = await list_alerts(db, limit=10, offset=0, kind="redis_down")
                recorded = [(a.state, a.occurrences) for a in page.items if a.subject == about]
            finally:
                for replica in replicas:
                    await replica.stop()
                for engine in engines:
                    await engine.dispose()
            return known, recorded

        known, recorded = asyncio.run(work())
    assert ("redis_down", about) in known
    assert recorded == [("cleared", 2)]  # one alert, raised by both
    assert [m["type"] for m in messages(target)] == ["failure", "success"]


def test_l2_an_alert_the_database_cannot_take_still_reaches_the_channel(tmp_path: Path) -> None:
    """The outage alerted on may be the database's: the alert goes out unrecorded, and says so in the log."""
    empty = tmp_path / "not-migrated.db"
    with receiver() as target, capture_logs() as logs:
        settings = base_settings(
            tmp_path, DATABASE_URL=f"sqlite+aiosqlite:///{empty}", SILVER_ALERT_URLS=json_url(target)
        )

        async def work() -> None:
            engine = create_engine(settings)
            dispatcher = AlertDispatcher(create_sessionmaker(engine), settings)
            try:
                await dispatcher.start()
                dispatcher.submit(Notice("raise", "database_down", subject(), "the database is unreachable"))
                await dispatcher.idle()
            finally:
                await dispatcher.stop()
                await engine.dispose()

        asyncio.run(work())
    [got] = messages(target)
    assert got["message"] == "the database is unreachable"  # no alr_ id: nothing was recorded
    assert [line["event"] for line in logs if line["event"].startswith("alert_")] == [
        "alert_sweep_failed",
        "alert_record_failed",
        "alert_delivered",
    ]
