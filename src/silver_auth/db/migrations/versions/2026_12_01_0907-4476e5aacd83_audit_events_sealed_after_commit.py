"""audit events sealed after commit

Events get an insertion id (row_id) when written and their chain fields (seq, prev_hash, hash) from
the sealer later, so audited writes no longer queue on the chain head. Existing events were chained
in insertion order: they keep their chain fields (they are sealed) and take row_id = seq, which keeps
their hashes valid (see audit/chain.py).

Revision ID: 4476e5aacd83
Revises: a8ac0c8f220e
Create Date: 2026-12-01 09:07:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4476e5aacd83"
down_revision: str | None = "a8ac0c8f220e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# INTEGER on SQLite: only that spelling makes the column the rowid, assigned on insert.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNSEALED = sa.text("seq IS NULL")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_id", ROW_ID, nullable=True))
    op.execute("UPDATE audit_events SET row_id = seq")
    # SQLite: one table rebuild, rows copied as they are; Postgres: these statements, in place.
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_org_seq")
        batch_op.drop_constraint("pk_audit_events", type_="primary")
        batch_op.alter_column("row_id", existing_type=ROW_ID, nullable=False)
        batch_op.create_primary_key("pk_audit_events", ["row_id"])
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=True)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_events_seq"), ["seq"])
        batch_op.create_index("ix_audit_events_org_row", ["org_id", "row_id"], unique=False)
        batch_op.create_index("ix_audit_events_org_actor_row", ["org_id", "actor", "row_id"], unique=False)
        batch_op.create_index(
            "ix_audit_events_unsealed",
            ["row_id"],
            unique=False,
            sqlite_where=UNSEALED,
            postgresql_where=UNSEALED,
        )
    if postgres:
        # What BIGSERIAL would have made (its sequence name too), starting after the carried-over events.
        op.execute("CREATE SEQUENCE audit_events_row_id_seq OWNED BY audit_events.row_id")
        op.execute(
            "SELECT setval('audit_events_row_id_seq', "
            "(SELECT COALESCE(MAX(row_id), 0) + 1 FROM audit_events), false)"
        )
        op.execute(
            "ALTER TABLE audit_events ALTER COLUMN row_id SET DEFAULT nextval('audit_events_row_id_seq')"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.scalar(sa.text("SELECT COUNT(*) FROM audit_events WHERE seq IS NULL")):
        raise RuntimeError("some audit events are not sealed yet: run `silver-auth audit seal` first")
    # The old format has no insertion id: an event sealed out of insertion order would stop verifying.
    if bind.scalar(sa.text("SELECT COUNT(*) FROM audit_events WHERE row_id <> seq")):
        raise RuntimeError("audit events were sealed out of insertion order: the old chain cannot hold them")
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_events ALTER COLUMN row_id DROP DEFAULT")
        op.execute("DROP SEQUENCE audit_events_row_id_seq")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_unsealed", sqlite_where=UNSEALED, postgresql_where=UNSEALED)
        batch_op.drop_index("ix_audit_events_org_actor_row")
        batch_op.drop_index("ix_audit_events_org_row")
        batch_op.drop_constraint(batch_op.f("uq_audit_events_seq"), type_="unique")
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_constraint("pk_audit_events", type_="primary")
        batch_op.create_primary_key("pk_audit_events", ["seq"])
        batch_op.create_index("ix_audit_events_org_seq", ["org_id", "seq"], unique=False)
        batch_op.drop_column("row_id")
