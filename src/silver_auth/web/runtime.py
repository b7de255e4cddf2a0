"""The part of the app's runtime the web layer itself needs: settings and the database.

The service's full runtime (`silver_auth.runtime.Runtime`) extends it with the domain services; the web
layer never sees those, so it imports no domain package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from silver_auth.settings import Settings


@dataclass(slots=True)
class WebRuntime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]


def web_runtime(connection: ASGIConnection[Any, Any, Any, Any]) -> WebRuntime:
    runtime: WebRuntime = connection.app.state.runtime
    return runtime
