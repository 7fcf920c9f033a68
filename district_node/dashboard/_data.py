"""What the dashboard reads from the district's database besides coverage
(district_node/coverage.py): lists of cases, one applicant, warnings and rates. Read-only."""

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from relay.node import Node
from relay.queries import case_dict
from relay.schema import cases

LIST_LIMIT = 200


async def case_rows(node: Node, **equal: str) -> list[dict[str, Any]]:
    """The newest cases whose columns equal the given values (JSON-ready, no ID numbers)."""
    query = select(cases)
    for column, value in equal.items():
        query = query.where(cases.c[column] == value)
    query = query.order_by(cases.c.updated_at.desc()).limit(LIST_LIMIT)
    async with node.engine.connect() as conn:
        return [case_dict(row) for row in await conn.execute(query)]


async def identity(node: Node, case_id: str) -> tuple[str, str] | None:
    """The applicant's name and ID number of one case (shown, masked, on its page only)."""
    query = select(cases.c.applicant_name, cases.c.applicant_id).where(cases.c.case_id == case_id)
    async with node.engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return (row.applicant_name, row.applicant_id) if row else None


def warnings_by(report: dict[str, Any], key: Any) -> dict[str, Counter[str]]:
    """The supervision report's warnings counted by light, per key(warning)."""
    grouped: dict[str, Counter[str]] = defaultdict(Counter)
    for warning in report["warnings"]:
        grouped[key(warning)][warning["light"]] += 1
    return grouped


def on_time(counts: dict[str, int] | None) -> float | None:
    """The on-time rate of the finished cases in one group of the supervision report."""
    if not counts:
        return None
    done = counts.get("done_on_time", 0) + counts.get("done_late", 0)
    return round(counts.get("done_on_time", 0) / done, 4) if done else None


def totals(groups: Iterable[dict[str, int]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for counts in groups:
        total.update(counts)
    return total
