"""The audit trail: a hash-chained row for every event a node applied, the witness it keeps of
each lower node's chain, and the breaks found in those. The chain starts with the events
already held, in the order they were applied (their feed position).

Revision ID: 0009
Revises: 0008
"""

import json

import sqlalchemy as sa
from alembic import op

from relay._chain import GENESIS, row_digest, row_hash, staff_of
from relay.records import EVENT_FIELDS

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

_PAGE = 10_000
_POSITION = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    table = op.create_table(
        "audit",
        sa.Column("seq", _POSITION, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("event_hash", sa.LargeBinary(), nullable=False),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("row_hash", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "audit_peers",
        sa.Column("node", sa.String(12), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("row_hash", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "audit_breaks",
        sa.Column("id", _POSITION, primary_key=True, autoincrement=True),
        sa.Column("node", sa.String(12), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
    )
    _chain_events_held(table)


def _chain_events_held(table: sa.Table) -> None:
    """One audit row per event already applied, in feed order, page by page."""
    bind, seq, prev, after = op.get_bind(), 0, GENESIS, -1
    columns = ", ".join(("position", *EVENT_FIELDS))
    while True:
        page = bind.execute(
            sa.text(f"SELECT {columns} FROM events WHERE position > :after ORDER BY position LIMIT {_PAGE}"),
            {"after": after},
        ).all()
        rows = []
        for event in page:
            seq += 1
            digest, name = row_digest(event._mapping), _staff(event.payload)
            current = row_hash(prev, seq, digest, name)
            rows.append(
                {
                    "seq": seq,
                    "event_id": event.event_id,
                    "event_hash": digest,
                    "staff": name,
                    "prev_hash": prev,
                    "row_hash": current,
                }
            )
            prev = current
        if rows:
            op.bulk_insert(table, rows)
        if len(page) < _PAGE:
            return
        after = page[-1].position


def _staff(payload: bytes) -> str:
    try:
        body = json.loads(payload)
    except ValueError:
        return ""
    return staff_of(body) if isinstance(body, dict) else ""


def downgrade() -> None:
    op.drop_table("audit_breaks")
    op.drop_table("audit_peers")
    op.drop_table("audit")
