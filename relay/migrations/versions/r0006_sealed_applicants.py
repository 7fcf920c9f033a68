"""Villages keep the applicant sealed with their data key (relay/vault.py) in a column of its own.

Rows a village kept in clear before are sealed at its first open with the passphrase
(relay/privacy.py), not here: a migration has no key.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("applicant_sealed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("applicant_sealed")
