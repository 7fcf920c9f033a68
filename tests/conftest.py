"""Shared fixtures: real SQLite files in a temporary folder, nodes wired in-process or over gRPC."""

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import SQLAlchemyError

from relay.config import NodeConfig, RelayPolicy, default_db_url
from relay.db import open_engine
from relay.node import Node, open_node
from relay.schema import metadata
from tests.netkit import Network

DISTRICT, TOWNSHIP, VILLAGE = "500117", "500117001", "500117001005"
OTHER_TOWNSHIP, OTHER_VILLAGE = "500117002", "500117002001"
DIVISIONS = Path(__file__).resolve().parent.parent / "casework" / "data" / "hechuan-500117.csv"
FAST = RelayPolicy(backoff_initial_seconds=0.01, backoff_max_seconds=0.2, poll_interval_seconds=0.01)
# Tests read the product's words in its default language, whatever the machine's locale.
os.environ["SERVICENET_LANG"] = "zh-CN"
# Under pytest-xdist each worker empties its own database (test_gw0, test_gw1, ...).
PG_URL = os.environ.get("SERVICENET_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test") + (
    f"_{os.environ['PYTEST_XDIST_WORKER']}" if "PYTEST_XDIST_WORKER" in os.environ else ""
)
# Village data keys are wrapped with this passphrase (relay/keyfile.py), in-process and in every
# command the tests run.
PASSPHRASE = os.environ.setdefault("SERVICENET_PASSPHRASE", "test passphrase")


def config(home: Path, code: str, role: str, upstream_code: str = "", db_url: str = "") -> NodeConfig:
    return NodeConfig(
        code=code,
        role=role,
        name=code,
        district_code=DISTRICT,
        db_url=db_url or default_db_url(home),
        operator="tester",
        upstream="" if not upstream_code else "in-process",
        upstream_code=upstream_code,
        relay=FAST,
    )


@dataclass
class Net:
    district: Node
    township: Node
    village: Node


async def fresh_postgres(url: str) -> str:
    """Empty the test database for the district (made if missing); skip where no PostgreSQL is
    reachable."""
    engine = open_engine(url)
    try:
        await _create_database(url)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    except (OSError, SQLAlchemyError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {url}: {exc}")
    finally:
        await engine.dispose()
    return url


async def _create_database(url: str) -> None:
    name = make_url(url).database
    server = open_engine(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    try:
        async with server.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            found = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not found:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await server.dispose()


@pytest.fixture(scope="session")
def network_made(tmp_path_factory: pytest.TempPathFactory) -> Network:
    """District 500117 (on SQLite) with township 500117001 and village 500117001005 enrolled
    and initialised through the command lines, once per test process; tests take copies."""
    made = Network(tmp_path_factory.mktemp("made"))
    made.add(TOWNSHIP)
    made.add(VILLAGE)
    return made


@pytest.fixture
def homes(network_made: Network, tmp_path: Path) -> Network:
    """A copy of network_made in the test's own folder, its servers not started."""
    return network_made.copy(tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def district_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The district's database: a SQLite file, or the PostgreSQL test database."""
    if request.param == "sqlite":
        return ""
    return asyncio.run(fresh_postgres(PG_URL))


@pytest.fixture
async def net(tmp_path: Path, district_db: str) -> AsyncIterator[Net]:
    """A district (on SQLite or PostgreSQL), one of its townships and one of that township's
    villages (each on its own SQLite file), not yet connected."""
    homes = {name: tmp_path / name for name in ("d", "t", "v")}
    for home in homes.values():
        home.mkdir()
    async with (
        open_node(homes["d"], config(homes["d"], DISTRICT, "district", db_url=district_db)) as district,
        open_node(homes["t"], config(homes["t"], TOWNSHIP, "township", DISTRICT)) as township,
        open_node(homes["v"], config(homes["v"], VILLAGE, "village", TOWNSHIP)) as village,
    ):
        yield Net(district, township, village)
