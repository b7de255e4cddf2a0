"""What the operations commands did: every backup, restore drill and monitor run, with its outcome, so
`doctor` can tell whether backups and drills are fresh (G22, G24, L3, L4) and the launch checks are
monitored (L1). Nothing here holds a secret: details are redacted before they are written (G28)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from silver_auth.db.base import Base

RunKind = Literal["backup", "restore_drill", "monitor"]
RunOutcome = Literal["running", "succeeded", "failed"]


class OpsRun(Base):
    """One run of an operations command, from its start to its outcome."""

    __tablename__ = "ops_runs"
    __table_args__ = (Index("ix_ops_runs_kind_outcome_finished", "kind", "outcome", "finished_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """`opr_…`."""
    kind: Mapped[str] = mapped_column(String(20))
    """`backup`, `restore_drill` or `monitor`."""
    outcome: Mapped[str] = mapped_column(String(10))
    """`running` until it ends, then `succeeded` or `failed`."""
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    backup_id: Mapped[str | None] = mapped_column(String(80))
    """The backup made (a backup run) or restored (a drill)."""
    trigger: Mapped[str] = mapped_column(String(20))
    """`command` (run by hand or cron) or `schedule` (by `silver-auth worker`)."""
    error: Mapped[str | None] = mapped_column(Text)
    """Why it failed, one redacted line."""
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    """What it measured (row counts, sizes, checks passed), redacted."""
