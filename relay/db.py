"""Opening a node's database: SQLite (WAL, durable commits) or PostgreSQL, same schema."""

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from relay.schema import metadata

_WRITE_LOCK = 0x5E7E1  # any constant: one lock per database


def open_engine(url: str) -> AsyncEngine:
    """An engine whose write transactions are serialised and durable before commit returns."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _make_sqlite_durable(engine)
        return engine
    return create_async_engine(url, pool_size=5, max_overflow=5)


async def serialize_writers(conn: AsyncConnection) -> None:
    """Take the node's write lock for the rest of the transaction. SQLite has it already
    (BEGIN IMMEDIATE). On PostgreSQL a transaction-level advisory lock makes feed positions
    commit in the order they are given out, so a puller's cursor never skips a row that
    commits late."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK})


async def create_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


def _make_sqlite_durable(engine: AsyncEngine) -> None:
    # BEGIN IMMEDIATE: a writer takes the lock at the start of its transaction, so counters read
    # inside it cannot race another process (the CLI writes while the server runs).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
