"""The app limiter (G35): on, and, when its counts live in Redis, Redis answering (otherwise each
process counts alone, N replicas allowing N times the limit)."""

from __future__ import annotations

import redis.asyncio as redis

from silver_auth.core import production_guard as guard
from silver_auth.ops.doctor.context import Doctor, one_line
from silver_auth.ops.doctor.report import Finding, from_problems, passed, warned

LINES = ("G35",)


async def check(doctor: Doctor) -> list[Finding]:
    settings = doctor.settings
    check = "SILVER_RATE_LIMIT_ENABLED, and Redis when configured"
    off = guard.limiter_problems(settings)
    if off:
        return [from_problems("G35", check, off, "unset SILVER_RATE_LIMIT_ENABLED (on by default)")]
    if settings.redis_url is None:
        return [
            passed("G35", check, "on, counting in process memory (one process: set SILVER_REDIS_URL for N)")
        ]
    client = redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=settings.redis_timeout_seconds * 4,
        socket_connect_timeout=settings.redis_timeout_seconds * 4,
    )
    try:
        await client.ping()
    except Exception as exc:  # redis-py's errors and the socket's: one line either way
        return [
            warned(
                "G35",
                check,
                f"on, but Redis does not answer ({one_line(exc)}): each process counts alone",
                "start Redis or fix SILVER_REDIS_URL",
            )
        ]
    finally:
        await client.aclose()
    return [passed("G35", check, "on, counting in Redis (shared by every replica)")]
