"""The append-only, hash-chained audit log (G27)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Mapper, ORMExecuteState, Session, mapped_column

from silver_auth.db.base import Base

CHAIN_FIELDS = frozenset({"seq", "prev_hash", "hash"})
UNSEALED = text("seq IS NULL")
RETENTION_PURGE = "audit_retention_purge"
"""The execution option that lets `audit.retention` delete events past their plan's retention: the one
deletion the guards below allow, and no other code sets it."""


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_org_row", "org_id", "row_id"),
        Index("ix_audit_events_org_actor_row", "org_id", "actor", "row_id"),
        Index("ix_audit_events_action", "action"),
        Index("ix_audit_events_org_at", "org_id", "at"),
        Index("ix_audit_events_unsealed", "row_id", sqlite_where=UNSEALED, postgresql_where=UNSEALED),
    )

    # INTEGER on SQLite: only that spelling makes the column the table's rowid (assigned on insert).
    row_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    """Insertion order, taken when the row is written (before commit): the listing's order and cursor."""
    id: Mapped[str] = mapped_column(String(40), unique=True)
    at: Mapped[datetime]
    org_id: Mapped[str | None] = mapped_column(String(40))
    project_id: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    """Account id, `cli`, or `system`."""
    actor_ip: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(100))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    """Redacted before it is written (G28)."""
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    """Position in the sealed chain, gapless from 1 (a missing number is a deleted event, unless an
    `AuditChainGap` records the retention purge removing it); null until the sealer links it in."""
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditChainHead(Base):
    """One row: the last sealed position and its hash. Sealers lock it, so they take turns."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainGap(Base):
    """A run of consecutive chain positions whose events the retention purge removed, with the links on
    either side, so `audit verify` still checks every event that is left. Adjacent runs are merged."""

    __tablename__ = "audit_chain_gaps"

    first_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    """The `prev_hash` of the first purged event: the hash of the event before the run."""
    last_hash: Mapped[str] = mapped_column(String(64))
    """The `hash` of the last purged event: the `prev_hash` of the event after the run."""


class AuditEventImmutableError(RuntimeError):
    """An attempt to edit or delete an audit event through the ORM (G27: events are never edited)."""


@event.listens_for(AuditEvent, "before_update")
def _only_sealing(_mapper: Mapper[Any], _connection: Connection, event_row: AuditEvent) -> None:
    # The one permitted change: the sealer giving an unsealed event its chain position and hashes.
    state = inspect(event_row)
    changed = {attr.key for attr in state.attrs if attr.history.has_changes()}
    if not changed or (changed == CHAIN_FIELDS and state.attrs.seq.history.deleted == [None]):
        return
    raise AuditEventImmutableError(f"audit events are append-only: {event_row.id} cannot be edited")


@event.listens_for(AuditEvent, "before_delete")
def _never_delete(_mapper: Mapper[Any], _connection: Connection, event_row: AuditEvent) -> None:
    raise AuditEventImmutableError(f"audit events are append-only: {event_row.id} cannot be deleted")


@event.listens_for(Session, "do_orm_execute")
def _no_bulk_edits(state: ORMExecuteState) -> None:
    # update(AuditEvent) / delete(AuditEvent) run without a flush, so the mapper events above miss them.
    if (state.is_update or state.is_delete) and state.bind_mapper is inspect(AuditEvent):
        if state.is_delete and state.execution_options.get(RETENTION_PURGE):
            return
        raise AuditEventImmutableError("audit events are append-only: bulk UPDATE or DELETE refused")
