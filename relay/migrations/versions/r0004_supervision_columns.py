"""Supervision in SQL at a million cases: the day a case turns yellow and its latest rating.

Cases accepted before this revision have no first yellow day; supervision counts them green
until they are red. Ratings given before it are not copied onto their cases.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("yellow_on", sa.String(10), nullable=True))
        batch.add_column(sa.Column("rating", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("rating")
        batch.drop_column("yellow_on")
