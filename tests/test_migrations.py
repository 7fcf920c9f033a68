"""Schema migrations: every node brings its database up to date when it opens it."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from relay import migrations
from relay.config import NodeConfig
from relay.db import create_schema, open_engine
from relay.errors import SchemaError
from relay.node import open_node
from relay.schema import cases, metadata, staff
from tests.conftest import DISTRICT, config

CASE = {
    "case_id": "0190a3c2-7d5e-7b1a-9c4f-2e8d6a1b3c5d",
    "item_code": "twp-dibao-apply",
    "status": "accepted",
    "owner": "500117001",
    "village_code": "500117001005",
    "township_code": "500117001",
    "decide_level": "township",
    "applicant_name": "张三",
    "applicant_id": "11010519491231002X",
    "phone": "13800000000",
    "missing_materials": "[]",
    "reason": "",
    "departments": "[]",
    "catalog_version": "2026.1",
    "created_at": 1_760_000_000_000_000,
    "updated_at": 1_760_000_000_000_001,
    "deadline": "2026-11-30",
    "statutory_deadline": "2026-12-15",
    "paused_on": None,
    "decided_on": None,
}


def release_6e8a5c3() -> MetaData:
    """The tables of release 6e8a5c3 (`git show 6e8a5c3:relay/schema.py`), frozen here: what
    its `metadata.create_all` made on every node."""
    old = MetaData()
    position = BigInteger().with_variant(Integer, "sqlite")
    events = Table(
        "events",
        old,
        Column("position", position, primary_key=True, autoincrement=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("case_id", String(36), nullable=False, index=True),
        Column("origin_node", String(12), nullable=False),
        Column("origin_seq", BigInteger, nullable=False),
        Column("type", String(48), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("recorded_at", BigInteger, nullable=False),
        Column("catalog_version", String(32), nullable=False),
        Column("village_code", String(12), nullable=False),
        Column("township_code", String(9), nullable=False),
        Column("via", String(12)),
        sqlite_autoincrement=True,
    )
    Index("ix_events_village_feed", events.c.village_code, events.c.position)
    Index("ix_events_township_feed", events.c.township_code, events.c.position)
    old_cases = Table(
        "cases",
        old,
        Column("case_id", String(36), primary_key=True),
        Column("item_code", String(64), nullable=False),
        Column("status", String(24), nullable=False),
        Column("owner", String(12), nullable=False),
        Column("village_code", String(12), nullable=False),
        Column("township_code", String(9), nullable=False),
        Column("decide_level", String(10), nullable=False),
        Column("applicant_name", Text, nullable=False),
        Column("applicant_id", String(18), nullable=False),
        Column("phone", String(15), nullable=False),
        Column("missing_materials", Text, nullable=False),
        Column("reason", Text, nullable=False, default=""),
        Column("departments", Text, nullable=False, default="[]"),
        Column("catalog_version", String(32), nullable=False),
        Column("created_at", BigInteger, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
        Column("deadline", String(10)),
        Column("statutory_deadline", String(10)),
        Column("paused_on", String(10)),
        Column("decided_on", String(10)),
    )
    Index("ix_cases_status", old_cases.c.status)
    Table(
        "outbox",
        old,
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("event_id", String(64), nullable=False),
        Column("created_at", BigInteger, nullable=False),
    )
    Table(
        "inbox_peers",
        old,
        Column("sender", String(12), primary_key=True),
        Column("stream", BigInteger, nullable=False),
        Column("applied_upto", BigInteger, nullable=False),
        Column("updated_at", BigInteger, nullable=False),
    )
    Table(
        "dead_letters",
        old,
        Column("id", position, primary_key=True, autoincrement=True),
        Column("direction", String(3), nullable=False),
        Column("peer", String(12), nullable=False),
        Column("seq", BigInteger, nullable=False),
        Column("event_id", String(64), nullable=False, index=True),
        Column("case_id", String(36), nullable=False),
        Column("type", String(48), nullable=False),
        Column("reason", Text, nullable=False),
        Column("recorded_at", BigInteger, nullable=False),
    )
    Table(
        "state",
        old,
        Column("name", String(32), primary_key=True),
        Column("value", BigInteger, nullable=False),
        Column("text", String(64)),
    )
    Table(
        "catalogs",
        old,
        Column("version", String(32), primary_key=True),
        Column("document", LargeBinary, nullable=False),
        Column("published_at", BigInteger, nullable=False),
    )
    Table(
        "nodes",
        old,
        Column("code", String(12), primary_key=True),
        Column("role", String(10), nullable=False),
        Column("name", Text, nullable=False),
        Column("enrolled_at", BigInteger),
        Column("last_seen", BigInteger),
        Column("backlog", BigInteger),
        Column("software_version", String(32)),
        Column("catalog_version", String(32)),
        Column("clock_offset_ms", BigInteger),
    )
    return old


@pytest.fixture
def node_config(tmp_path: Path, district_db: str) -> NodeConfig:
    """A district node on a SQLite file or on the emptied PostgreSQL test database."""
    return config(tmp_path, DISTRICT, "district", db_url=district_db)


async def run_on(url: str, work: Any) -> Any:
    """Run ``work(connection)`` (synchronous) in one committed transaction on the database."""
    engine = open_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


async def make_6e8a5c3_node(url: str) -> None:
    """A database as release 6e8a5c3 left it, holding one case."""
    old = release_6e8a5c3()

    def build(conn: Connection) -> None:
        old.create_all(conn)
        conn.execute(old.tables["cases"].insert(), CASE)

    await run_on(url, build)


def alembic_config(conn: Connection | None = None) -> Config:
    """Alembic's configuration for the shipped scripts, running on ``conn`` (as nodes do)."""
    config = Config()
    config.set_main_option("script_location", "relay:migrations")
    config.attributes["connection"] = conn
    return config


