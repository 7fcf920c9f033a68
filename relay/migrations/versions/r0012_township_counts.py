"""Running cases counted by township (relay/tallies.py), so supervision counts each township's
warnings without listing every warned case; the cases' status index also orders by deadline,
so the most urgent warned cases are found without reading every open case. The counts are made
afresh from the cases held.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

from relay import tallies

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "township_counts",
        sa.Column("township_code", sa.String(9), primary_key=True),
        sa.Column("deadline", sa.String(10), primary_key=True),
        sa.Column("statutory_deadline", sa.String(10), primary_key=True),
        sa.Column("yellow_on", sa.String(10), primary_key=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
    )
    op.drop_index("ix_cases_status", table_name="cases")
    op.create_index("ix_cases_status_deadline", "cases", ["status", "deadline"])
    bind = op.get_bind()
    for statement in tallies.recount():  # the same counting the ledger keeps up from here on
        bind.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_cases_status_deadline", table_name="cases")
    op.create_index("ix_cases_status", "cases", ["status"])
    op.drop_table("township_counts")
