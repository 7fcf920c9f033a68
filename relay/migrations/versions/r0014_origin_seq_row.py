"""The counter of the events a node makes has its row from the start: a batch that makes events
locks it (relay/ledger.py), and on PostgreSQL, where batches now work at once until they write
their events, a missing row locked nothing.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO state (name, value) SELECT 'origin_seq', 0"
        " WHERE NOT EXISTS (SELECT 1 FROM state WHERE name = 'origin_seq')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM state WHERE name = 'origin_seq' AND value = 0")
