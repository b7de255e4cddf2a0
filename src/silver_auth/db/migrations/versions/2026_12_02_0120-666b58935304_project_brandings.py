"""project brandings

Revision ID: 666b58935304
Revises: 4d86bd278d6d
Create Date: 2026-12-02 01:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import silver_auth.db.base

revision: str = "666b58935304"
down_revision: str | None = "4d86bd278d6d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "project_brandings",
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("display_name", sa.String(length=60), nullable=True),
        sa.Column("primary_colour", sa.String(length=7), nullable=True),
        sa.Column("theme", sa.String(length=5), nullable=False),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("logo_type", sa.String(length=4), nullable=True),
        sa.Column("logo_sha256", sa.String(length=64), nullable=True),
        sa.Column("updated_at", silver_auth.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_brandings_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_brandings")),
    )


def downgrade() -> None:
    op.drop_table("project_brandings")
