"""openid provider: codes and sessions remember their client, nonce and scope

Revision ID: 0a1dc0de5e9a
Revises: 666b58935304
Create Date: 2026-12-02 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0a1dc0de5e9a"
down_revision: str | None = "666b58935304"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("end_user_codes") as batch:
        batch.add_column(sa.Column("client_id", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("nonce", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("scope", sa.String(length=512), nullable=True))
    with op.batch_alter_table("end_user_sessions") as batch:
        batch.add_column(sa.Column("client_id", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("scope", sa.String(length=512), nullable=True))
    with op.batch_alter_table("oidc_logins") as batch:
        batch.add_column(sa.Column("client_authorization", sa.String(length=4096), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oidc_logins") as batch:
        batch.drop_column("client_authorization")
    with op.batch_alter_table("end_user_sessions") as batch:
        batch.drop_column("scope")
        batch.drop_column("client_id")
    with op.batch_alter_table("end_user_codes") as batch:
        batch.drop_column("scope")
        batch.drop_column("nonce")
        batch.drop_column("client_id")
