"""The feed indexes hold only the events a feed can hand out (relay/schema.py): not those a
puller sent up itself, which a waiting pull walked through at every read.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen copies of relay/schema.py's conditions as this revision made them.
VILLAGE_FEEDABLE = "via IS NULL OR via <> village_code"
TOWNSHIP_FEEDABLE = "via IS NULL OR via <> township_code"


def upgrade() -> None:
    op.drop_index("ix_events_village_feed", table_name="events")
    op.drop_index("ix_events_township_feed", table_name="events")
    for name, column, condition in (
        ("ix_events_village_feedable", "village_code", VILLAGE_FEEDABLE),
        ("ix_events_township_feedable", "township_code", TOWNSHIP_FEEDABLE),
    ):
        where = sa.text(condition)
        op.create_index(name, "events", [column, "position"], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    op.drop_index("ix_events_village_feedable", table_name="events")
    op.drop_index("ix_events_township_feedable", table_name="events")
    op.create_index("ix_events_village_feed", "events", ["village_code", "position"])
    op.create_index("ix_events_township_feed", "events", ["township_code", "position"])