def differences(target: MetaData) -> Any:
    """What autogenerate would write to turn the database into ``target`` (nothing: equal)."""

    def compare(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), target))

    return compare


async def test_a_6e8a5c3_database_is_upgraded_on_open(node_config: NodeConfig, tmp_path: Path) -> None:
    """A node made by release 6e8a5c3 opens: its case is intact, the new columns read '', and
    the new tables take rows."""
    await make_6e8a5c3_node(node_config.db_url)
    async with open_node(tmp_path, node_config) as node, node.engine.begin() as conn:
        row = (await conn.execute(select(cases).where(cases.c.case_id == CASE["case_id"]))).one()
        await conn.execute(staff.insert().values(name="赵一", window="1", role="A", department=""))
        assert (await conn.execute(select(staff.c.name))).scalars().all() == ["赵一"]
    assert {key: row._mapping[key] for key in CASE} == CASE
    assert (row.paused_step, row.window) == ("", "")
    assert await run_on(node_config.db_url, migrations.current_revision) == migrations.HEAD


async def test_a_current_database_is_left_alone(node_config: NodeConfig, tmp_path: Path) -> None:
    """Opening a node whose database is at the head changes nothing and keeps its rows."""
    async with open_node(tmp_path, node_config) as node, node.engine.begin() as conn:
        await conn.execute(cases.insert().values({**CASE, "window": "2"}))
    async with open_node(tmp_path, node_config) as node, node.engine.connect() as conn:
        assert (await conn.execute(select(cases.c.window))).scalars().all() == ["2"]
    assert await run_on(node_config.db_url, migrations.current_revision) == migrations.HEAD


