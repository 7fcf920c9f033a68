"""Opening a node's database: SQLite (WAL, durable commits) or PostgreSQL, same schema."""

from operator import itemgetter
from typing import Any

from sqlalchemy import Table, event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from relay import migrations

_WRITE_LOCK = 0x5E7E1  # any constant: one lock per database


def open_engine(url: str, wipe_deleted: bool = False) -> AsyncEngine:
    """An engine whose write transactions are serialised and durable before commit returns.
    ``wipe_deleted`` (a village): SQLite overwrites what it deletes or replaces with zeros."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _make_sqlite_durable(engine, wipe_deleted)
        return engine
    return create_async_engine(url, pool_size=5, max_overflow=5, hide_parameters=True)


async def serialize_writers(conn: AsyncConnection) -> None:
    """Take the node's write lock for the rest of the transaction. SQLite has it already
    (BEGIN IMMEDIATE). On PostgreSQL a transaction-level advisory lock makes feed positions
    commit in the order they are given out, so a puller's cursor never skips a row that
    commits late."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK})


async def insert_many(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows (all with the same keys) in the caller's transaction. On SQLite they go
    straight to the driver's executemany: SQLAlchemy's per-row parameter handling costs more
    than SQLite's own insert on the relay's hot path (bench/README.md)."""
    if conn.dialect.name != "sqlite":
        await conn.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    marks = ", ".join("?" * len(columns))
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None, "a connection in a transaction has its driver connection"
    values = itemgetter(*columns)
    await driver.executemany(sql, [values(row) for row in rows])


async def put_row(conn: AsyncConnection, table: Table, key: str, value: Any, values: dict[str, Any]) -> None:
    """Set ``values`` on the row whose ``key`` column is ``value``, inserting it if there is none
    (the caller holds the write lock, or the row's key is its own: no one inserts it meanwhile)."""
    column = table.c[key]
    updated = await conn.execute(table.update().where(column == value).values(**values))
    if updated.rowcount == 0:
        await conn.execute(table.insert().values({key: value, **values}))


async def create_schema(engine: AsyncEngine) -> None:
    """Bring the database to the current schema (relay/migrations): a new one gets every
    revision, an older one those it lacks; a current one costs two small queries. The write
    lock is held from the check to the commit, so when a server and a command open the node
    at once, one migrates and the other finds it done."""
    async with engine.begin() as conn:
        await serialize_writers(conn)
        if await conn.run_sync(migrations.current_revision) != migrations.HEAD:
            await conn.run_sync(migrations.upgrade)


def _make_sqlite_durable(engine: AsyncEngine, wipe_deleted: bool) -> None:
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
        if wipe_deleted:
            cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
