"""Catalog versions kept in a node's database: published at the district, pulled down."""

import json
from dataclasses import dataclass

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from casework import Catalog, InvalidInput, parse_catalog
from relay.schema import catalogs


@dataclass(frozen=True, slots=True)
class Published:
    version: str
    document: bytes  # UTF-8 JSON
    published_at: int  # microseconds since the epoch


def parse_document(document: bytes) -> Catalog:
    """A catalog document checked field by field (InvalidInput names the first bad one)."""
    try:
        raw = json.loads(document)
    except ValueError as exc:
        raise InvalidInput(f"catalog is not valid JSON: {exc}", "catalog_json", reason=str(exc)) from exc
    if not isinstance(raw, dict):
        raise InvalidInput("catalog must be a JSON object with 'version' and 'items'", "catalog_object")
    return parse_catalog(raw)


async def store(conn: AsyncConnection, published: Published) -> bool:
    """Keep a catalog version; False if it was kept already (see keep_version)."""
    return await keep_version(conn, catalogs, "catalog", published)


async def keep_version(conn: AsyncConnection, table: Table, kind: str, published: Published) -> bool:
    """Keep a published version in ``table``; False if it was kept already. The same version
    with other content is refused: a published version never changes."""
    kept = (await conn.execute(select(table.c.document).where(table.c.version == published.version))).scalar()
    if kept is not None:
        if json.loads(kept) != json.loads(published.document):
            changed = f"{kind} version {published.version} exists with other content"
            raise InvalidInput(f"{changed}: raise the version", "version_taken", version=published.version)
        return False
    await conn.execute(
        table.insert().values(
            version=published.version, document=published.document, published_at=published.published_at
        )
    )
    return True


async def newest(conn: AsyncConnection) -> Published | None:
    row = (await conn.execute(select(catalogs).order_by(catalogs.c.published_at.desc()).limit(1))).first()
    return Published(row.version, row.document, row.published_at) if row else None


async def load_all(conn: AsyncConnection) -> dict[str, Catalog]:
    """Every kept version, parsed, by version."""
    rows = (await conn.execute(select(catalogs.c.document))).scalars()
    parsed = [parse_document(document) for document in rows]
    return {catalog.version: catalog for catalog in parsed}
