"""Baseline: the schema of release 6e8a5c3, the first one a node ran.

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# 64-bit on PostgreSQL; on SQLite an INTEGER PRIMARY KEY is the 64-bit rowid.
POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("position", POSITION, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("origin_node", sa.String(12), nullable=False),
        sa.Column("origin_seq", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("catalog_version", sa.String(32), nullable=False),
        sa.Column("village_code", sa.String(12), nullable=False),
        sa.Column("township_code", sa.String(9), nullable=False),
        sa.Column("via", sa.String(12)),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_case_id", "events", ["case_id"])
    op.create_index("ix_events_village_feed", "events", ["village_code", "position"])
    op.create_index("ix_events_township_feed", "events", ["township_code", "position"])
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(36), primary_key=True),
        sa.Column("item_code", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("owner", sa.String(12), nullable=False),
        sa.Column("village_code", sa.String(12), nullable=False),
        sa.Column("township_code", sa.String(9), nullable=False),
        sa.Column("decide_level", sa.String(10), nullable=False),
        sa.Column("applicant_name", sa.Text(), nullable=False),
        sa.Column("applicant_id", sa.String(18), nullable=False),
        sa.Column("phone", sa.String(15), nullable=False),
        sa.Column("missing_materials", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("departments", sa.Text(), nullable=False),
        sa.Column("catalog_version", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("deadline", sa.String(10)),
        sa.Column("statutory_deadline", sa.String(10)),
        sa.Column("paused_on", sa.String(10)),
        sa.Column("decided_on", sa.String(10)),
    )
    op.create_index("ix_cases_status", "cases", ["status"])
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "inbox_peers",
        sa.Column("sender", sa.String(12), primary_key=True),
        sa.Column("stream", sa.BigInteger(), nullable=False),
        sa.Column("applied_upto", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", POSITION, primary_key=True, autoincrement=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("peer", sa.String(12), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_dead_letters_event_id", "dead_letters", ["event_id"])
    op.create_table(
        "state",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.String(64)),
    )
    op.create_table(
        "catalogs",
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("published_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "nodes",
        sa.Column("code", sa.String(12), primary_key=True),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("enrolled_at", sa.BigInteger()),
        sa.Column("last_seen", sa.BigInteger()),
        sa.Column("backlog", sa.BigInteger()),
        sa.Column("software_version", sa.String(32)),
        sa.Column("catalog_version", sa.String(32)),
        sa.Column("clock_offset_ms", sa.BigInteger()),
    )


def downgrade() -> None:
    for table in ("nodes", "catalogs", "state", "dead_letters", "inbox_peers", "outbox", "cases", "events"):
        op.drop_table(table)
