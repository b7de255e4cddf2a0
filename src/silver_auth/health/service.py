"""Dependency checks for /health."""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger("silver_auth.health")
CHECK_TIMEOUT = 3.0


async def check_database(engine: AsyncEngine) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure is "down"; the log says why, the answer does not
        log.warning("health_database_failed", error_type=type(exc).__name__)
        return "unreachable"
    return "ok"
