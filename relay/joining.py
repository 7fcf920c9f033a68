"""Joining the network: a township or village node created from its enrollment bundle."""

from pathlib import Path

from relay.bundle import Bundle
from relay.config import NodeConfig, default_db_url


def config_from_bundle(
    home: Path, bundle: Bundle, upstream: str, db: str | None, operator: str
) -> NodeConfig:
    return NodeConfig(
        code=bundle.code,
        role=bundle.role,
        name=bundle.name,
        district_code=bundle.district_code,
        db_url=db or default_db_url(home),
        operator=operator,
        upstream=upstream,
        upstream_code=bundle.upstream_code,
    )
