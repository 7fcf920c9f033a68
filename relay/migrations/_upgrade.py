"""Running alembic on a connection the caller holds: no alembic.ini, no engine of its own."""

from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Connection, inspect

from relay.errors import SchemaError
from relay.migrations import HEAD

BASELINE = "0001"  # the schema of release 6e8a5c3
# What 0002 added: an unstamped database made by a release has none of it (6e8a5c3). Builds
# between that release and migrations made some of it and were never released.
_ADDED_TABLES = frozenset({"calendars", "staff", "windows", "window_complaints"})
_ADDED_CASE_COLUMNS = frozenset({"paused_step", "window"})

log = structlog.get_logger()


def alembic_config(conn: Connection) -> Config:
    """Alembic's configuration for this package's scripts, running on ``conn`` (env.py)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = conn
    return config


def upgrade_to_head(conn: Connection) -> None:
    """Stamp a database made before migrations with the revision its schema matches, then
    apply every later revision. All in the caller's transaction: a failure leaves it as it was."""
    config = alembic_config(conn)
    try:
        if not inspect(conn).has_table("alembic_version"):
            found = unstamped_revision(conn)
            if found is not None:
                command.stamp(config, found)
                log.info("db.schema.recognised", revision=found)
        command.upgrade(config, "head")
    except CommandError as exc:  # an unknown revision: a database from a newer release
        raise SchemaError(f"the node's database cannot be upgraded: {exc}") from exc
    log.info("db.schema.upgraded", revision=HEAD)


def unstamped_revision(conn: Connection) -> str | None:
    """The revision the schema of a database without alembic's stamp matches: None when it
    holds none of our tables (a new database)."""
    inspector = inspect(conn)
    tables = set(inspector.get_table_names())
    if "events" not in tables:
        return None
    case_columns = {column["name"] for column in inspector.get_columns("cases")}
    added = (tables & _ADDED_TABLES) | (case_columns & _ADDED_CASE_COLUMNS)
    if not added:
        return BASELINE
    raise SchemaError(
        "the node's database was made by an unreleased build (it has "
        f"{', '.join(sorted(added))} but not all of what came with them); restore a backup "
        "made by a release"
    )
