"""A node opened from its home folder: config, database, ledger, and its link upward."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from casework import Catalog
from relay import calendars, catalogs
from relay.config import NodeConfig
from relay.db import create_schema, open_engine, serialize_writers
from relay.ledger import Ledger
from relay.privacy import village_vault
from relay.sync import Syncer
from relay.upstream import GrpcUpstream
from relay.vault import Vault


@dataclass
class Node:
    home: Path
    config: NodeConfig
    engine: AsyncEngine
    ledger: Ledger

    async def reload_published(self) -> None:
        """Take the catalog and calendar versions kept in the database now: the district's
        server learns what `catalog publish` and `calendar publish` stored while it ran."""
        kept, newest = await _catalogs(self.engine, self.home)
        self.ledger.adopt(kept, newest)
        async with self.engine.connect() as conn:
            version, calendar = await calendars.load(conn)
        self.ledger.adopt_calendar(calendar, version)

    async def reload_published_forever(self, every_seconds: float = 30.0) -> None:
        """What a node without an upstream runs beside its server (the district hub)."""
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.reload_published()
            except Exception:  # a bad row or a busy database: keep what was taken, try again
                log.exception("node.reload.failed")

    def upstream(self) -> GrpcUpstream:
        """A client of this node's configured upstream: mutual TLS with the node's certificate,
        checking the upstream's (or plaintext, where insecure_loopback allows it)."""
        config = self.config
        security = config.tls.security(self.home, ("upstream address", config.upstream))
        timeout = config.relay.push_timeout_seconds
        return GrpcUpstream(
            config.upstream, timeout, security, config.upstream_code, config.code, self.engine
        )

    def syncer(self, upstream: GrpcUpstream | None = None) -> Syncer:
        """A syncer talking to this node's configured upstream over gRPC (``upstream``, if given)."""
        return Syncer(self.engine, self.ledger, upstream or self.upstream())


CATALOG_FILE = "catalog.json"
log = structlog.get_logger()


def first_catalog(home: Path) -> bytes:
    """The catalog a new node starts with: the one given at init, else the shipped one."""
    path = home / CATALOG_FILE
    if path.exists():
        return path.read_bytes()
    return resources.files("casework").joinpath("data/catalog.json").read_bytes()


async def _catalogs(engine: AsyncEngine, home: Path) -> tuple[dict[str, Catalog], str]:
    """Every catalog version the node keeps, and the newest; a new node keeps its first."""
    async with engine.begin() as conn:
        await serialize_writers(conn)  # two first opens must not both store the first catalog
        published = await catalogs.newest(conn)
        if published is None:
            document = first_catalog(home)
            published = catalogs.Published(catalogs.parse_document(document).version, document, 0)
            await catalogs.store(conn, published)
        return await catalogs.load_all(conn), published.version


@asynccontextmanager
async def open_node(home: Path, config: NodeConfig | None = None) -> AsyncIterator[Node]:
    """Open (and on first use create) a node's database; closes it on exit. A village's
    personal data is sealed: its data key is opened with the agent's passphrase first."""
    config = config or NodeConfig.load(home)
    village = config.role == "village"
    engine = open_engine(config.db_url, wipe_deleted=village)
    try:
        await create_schema(engine)
        vault = await village_vault(home, engine) if village else Vault()
        kept, newest = await _catalogs(engine, home)
        node = Node(home, config, engine, Ledger(config, kept[newest], vault=vault))
        await node.reload_published()
        yield node
    finally:
        await engine.dispose()
