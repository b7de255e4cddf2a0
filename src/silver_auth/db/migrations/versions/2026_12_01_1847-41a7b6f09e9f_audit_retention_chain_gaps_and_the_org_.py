"""audit retention: chain gaps and the org time index

The retention purge removes events older than their org's plan keeps them; `audit_chain_gaps` keeps
the links around each removed run, so `audit verify` walks across it. `(org_id, at)` finds them.

Revision ID: 41a7b6f09e9f
Revises: e00506349395
Create Date: 2026-12-01 18:47:35.759705
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "41a7b6f09e9f"
down_revision: str | None = "e00506349395"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_chain_gaps",
        sa.Column("first_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("first_seq", name=op.f("pk_audit_chain_gaps")),
        sa.UniqueConstraint("last_seq", name=op.f("uq_audit_chain_gaps_last_seq")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_org_at", ["org_id", "at"], unique=False)


def downgrade() -> None:
    # Without the gaps, the older schema reads every purged event as deleted by an intruder.
    if op.get_bind().scalar(sa.text("SELECT COUNT(*) FROM audit_chain_gaps")):
        raise RuntimeError("audit events were purged by retention: the older chain cannot verify across them")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_org_at")

    op.drop_table("audit_chain_gaps")
