"""The supervisor role (督查): the roster's role column holds "supervisor".

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.alter_column("role", type_=sa.String(16), existing_type=sa.String(8), existing_nullable=False)


def downgrade() -> None:
    op.execute("DELETE FROM staff WHERE role = 'supervisor'")  # not a role the older schema holds
    with op.batch_alter_table("staff") as batch:
        batch.alter_column("role", type_=sa.String(8), existing_type=sa.String(16), existing_nullable=False)
