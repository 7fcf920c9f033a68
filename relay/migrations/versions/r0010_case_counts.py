"""Cases counted as they change (relay/tallies.py): supervision and coverage read the counts
instead of scanning every case. The cases already held are counted in 0012, with the table it
adds (relay.tallies.recount fills every count table of today's schema).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "case_counts",
        sa.Column("owner", sa.String(12), primary_key=True),
        sa.Column("item_code", sa.String(64), primary_key=True),
        sa.Column("window", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("deadline", sa.String(10), primary_key=True),
        sa.Column("statutory_deadline", sa.String(10), primary_key=True),
        sa.Column("yellow_on", sa.String(10), primary_key=True),
        sa.Column("rating", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "village_counts",
        sa.Column("village_code", sa.String(12), primary_key=True),
        sa.Column("status", sa.String(24), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("latest", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("village_counts")
    op.drop_table("case_counts")
