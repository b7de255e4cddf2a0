"""Moving every sealed value in the database to the key ring's first key (G17), for
`silver-auth secrets reseal`.

A sealing-key rotation: put the new key first in SILVER_SEALING_KEYS everywhere (the old one after it, so
both open), reseal, then drop the old key. Every value is opened on the way, so a run also proves that
the ring opens everything; the first value that does not open stops it, named by kind and row id.

Each batch commits on its own, so a large table (end-users' TOTP factors) never holds SQLite's write lock
or thousands of Postgres row locks for the whole run; a value is replaced only if it is still the one
that was read (a rotation or re-enrolment meanwhile wins). Stopping half-way is harmless: moved values
open with the new key, the rest with the old one, and a second run picks up where the first stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from silver_auth.authentik.applications import secret_context as authentik_secret_context
from silver_auth.authentik.models import AuthentikApplication
from silver_auth.core.crypto import Sealer, SealError
from silver_auth.core.errors import ProblemError
from silver_auth.db.base import Base
from silver_auth.db.session import transaction
from silver_auth.mfa.factors import totp_secret_context
from silver_auth.mfa.models import TotpFactor
from silver_auth.signing.models import SigningKey
from silver_auth.signing.service import signing_key_context
from silver_auth.webhooks.models import WebhookEndpoint
from silver_auth.webhooks.service import secret_context as webhook_secret_context

BATCH = 500


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """One kind of sealed value: where it is stored and what it is bound to (its AES-GCM context)."""

    kind: str
    model: type[Base]
    row_id: InstrumentedAttribute[Any]
    sealed: InstrumentedAttribute[Any]
    bound_to: InstrumentedAttribute[Any]
    context: Callable[[str], str]
    only: Callable[[], ColumnElement[bool]] = true


SEALED_COLUMNS = (
    SealedColumn(
        "webhook_endpoint_secret",
        WebhookEndpoint,
        WebhookEndpoint.id,
        WebhookEndpoint.secret_sealed,
        WebhookEndpoint.id,
        webhook_secret_context,
    ),
    SealedColumn(
        "webhook_endpoint_previous_secret",
        WebhookEndpoint,
        WebhookEndpoint.id,
        WebhookEndpoint.previous_secret_sealed,
        WebhookEndpoint.id,
        webhook_secret_context,
    ),
    SealedColumn(
        "console_totp_secret",
        TotpFactor,
        TotpFactor.id,
        TotpFactor.secret_sealed,
        TotpFactor.owner_id,
        totp_secret_context,
        lambda: TotpFactor.owner_id.startswith("acc_", autoescape=True),
    ),
    SealedColumn(
        "end_user_totp_secret",
        TotpFactor,
        TotpFactor.id,
        TotpFactor.secret_sealed,
        TotpFactor.owner_id,
        totp_secret_context,
        lambda: ~TotpFactor.owner_id.startswith("acc_", autoescape=True),
    ),
    SealedColumn(
        "authentik_client_secret",
        AuthentikApplication,
        AuthentikApplication.project_id,
        AuthentikApplication.client_secret_sealed,
        AuthentikApplication.project_id,
        authentik_secret_context,
    ),
    SealedColumn(
        "signing_key",
        SigningKey,
        SigningKey.id,
        SigningKey.private_sealed,
        SigningKey.id,
        signing_key_context,
    ),
)
"""Every column that holds a Sealer value. A new one belongs here, or a key rotation strands it."""


class UnopenableValue(ProblemError):
    """A sealed value the ring cannot open; the message names the kind and row, never the value."""


@dataclass(slots=True)
class ResealCount:
    resealed: int = 0
    """Sealed under another key of the ring, now under the first."""
    current: int = 0
    """Under the first key already (and opened, to prove it)."""
    changed_meanwhile: int = 0
    """Rewritten or deleted by the service between read and write: left as the service wrote it."""


@dataclass(slots=True)
class ResealReport:
    sealing_kid: str
    counts: dict[str, ResealCount] = field(default_factory=dict)


async def reseal_all(
    sessionmaker: async_sessionmaker[AsyncSession], sealer: Sealer, *, batch: int = BATCH
) -> ResealReport:
    """Reseal every sealed value under `sealer`'s first key; raises UnopenableValue at the first value
    the ring cannot open (the batches before it stay committed)."""
    report = ResealReport(sealer.sealing_kid)
    for column in SEALED_COLUMNS:
        count = report.counts[column.kind] = ResealCount()
        after: str | None = None
        while True:
            async with transaction(sessionmaker) as db:
                after = await _reseal_batch(db, sealer, column, count, after=after, batch=batch)
            if after is None:
                break
    return report


async def _reseal_batch(
    db: AsyncSession,
    sealer: Sealer,
    column: SealedColumn,
    count: ResealCount,
    *,
    after: str | None,
    batch: int,
) -> str | None:
    """One page of rows in primary-key order; answers the last key read, or None after the last page."""
    query = select(column.row_id, column.sealed, column.bound_to).where(
        column.sealed.is_not(None), column.only()
    )
    if after is not None:
        query = query.where(column.row_id > after)
    rows = (await db.execute(query.order_by(column.row_id).limit(batch))).all()
    for row_id, sealed, bound_to in rows:
        try:
            moved = sealer.resealed(sealed, column.context(bound_to))
        except SealError:
            why = (
                "it does not open with the key it names (altered, or copied from another row)"
                if sealer.holds_key_of(sealed)
                else "the key it was sealed with is not in SILVER_SEALING_KEYS"
            )
            raise UnopenableValue(
                f"{column.kind} of {row_id} cannot be opened: {why}; values before it are resealed, "
                "fix the ring (or that row) and run again"
            ) from None
        if moved is None:
            count.current += 1
            continue
        result = await db.execute(
            update(column.model)
            .where(column.row_id == row_id, column.sealed == sealed)
            .values({column.sealed.key: moved})
        )
        if result.rowcount:  # type: ignore[attr-defined]
            count.resealed += 1
        else:
            count.changed_meanwhile += 1
    return rows[-1][0] if len(rows) == batch else None
