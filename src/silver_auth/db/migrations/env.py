"""Alembic environment: async engines for both backends, or a connection handed in by `migrate`; and
the model registry, so Alembic and the drift check see the whole schema while `db/` itself imports no
domain package."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from silver_auth.accounts import models as accounts
from silver_auth.accounts import sessions as console_sessions
from silver_auth.alerts import models as alerts
from silver_auth.audit import models as audit
from silver_auth.authentik import models as authentik
from silver_auth.db.base import Base
from silver_auth.db.engine import create_private_sqlite_file
from silver_auth.endusers import models as endusers
from silver_auth.keys import models as keys
from silver_auth.mfa import models as mfa
from silver_auth.ops import models as ops
from silver_auth.orgs import models as orgs
from silver_auth.projects import models as projects
from silver_auth.settings import load_settings, normalize_database_url
from silver_auth.signing import models as signing
from silver_auth.throttle import models as throttle
from silver_auth.webhooks import models as webhooks

MODEL_MODULES = (
    accounts,
    console_sessions,
    alerts,
    audit,
    authentik,
    endusers,
    keys,
    mfa,
    ops,
    orgs,
    projects,
    signing,
    throttle,
    webhooks,
)
"""Every module that defines tables."""
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
    await engine.dispose()


def _run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    elif context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    else:
        url = normalize_database_url(
            config.get_main_option("sqlalchemy.url") or load_settings().sqlalchemy_url
        )
        create_private_sqlite_file(url)  # 0600, as `silver-auth migrate` creates it
        asyncio.run(_run_online(url))


# Alembic loads this file to migrate; the drift check and the tests import it for the registry alone.
if hasattr(context, "config"):
    _run()
