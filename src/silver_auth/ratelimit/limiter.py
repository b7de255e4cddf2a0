"""The app limiter (G35): sliding-window counters, in process memory for the embedded default or in Redis
through the `limits` library, where one limit holds across every replica.

Redis unreachable: the limiter never answers "unlimited". It counts in this process's memory instead
(each replica then enforces the whole limit on its own, so N replicas admit at most N times the
limit), reports itself degraded to /health, raises the `rate_limiter_fallback` alert, and tries Redis
again every SILVER_RATE_LIMIT_FALLBACK_RETRY_SECONDS; the first good answer clears the alert.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Literal, NamedTuple

import structlog
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter as SharedWindows

from silver_auth.alerts.service import clear_alert, raise_alert
from silver_auth.core import clock
from silver_auth.settings import Settings
from silver_auth.throttle.policies import RatePolicy

log = structlog.get_logger("silver_auth.ratelimit")

Storage = Literal["memory", "redis", "memory-fallback"]
FALLBACK_ALERT = "rate_limiter_fallback"


class Decision(NamedTuple):
    """One policy's verdict on one request: allowed or not, what is left, and when it refills. (A tuple:
    one is made per policy per request, and a frozen dataclass costs several times more to make.)"""

    policy: RatePolicy
    allowed: bool
    remaining: int
    reset_seconds: int
    """Seconds until the window has room again (the RateLimit `t`, and Retry-After when refused)."""


class MemoryWindows:
    """Sliding-window counters in process memory, counted as `limits`' sliding-window counter counts
    them (the previous window's count weighted by how much of it still overlaps, plus the current one).

    Written here rather than taken from `limits`' MemoryStorage: that storage costs 7-15 µs a hit (a
    lock per key, an expiry thread that wakes every 10 ms and scans every counter, wrappers around every
    call), which alone took the backend-key check below 0.8 of its speed; this costs about 1 µs. The
    event loop is one thread, so no lock is needed. Runs on the service clock (`core.clock`).
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int, int, str], list[int]] = {}
        """(policy, limit, window, subject) -> [window index, current count, previous count]."""
        self._next_purge = 0.0

    def hit(self, policy: RatePolicy, subject: str) -> Decision:
        now = clock.monotonic()
        window, limit = policy.window_seconds, policy.limit
        index, into = divmod(now, window)
        key = (policy.name, limit, window, subject)
        entry = self._counts.get(key)
        if entry is None or entry[0] < index - 1:
            entry = self._counts[key] = [int(index), 0, 0]
        elif entry[0] == index - 1:  # the window moved on: the current count becomes the previous one
            entry[:] = [int(index), 0, entry[1]]
        overlap = 1 - into / window
        weighted = entry[2] * overlap + entry[1]
        allowed = math.floor(weighted) + 1 <= limit
        if allowed:
            entry[1] += 1
            weighted += 1
        if now >= self._next_purge:
            self._purge(now)
        remaining = max(0, limit - math.floor(weighted))
        if remaining > 0:
            wait = window - into  # the current window's end, when counts shift
        else:
            wait = _refill_wait(limit, window, into, previous=entry[2], current=entry[1])
        return Decision(policy, allowed, remaining, min(window, max(1, math.ceil(wait))))

    def _purge(self, now: float) -> None:
        """Drop counters no window can see any more, so a flood of addresses stays bounded."""
        self._next_purge = now + EXPIRE_SECONDS
        for key in [k for k, entry in self._counts.items() if entry[0] < now // k[2] - 1]:
            del self._counts[key]


def _refill_wait(limit: int, window: int, into: float, *, previous: int, current: int) -> float:
    """Seconds until one more request fits, with no further hits (the weighted count falls as the
    previous window slides out, and after the window ends the current count starts to)."""
    if current < limit and previous > 0:  # room comes back as the previous window fades
        return window * (1 - (limit - 1 - current) / previous) - into
    return (window - into) + window * (1 - (limit - 1) / max(current, 1))


EXPIRE_SECONDS = 10.0


@lru_cache(maxsize=256)
def _item(limit: int, window_seconds: int) -> RateLimitItem:
    return RateLimitItemPerSecond(limit, window_seconds, namespace="silver")


class RateLimiter:
    """Counts hits per (policy, subject); `storage` says where the counts live right now."""

    def __init__(self, settings: Settings) -> None:
        self._local = MemoryWindows()
        self._shared: SharedWindows | None = None
        self._redis: RedisStorage | None = None
        uri = settings.limits_redis_uri
        if uri is not None:
            timeout = settings.redis_timeout_seconds
            self._redis = RedisStorage(
                uri,
                implementation="redispy",
                key_prefix=settings.redis_key_prefix,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
            self._shared = SharedWindows(self._redis)
        self._retry_seconds = settings.rate_limit_fallback_retry_seconds
        self._down_until: float | None = None
        """While Redis is unreachable: when to try it again (monotonic seconds)."""
        self._probing = False

    @property
    def storage(self) -> Storage:
        if self._shared is None:
            return "memory"
        return "memory-fallback" if self._down_until is not None else "redis"

    async def hit(self, policy: RatePolicy, subject: str) -> Decision:
        """Count one request of `subject` against `policy` (a refused one is not counted)."""
        if self._shared is not None and self._may_use_shared():
            item = _item(policy.limit, policy.window_seconds)
            try:
                allowed = await self._shared.hit(item, policy.name, subject)
                reset_time, remaining = await self._shared.get_window_stats(item, policy.name, subject)
            except Exception as exc:  # any failure of the storage: count in memory, never "unlimited"
                self._fall_back(exc)
            else:
                self._recovered()
                return _decision(policy, allowed, remaining, reset_time)
            finally:
                self._probing = False
        return self._local.hit(policy, subject)

    def _may_use_shared(self) -> bool:
        """Redis is up, or it is time for one request (only one at a time) to try it again."""
        if self._down_until is None:
            return True
        if self._probing or clock.monotonic() < self._down_until:
            return False
        self._probing = True
        return True

    def _fall_back(self, exc: Exception) -> None:
        first = self._down_until is None
        self._down_until = clock.monotonic() + self._retry_seconds
        if first:
            log.warning("rate_limiter_fallback", error_type=type(exc).__name__)
            raise_alert(
                FALLBACK_ALERT,
                "redis",
                "Redis (the rate limiter's shared storage) is unreachable: limits are counted per process "
                "until it answers again, so each replica admits up to the whole limit",
                error_type=type(exc).__name__,
            )

    def _recovered(self) -> None:
        if self._down_until is not None:
            self._down_until = None
            log.info("rate_limiter_recovered")
            clear_alert(FALLBACK_ALERT, "redis", "Redis answers again: limits are shared across replicas")

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.bridge.storage.aclose()  # type: ignore[attr-defined]


def _decision(policy: RatePolicy, allowed: bool, remaining: int, reset_time: float) -> Decision:
    wait = max(1, math.ceil(reset_time - time.time()))  # `limits` counts in wall-clock epoch seconds
    return Decision(policy, allowed, max(0, remaining), min(wait, policy.window_seconds))
