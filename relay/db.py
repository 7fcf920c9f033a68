"""Opening a node's database: SQLite (WAL, durable commits) or PostgreSQL, same schema."""

import sqlite3
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from operator import itemgetter
from typing import Any

import asyncpg
from sqlalchemy import ColumnElement, Table, any_, bindparam, event, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from relay import migrations

_WRITE_LOCK = 0x5E7E1  # any constant: one lock per database
_DEFERRED = "servicenet_deferred_begin"  # an execution option: see reading()


def open_engine(url: str, wipe_deleted: bool = False) -> AsyncEngine:
    """An engine whose write transactions are serialised and durable before commit returns.
    ``wipe_deleted`` (a village): SQLite overwrites what it deletes or replaces with zeros."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _make_sqlite_durable(engine, wipe_deleted)
        return engine
    # Plans made for each execution: asyncpg prepares every statement once a connection, and
    # PostgreSQL's cached generic plan for a table still nearly empty then (a new hub) stays a
    # sequential scan as the table grows: the relay's "id = ANY(1,000 ids)" reads took up to
    # a second a batch at 100,000 events (bench/README.md, issue 4).
    custom_plans = {"server_settings": {"plan_cache_mode": "force_custom_plan"}}
    return create_async_engine(
        url, pool_size=5, max_overflow=5, hide_parameters=True, connect_args=custom_plans
    )


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only. On SQLite its transaction begins deferred: it reads the
    last commit without waiting for the write lock, which a server's per-call reads (the
    certificate check, the feed) would otherwise queue for behind every push being applied."""
    async with engine.connect() as conn:
        await conn.execution_options(**{_DEFERRED: True})
        yield conn


async def serialize_writers(conn: AsyncConnection) -> None:
    """Take the node's write lock for the rest of the transaction. SQLite has it already
    (BEGIN IMMEDIATE). On PostgreSQL a transaction-level advisory lock makes feed positions
    commit in the order they are given out, so a puller's cursor never skips a row that
    commits late."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITE_LOCK})


def among(conn: AsyncConnection, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN values``. On PostgreSQL one array parameter (``= ANY``): SQLAlchemy renders
    an expanding IN anew for every list, ~5 ms for the relay's 1,000 ids (bench/README.md)."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


async def insert_many(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows (all with the same keys) in the caller's transaction, straight through the
    driver (aiosqlite or asyncpg, on the transaction's own connection): SQLAlchemy's per-row
    parameter handling costs more than the database's own insert on the relay's hot path.
    PostgreSQL gets the rows by COPY, a fifth faster than executemany (bench/README.md);
    columns left out take their defaults either way (an event's position from its sequence).
    A row breaking a constraint raises SQLAlchemy's IntegrityError, as its own inserts do."""
    columns = list(rows[0])
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None, "a connection in a transaction has its driver connection"
    values = itemgetter(*columns)
    records = [values(row) for row in rows]  # every table has 2+ columns: each is a tuple
    try:
        if conn.dialect.name == "sqlite":
            names = ", ".join(f'"{column}"' for column in columns)  # quoted: "window" is a keyword
            marks = ", ".join("?" * len(columns))
            await driver.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", records)
            return
        # SQLAlchemy opens the transaction at its first statement (the ledger's write lock or its
        # reads); rows written before that would commit on their own.
        assert driver.is_in_transaction(), "insert_many before the transaction's first statement"
        await driver.copy_records_to_table(table.name, records=records, columns=columns)
    except (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
        raise IntegrityError(f"insert into {table.name}", None, exc) from exc


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


class CommitWatch:
    """Whether anything was committed to a node's SQLite database since last asked, by any
    connection of any process (``PRAGMA data_version`` on a connection of its own: a read of the
    WAL index, microseconds, no transaction), so that an idle reader need not re-read its
    tables ten times a second (bench/README.md, issue 4). On PostgreSQL it cannot tell: yes."""

    def __init__(self, engine: AsyncEngine) -> None:
        url = engine.url
        sqlite = url.get_backend_name() == "sqlite"
        self._conn = sqlite3.connect(url.database or "", timeout=0.1) if sqlite else None
        self._seen = -1

    def changed(self) -> bool:
        if self._conn is None:
            return True
        try:
            version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.OperationalError:  # busy for a moment (a checkpoint): look at the tables
            return True
        changed, self._seen = version != self._seen, version
        return changed

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


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
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_DEFERRED) else "BEGIN IMMEDIATE")
