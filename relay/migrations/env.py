"""Alembic's environment: migrations run on the connection relay.migrations hands over, inside
the transaction that holds the node's write lock. There is no offline (``--sql``) mode."""

from alembic import context

from relay.schema import metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("relay migrations run on an open connection (relay.migrations.upgrade)")
    # Batch mode: SQLite alters most things only by copying the table (alembic does it).
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("relay migrations have no offline (--sql) mode")
run_migrations_online()