async def test_two_processes_opening_an_old_node_migrate_it_once(node_config: NodeConfig) -> None:
    """A server and a command opening a 6e8a5c3 node at once: one migrates under the write
    lock, the other finds it done (without the lock the second would add the columns again)."""
    await make_6e8a5c3_node(node_config.db_url)
    engines = [open_engine(node_config.db_url) for _ in range(3)]
    try:
        await asyncio.gather(*(create_schema(engine) for engine in engines))
    finally:
        for engine in engines:
            await engine.dispose()
    assert await run_on(node_config.db_url, migrations.current_revision) == migrations.HEAD


@pytest.mark.parametrize("start", ["new", "6e8a5c3"])
async def test_the_migrated_schema_is_the_schema_module(
    node_config: NodeConfig, tmp_path: Path, start: str
) -> None:
    """Whatever a node started from (nothing, or release 6e8a5c3), after opening its database
    equals relay/schema.py."""
    if start == "6e8a5c3":
        await make_6e8a5c3_node(node_config.db_url)
    async with open_node(tmp_path, node_config):
        pass
    assert await run_on(node_config.db_url, differences(metadata)) == []
    assert await run_on(node_config.db_url, migrations.current_revision) == migrations.HEAD


async def test_the_baseline_is_release_6e8a5c3(node_config: NodeConfig) -> None:
    """The baseline revision makes exactly the schema of release 6e8a5c3, and downgrading from
    the head comes back to it."""
    await run_on(node_config.db_url, lambda conn: command.upgrade(alembic_config(conn), "0001"))
    assert await run_on(node_config.db_url, differences(release_6e8a5c3())) == []
    await run_on(node_config.db_url, lambda conn: command.upgrade(alembic_config(conn), "head"))
    await run_on(node_config.db_url, lambda conn: command.downgrade(alembic_config(conn), "0001"))
    assert await run_on(node_config.db_url, differences(release_6e8a5c3())) == []


async def test_a_failed_migration_leaves_the_database_as_it_was(
    node_config: NodeConfig, tmp_path: Path
) -> None:
    """A migration that fails halfway (here: a view in the way of a new table) is rolled back
    whole, stamp included, so the node can be fixed and opened again."""
    await make_6e8a5c3_node(node_config.db_url)
    await run_on(node_config.db_url, lambda conn: conn.execute(text("CREATE VIEW windows AS SELECT 1 AS w")))
    try:
        with pytest.raises(SQLAlchemyError):
            async with open_node(tmp_path, node_config):
                pass
        assert await run_on(node_config.db_url, differences(release_6e8a5c3())) == []
        assert await run_on(node_config.db_url, migrations.current_revision) is None
    finally:  # fresh_postgres drops tables only
        await run_on(node_config.db_url, lambda conn: conn.execute(text("DROP VIEW windows")))
    async with open_node(tmp_path, node_config):
        pass
    assert await run_on(node_config.db_url, migrations.current_revision) == migrations.HEAD


async def test_a_database_from_an_unreleased_build_is_refused(tmp_path: Path) -> None:
    """A schema with only part of a revision (a development build) is refused with a clear
    error, not half-migrated."""
    node_config = config(tmp_path, DISTRICT, "district")
    await make_6e8a5c3_node(node_config.db_url)
    await run_on(node_config.db_url, lambda conn: conn.execute(text("CREATE TABLE calendars (v TEXT)")))
    with pytest.raises(SchemaError, match="unreleased build"):
        async with open_node(tmp_path, node_config):
            pass


async def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    """A database stamped with a revision this software does not know is refused, untouched."""
    node_config = config(tmp_path, DISTRICT, "district")
    async with open_node(tmp_path, node_config):
        pass
    await run_on(
        node_config.db_url, lambda conn: conn.execute(text("UPDATE alembic_version SET version_num='9999'"))
    )
    with pytest.raises(SchemaError, match="9999"):
        async with open_node(tmp_path, node_config):
            pass
    assert await run_on(node_config.db_url, migrations.current_revision) == "9999"


def test_head_names_the_newest_revision() -> None:
    """relay.migrations.HEAD, which the quick check on open compares with, is the scripts' head."""
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == migrations.HEAD
