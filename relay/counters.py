"""Named counters and cursors kept in the ``state`` table, inside the caller's transaction."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.db import put_row
from relay.schema import state


async def read_value(conn: AsyncConnection, name: str, lock: bool = False) -> int:
    query = select(state.c.value).where(state.c.name == name)
    value = (await conn.execute(query.with_for_update() if lock else query)).scalar()
    return value or 0


async def read_text(conn: AsyncConnection, name: str) -> str:
    value = (await conn.execute(select(state.c.text).where(state.c.name == name))).scalar()
    return value or ""


async def write_value(conn: AsyncConnection, name: str, value: int, text: str | None = None) -> None:
    values = {"value": value} if text is None else {"value": value, "text": text}
    await put_row(conn, state, "name", name, values)


async def take_range(conn: AsyncConnection, name: str, count: int) -> int:
    """Reserve ``count`` consecutive numbers of a counter; returns the first."""
    last = await read_value(conn, name, lock=True)
    await write_value(conn, name, last + count)
    return last + 1
