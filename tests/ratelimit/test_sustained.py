"""Sustained 429s (G37, G38), on the service clock: minutes of refusals from one key prefix raise exactly
one alert that names the prefix, its project and org and how to revoke the key, never the key; an
isolated burst raises nothing; a source that recovers clears its alert."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from silver_auth.alerts.service import standing
from silver_auth.core import clock
from silver_auth.plans import service as plans
from silver_auth.ratelimit.sustained import ALERT_KIND, Source, SustainedRefusals
from tests.conftest import base_settings
from tests.factories import Harness

MINUTE = 60.0


def alerts_for(subject: str) -> list[dict[str, Any]]:
    return [a for a in standing() if a["kind"] == ALERT_KIND and a["subject"] == subject]


def minute_of(tracker: SustainedRefusals, source: Source, *, requests: int, refused: int) -> None:
    """`requests` requests of `source` spread over one minute of the service clock, `refused` of them 429."""
    for index in range(requests):
        tracker.observe(source, index < refused)
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
    tracker.observe(source, True)
    raised = alerts_for(source.subject)
    assert len(raised) == 1
    for _ in range(3):  # the flood goes on: still one alert
        minute_of(tracker, source, requests=20, refused=20)
    assert len(alerts_for(source.subject)) == 1


def test_g37_a_burst_raises_nothing(tracker: SustainedRefusals) -> None:
    source = key_source("Burst1")
    for _ in range(200):  # ten seconds, every request refused
        tracker.observe(source, True)
        clock.advance(10 / 200)
    for _ in range(6):
        minute_of(tracker, source, requests=20, refused=0)
    assert alerts_for(source.subject) == []


def test_g37_a_minute_under_the_share_breaks_the_run(tracker: SustainedRefusals) -> None:
    source = key_source("Gap1")
    for share in (15, 15, 5, 15, 15, 15):  # the third minute was mostly served
        minute_of(tracker, source, requests=20, refused=share)
    tracker.observe(source, True)
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
    tracker.observe(source, True)
    assert len(alerts_for(source.subject)) == 1
    minute_of(tracker, source, requests=20, refused=0)
    tracker.observe(source, False)
    assert alerts_for(source.subject) == []


def test_g37_a_source_that_stops_clears_on_the_next_sweep(tracker: SustainedRefusals) -> None:
    source = key_source("Stops1")
    for _ in range(5):
        minute_of(tracker, source, requests=20, refused=20)
    tracker.observe(source, True)
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
