"""Heartbeats carry a node's last successful push and pull (coverage and sync lag).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("last_push", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("last_pull", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("last_pull")
        batch.drop_column("last_push")
