"""What the dashboard reads from the district's database besides coverage
(district_node/coverage.py) and the supervision report: lists of cases with their lights, one
applicant, one township's warnings. Read-only."""

from datetime import date
from typing import Any

from sqlalchemy import select

from relay.node import Node
from relay.queries import case_dict
from relay.schema import cases
from relay.supervision import light_today, warnings

LIST_LIMIT = 200


async def case_rows(node: Node, today: date, **equal: str) -> list[dict[str, Any]]:
    """The newest cases whose columns equal the given values, each with its light ``today``
    (JSON-ready, no ID numbers)."""
    query = select(cases, light_today(today).label("light"))
    for column, value in equal.items():
        query = query.where(cases.c[column] == value)
    query = query.order_by(cases.c.updated_at.desc()).limit(LIST_LIMIT)
    async with node.engine.connect() as conn:
        return [case_dict(row) | {"light": row.light} for row in await conn.execute(query)]


async def identity(node: Node, case_id: str, today: date) -> tuple[str, str, str] | None:
    """The applicant's name and ID number of one case (shown, masked, on its page only), and
    its light ``today``."""
    light = light_today(today).label("light")
    query = select(cases.c.applicant_name, cases.c.applicant_id, light).where(cases.c.case_id == case_id)
    async with node.engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return (row.applicant_name, row.applicant_id, row.light) if row else None


async def township_warnings(node: Node, today: date, code: str, listed: int) -> list[dict[str, Any]]:
    """One township's warned cases, listed as the supervision report lists the district's."""
    async with node.engine.connect() as conn:
        return await warnings(conn, today, listed, township=code)


def on_time(counts: dict[str, int] | None) -> float | None:
    """The on-time rate of the finished cases in one group of the supervision report."""
    if not counts:
        return None
    done = counts.get("done_on_time", 0) + counts.get("done_late", 0)
    return round(counts.get("done_on_time", 0) / done, 4) if done else None
