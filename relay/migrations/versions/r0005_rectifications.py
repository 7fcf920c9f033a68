"""Rectification records kept as rows (supervision reads them without parsing every rating),
filled from the events already held.

Revision ID: 0005
Revises: 0004
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_OPENING = ("case.rated", "case.complaint_filed")


def upgrade() -> None:
    table = op.create_table(
        "rectifications",
        sa.Column("record", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rectify_by", sa.String(10), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
    )
    op.create_index("ix_rectifications_case_id", "rectifications", ["case_id"])
    found = op.get_bind().execute(
        sa.text(
            "SELECT event_id, case_id, type, payload FROM events "
            "WHERE type IN ('case.rated', 'case.complaint_filed', 'case.rectified') ORDER BY position"
        )
    )
    rows: dict[str, dict[str, object]] = {}
    for event_id, case_id, kind, payload in found:
        body = json.loads(payload)
        if kind in _OPENING and "rectify_by" in body:
            complaint = kind == "case.complaint_filed"
            rows[event_id] = {
                "record": event_id,
                "case_id": case_id,
                "kind": "complaint" if complaint else "bad_review",
                "rectify_by": body["rectify_by"],
                "outcome": None,
            }
        elif kind == "case.rectified" and body.get("of") in rows:
            rows[body["of"]]["outcome"] = body.get("outcome")
    if rows:
        op.bulk_insert(table, list(rows.values()))


def downgrade() -> None:
    op.drop_index("ix_rectifications_case_id", "rectifications")
    op.drop_table("rectifications")
