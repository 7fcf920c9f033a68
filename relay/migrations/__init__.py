"""The history of a node's database schema (alembic revisions in ``versions/``), and bringing a
database up to it. Every node runs this when it opens its database (relay.db.create_schema).

Checking costs two small queries; alembic itself (about 75 ms to import) loads only when an
upgrade is due, since a village laptop opens its node on every command.

A change to relay/schema.py needs a revision here, written by hand: a new file in
``versions/`` whose ``down_revision`` is the current head, then ``HEAD`` below set to it.
tests/test_migrations.py fails until the migrated schema equals relay/schema.py again.
"""

from sqlalchemy import Connection, inspect, text

__all__ = ["HEAD", "current_revision", "upgrade"]

HEAD = "0014"


def current_revision(conn: Connection) -> str | None:
    """The revision the database is stamped with; None if it is not stamped (a new database,
    or one made before migrations: by release 6e8a5c3 or a build since)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    version: str | None = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return version


def upgrade(conn: Connection) -> None:
    """Apply the revisions the database lacks, in the caller's transaction (which holds the
    node's write lock, so no other process migrates at the same time)."""
    from relay.migrations._upgrade import upgrade_to_head  # loads alembic: only when due

    upgrade_to_head(conn)
