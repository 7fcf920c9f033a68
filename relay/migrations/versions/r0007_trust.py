"""Revocation list and one-time enrollment tokens (mutual TLS: revoke, enroll by token).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "revocations",
        sa.Column("code", sa.String(12), primary_key=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_revocations_revoked_at", "revocations", ["revoked_at"])
    op.create_table(
        "enroll_tokens",
        sa.Column("token_id", sa.String(16), primary_key=True),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("village", sa.String(12), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("enroll_tokens")
    op.drop_index("ix_revocations_revoked_at", "revocations")
    op.drop_table("revocations")
