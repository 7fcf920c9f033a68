"""A node opened from its home folder: config, database, ledger, and its link upward."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from casework import Catalog, default_catalog, parse_catalog
from relay.config import NodeConfig
from relay.db import create_schema, open_engine
from relay.ledger import Ledger
from relay.sync import Syncer
from relay.upstream import GrpcUpstream


@dataclass
class Node:
    home: Path
    config: NodeConfig
    engine: AsyncEngine
    ledger: Ledger

    def syncer(self) -> Syncer:
        """A syncer talking to this node's configured upstream over gRPC."""
        upstream = GrpcUpstream(self.config.upstream, self.config.relay.push_timeout_seconds)
        return Syncer(self.engine, self.ledger, upstream)


CATALOG_FILE = "catalog.json"


def load_catalog(home: Path) -> Catalog:
    """The catalog this node works with: the one given at init, else the shipped one."""
    path = home / CATALOG_FILE
    if path.exists():
        return parse_catalog(json.loads(path.read_text(encoding="utf-8")))
    return default_catalog()


@asynccontextmanager
async def open_node(home: Path, config: NodeConfig | None = None) -> AsyncIterator[Node]:
    """Open (and on first use create) a node's database; closes it on exit."""
    config = config or NodeConfig.load(home)
    engine = open_engine(config.db_url)
    try:
        await create_schema(engine)
        yield Node(home, config, engine, Ledger(config, load_catalog(home)))
    finally:
        await engine.dispose()
