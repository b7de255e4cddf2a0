"""Sustained 429s (G37, G38), on the service clock: minutes of refusals from one key prefix raise exactly
one alert that names the prefix, its project and org and how to revoke the key, never the key; an
isolated burst raises nothing; a source that recovers clears its alert."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from silver_auth.alerts.dispatcher import drain
from silver_auth.alerts.service import standing
from silver_auth.core import clock
from silver_auth.keys.verifier import KeyPrincipal
from silver_auth.plans import service as plans
from silver_auth.ratelimit.sustained import ALERT_KIND, Source, SustainedRefusals
from tests.alerts.support import alerting, json_url, messages
from tests.conftest import AppPool, base_settings
from tests.factories import Harness
from tests.webhooks.support import receiver

MINUTE = 60.0


def alerts_for(subject: str) -> list[dict[str, Any]]:
    return [a for a in standing() if a["kind"] == ALERT_KIND and a["subject"] == subject]


def observe(tracker: SustainedRefusals, source: Source, refused: bool) -> None:
    """One request of `source`, as the middleware reports it: the key it presented, or its address."""
    if source.ip is not None:
        tracker.observe(source.subject, refused, source.ip)
        return
    assert source.key_prefix is not None and source.key_id is not None
    key = KeyPrincipal(
        key_id=source.key_id,
        kind="secret",
        environment="live",
        prefix=source.key_prefix,
        project_id=source.project_id or "prj_1",
        org_id="org_1",
        project_name="Web",
        sign_in_methods=("password",),
        allowed_origins=frozenset(),
        expires_at=None,
        requests_per_minute=600,
    )
    tracker.observe(source.subject, refused, key)


def minute_of(tracker: SustainedRefusals, source: Source, *, requests: int, refused: int) -> None:
    """`requests` requests of `source` spread over one minute of the service clock, `refused` of them 429."""
    for index in range(requests):
        observe(tracker, source, index < refused)
        clock.advance(MINUTE / requests)


@pytest.fixture
def tracker(tmp_path: Path) -> SustainedRefusals:
    settings = base_settings(
        tmp_path,
        SILVER_RATE_LIMIT_ALERT_MINUTES=5,
        SILVER_RATE_LIMIT_ALERT_SHARE=0.5,
        SILVER_RATE_LIMIT_ALERT_MIN_REQUESTS=10,
    )
    clock.advance(MINUTE - clock.monotonic() % MINUTE)  # the test's minutes are the clock's minutes
    return SustainedRefusals(settings)


def key_source(name: str) -> Source:
    return Source(
        f"key:sk_live_{name}", key_prefix=f"sk_live_{name}", key_id=f"key_{name}", project_id="prj_1"
    )


def test_g37_five_minutes_mostly_refused_raise_one_alert(tracker: SustainedRefusals) -> None:
    source = key_source("Flood1")
    for _ in range(5):
        minute_of(tracker, source, requests=20, refused=15)
    assert alerts_for(source.subject) == []  # the fifth minute is only now complete
    observe(tracker, source, True)
    raised = alerts_for(source.subject)
    assert len(raised) == 1
    for _ in range(3):  # the flood goes on: still one alert
        minute_of(tracker, source, requests=20, refused=20)
    assert len(alerts_for(source.subject)) == 1


def test_g37_a_burst_raises_nothing(tracker: SustainedRefusals) -> None:
    source = key_source("Burst1")
    for _ in range(200):  # ten seconds, every request refused
        observe(tracker, source, True)
        clock.advance(10 / 200)
    for _ in range(6):
        minute_of(tracker, source, requests=20, refused=0)
    assert alerts_for(source.subject) == []


def test_g37_a_minute_under_the_share_breaks_the_run(tracker: SustainedRefusals) -> None:
    source = key_source("Gap1")
    for share in (15, 15, 5, 15, 15, 15):  # the third minute was mostly served
        minute_of(tracker, source, requests=20, refused=share)
    observe(tracker, source, True)
    assert alerts_for(source.subject) == []


def test_g37_quiet_sources_and_trickles_do_not_count(tracker: SustainedRefusals) -> None:
    source = key_source("Trickle1")
    for _ in range(6):
        minute_of(tracker, source, requests=4, refused=4)  # under SILVER_RATE_LIMIT_ALERT_MIN_REQUESTS
    assert alerts_for(source.subject) == []


def test_g37_a_recovered_source_clears_its_alert(tracker: SustainedRefusals) -> None:
    source = Source("ip:198.51.100.44", ip="198.51.100.44")
    for _ in range(5):
        minute_of(tracker, source, requests=20, refused=20)
    observe(tracker, source, True)
    assert len(alerts_for(source.subject)) == 1
    minute_of(tracker, source, requests=20, refused=0)
    observe(tracker, source, False)
    assert alerts_for(source.subject) == []


def test_g37_a_source_that_stops_clears_on_the_next_sweep(tracker: SustainedRefusals) -> None:
    source = key_source("Stops1")
    for _ in range(5):
        minute_of(tracker, source, requests=20, refused=20)
    observe(tracker, source, True)
    assert len(alerts_for(source.subject)) == 1
    clock.advance(2 * MINUTE)
    tracker.sweep()
    assert alerts_for(source.subject) == []


def test_g38_a_flooding_key_raises_an_alert_naming_its_prefix_not_the_key(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(plans.PLANS, "free", dataclasses.replace(plans.PLANS["free"], requests_per_minute=2))
    owner = harness.user()
    org = harness.org(owner)
    project = harness.project(owner, org["id"])
    issued = harness.key(owner, project["id"])
    secret, prefix = issued["key"], issued["prefix"]
    minutes = harness.settings.rate_limit_alert_minutes
    clock.advance(MINUTE - clock.monotonic() % MINUTE)  # each flood below falls in one clock minute
    # 12 a minute against a rate of 2: most of each minute is refused; the alert comes with the first
    # refusal after `minutes` complete minutes of it.
    for _ in range(minutes + 1):
        for _ in range(harness.settings.rate_limit_alert_min_requests + 2):
            harness.backend("/v1/backend/project", secret)
        clock.advance(MINUTE)
    (alert,) = alerts_for(f"key:{prefix}")
    assert alert["key_prefix"] == prefix
    assert alert["project_id"] == project["id"] and alert["org_id"] == org["id"]
    message = alert["message"]
    assert prefix in message and "rotate" in message and "G38" in message
    assert f"/console/api/keys/{issued['id']}" in message
    assert secret not in repr(standing())
    # The action the alert names revokes the key at once.
    owner.ok("DELETE", f"/console/api/keys/{issued['id']}")
    assert harness.backend("/v1/backend/project", secret).status_code == 401


def test_g37_a_sustained_flood_reaches_the_channel_once_without_the_key_and_a_burst_never(
    apps: AppPool, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The acceptance run: at a real JSON receiver (apprise `json://`), one alert for the key whose
    requests were mostly refused minute after minute, none for a key refused in a 10-second burst."""
    monkeypatch.setitem(plans.PLANS, "free", dataclasses.replace(plans.PLANS["free"], requests_per_minute=2))
    with receiver() as target, alerting(apps, tmp_path, database_url, json_url(target)) as harness:
        owner = harness.user()
        project = harness.project(owner, harness.org(owner)["id"])
        flood, burst = (harness.key(owner, project["id"]) for _ in range(2))
        clock.advance(MINUTE - clock.monotonic() % MINUTE)
        for _ in range(40):  # the burst: ten seconds, nearly all refused
            harness.backend("/v1/backend/project", burst["key"])
            clock.advance(10 / 40)
        for _ in range(harness.settings.rate_limit_alert_minutes + 2):
            for _ in range(harness.settings.rate_limit_alert_min_requests + 2):
                harness.backend("/v1/backend/project", flood["key"])
            clock.advance(MINUTE)
        harness.run(drain)
        sent = messages(target)
    about_flood = [m for m in sent if flood["prefix"] in m["title"] + m["message"]]
    assert len(about_flood) == 1 and "sustained_429" in about_flood[0]["title"]
    assert "rotate" in about_flood[0]["message"] and flood["id"] in about_flood[0]["message"]
    assert not [m for m in sent if burst["prefix"] in m["title"] + m["message"]]
    bodies = repr(sent)
    for secret in (flood["key"], burst["key"]):
        assert secret not in bodies and secret.split("_")[-1] not in bodies
