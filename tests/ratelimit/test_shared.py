"""One limit across replicas (G35): two real API processes share their counts through Redis; with Redis
stopped mid-run they keep answering, still limited (per process), /health says so, and the limiter
goes back to Redis once it answers again."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from pathlib import Path

import httpx
import pytest

from silver_auth.alerts.service import standing
from silver_auth.core import clock
from silver_auth.plans.service import PLANS
from silver_auth.ratelimit.limiter import FALLBACK_ALERT, RateLimiter
from silver_auth.throttle.policies import RatePolicy
from tests.conftest import base_settings
from tests.factories import Harness
from tests.processes import api_processes, settings_env
from tests.ratelimit.support import redis_server

pytestmark = pytest.mark.slow

ANONYMOUS_LIMIT = 12


def test_g35_two_processes_share_one_limit_and_survive_redis_going_away(
    harness: Harness, tmp_path: Path
) -> None:
    owner = harness.user()
    project = harness.project(owner, harness.org(owner)["id"])
    key, other_key = (harness.key(owner, project["id"])["key"] for _ in range(2))
    rate = PLANS["free"].requests_per_minute
    logs = tmp_path / "logs"
    logs.mkdir()
    with redis_server(tmp_path) as redis:
        env = settings_env(
            harness.settings,
            SILVER_REDIS_URL=redis.url,
            SILVER_REDIS_KEY_PREFIX=f"t{secrets.token_hex(4)}",
            SILVER_RATE_LIMIT_ANONYMOUS_PER_MINUTE=str(ANONYMOUS_LIMIT),
            SILVER_RATE_LIMIT_FALLBACK_RETRY_SECONDS="1",
        )
        with api_processes(2, env, logs) as processes, httpx.Client(timeout=10) as client:
            servers = itertools.cycle(process.url for process in processes)

            def backend(secret: str) -> httpx.Response:
                return client.get(
                    f"{next(servers)}/v1/backend/project", headers={"authorization": f"Bearer {secret}"}
                )

            codes = [backend(key).status_code for _ in range(rate + 10)]
            assert codes.count(200) == rate, "the two processes admitted more (or less) than one plan rate"
            assert codes[-10:] == [429] * 10
            assert backend(other_key).status_code == 200  # a sibling key has its own budget

            def anonymous(address: str) -> httpx.Response:
                return client.get(f"{next(servers)}/v1/config", headers={"x-forwarded-for": address})

            shared = [anonymous("192.0.2.10").status_code for _ in range(ANONYMOUS_LIMIT + 4)]
            assert shared.count(200) == ANONYMOUS_LIMIT

            redis.stop()
            during = [anonymous("192.0.2.20") for _ in range(4 * ANONYMOUS_LIMIT)]
            assert {a.status_code for a in during} <= {200, 429}, "never a 5xx while Redis is away"
            # Counted per process now: each admits up to the whole limit, and no more.
            assert ANONYMOUS_LIMIT < [a.status_code for a in during].count(200) <= 2 * ANONYMOUS_LIMIT
            for process in processes:
                health = client.get(f"{process.url}/health")
                assert health.status_code == 200
                assert health.json()["status"] == "degraded"
                assert health.json()["checks"]["rate_limiter"].startswith("degraded: Redis unreachable")


def test_the_limiter_falls_back_alerts_and_recovers(tmp_path: Path) -> None:
    """In process, with the service clock: the fallback raises one alert, counts in memory (never
    unlimited), tries Redis again only after the retry delay, and clears the alert on its first answer."""
    policy = RatePolicy("probe", 3)
    with redis_server(tmp_path) as redis:
        settings = base_settings(
            tmp_path, SILVER_REDIS_URL=redis.url, SILVER_REDIS_KEY_PREFIX=f"t{secrets.token_hex(4)}"
        )
        limiter = RateLimiter(settings)

        async def run() -> None:
            assert (await limiter.hit(policy, "a")).allowed and limiter.storage == "redis"
            redis.stop()
            verdicts = [(await limiter.hit(policy, "b")).allowed for _ in range(5)]
            assert verdicts == [True, True, True, False, False]  # the fallback still limits
            assert limiter.storage == "memory-fallback"
            assert [a for a in standing() if a["kind"] == FALLBACK_ALERT]
            redis.start()
            await limiter.hit(policy, "c")
            assert limiter.storage == "memory-fallback"  # not retried before the delay
            clock.advance(settings.rate_limit_fallback_retry_seconds + 1)
            assert (await limiter.hit(policy, "c")).allowed
            assert limiter.storage == "redis"
            assert not [a for a in standing() if a["kind"] == FALLBACK_ALERT]
            await limiter.close()

        asyncio.run(run())
