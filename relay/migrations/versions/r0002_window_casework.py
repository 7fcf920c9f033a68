"""Casework at the window and published calendars: a case's paused step and acting window,
holiday calendars the district publishes, the staff roster, windows' items, window complaints.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Existing cases get '' (not paused at a step, no window yet), as new ones do.
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("paused_step", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("window", sa.String(32), nullable=False, server_default=""))
    op.create_table(
        "calendars",
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("published_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "staff",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("department", sa.Text(), nullable=False),
    )
    op.create_table(
        "windows",
        sa.Column("window", sa.String(32), primary_key=True),
        sa.Column("item_codes", sa.Text(), nullable=False),
    )
    op.create_table(
        "window_complaints",
        sa.Column("id", POSITION, primary_key=True, autoincrement=True),
        sa.Column("window", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("filed_on", sa.String(10), nullable=False),
        sa.Column("rectify_by", sa.String(10), nullable=False),
        sa.Column("outcome", sa.Text()),
        sa.Column("closed_by", sa.String(64)),
    )


def downgrade() -> None:
    for table in ("window_complaints", "windows", "staff", "calendars"):
        op.drop_table(table)
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("window")
        batch.drop_column("paused_step")
