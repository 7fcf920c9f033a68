"""When each one-time enrollment token was made: the district refuses a token made before the
village's revocation. Tokens kept already count as made at the earliest they can have been
(their expiry less the longest a token lasts, 7 days). And when a village's closed case was
settled upstream: its personal data is forgotten a grace period later (relay.privacy).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

_LONGEST_US = 7 * 24 * 3600 * 1_000_000


def upgrade() -> None:
    op.add_column("enroll_tokens", sa.Column("made_at", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(sa.text(f"UPDATE enroll_tokens SET made_at = expires_at - {_LONGEST_US}"))
    with op.batch_alter_table("enroll_tokens") as batch:
        batch.alter_column("made_at", server_default=None)
    op.add_column("cases", sa.Column("settled_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("settled_at")
    with op.batch_alter_table("enroll_tokens") as batch:
        batch.drop_column("made_at")
