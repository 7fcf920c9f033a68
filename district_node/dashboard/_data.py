"""What the dashboard reads from the district's database: the coverage of the network (every
township and village of the divisions file against the ``nodes`` table, heartbeats and the
events that arrived), and lists of cases. Read-only."""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from casework import Division, Divisions
from relay.node import Node
from relay.queries import case_dict
from relay.schema import cases, events, inbox_peers, nodes

DAY_US = 86_400 * 1_000_000
WEEK_US = 7 * DAY_US
STATES = ("active_day", "active_week", "silent", "never", "not_enrolled")
LIST_LIMIT = 200


@dataclass(frozen=True, slots=True)
class Place:
    """A township center or village point as the district sees it."""

    code: str
    name: str
    state: str  # one of STATES
    last_seen: int | None  # microseconds; for a village, its latest event that reached here
    backlog: int | None = None  # events it had queued upward, at its last heartbeat
    cases: int = 0
    node: Any = None  # its ``nodes`` row, if any


@dataclass(slots=True)
class TownshipCoverage:
    center: Place
    last_push: int | None  # when its last batch was applied here
    villages: list[Place]
    statuses: Counter[str] = field(default_factory=Counter)  # its cases by status

    def count(self, *states: str) -> int:
        return sum(1 for village in self.villages if village.state in states)


def state_of(enrolled: bool, last_seen: int | None, now: int) -> str:
    """Active in the last day or week, silent for longer, enrolled but never seen, or absent."""
    if last_seen is None:
        return "never" if enrolled else "not_enrolled"
    if now - last_seen <= DAY_US:
        return "active_day"
    return "active_week" if now - last_seen <= WEEK_US else "silent"


async def coverage(node: Node, divisions: Divisions, now: int) -> list[TownshipCoverage]:
    """Every township of the district, in code order, with its villages."""
    async with node.engine.connect() as conn:
        known = {row.code: row for row in await conn.execute(select(nodes))}
        peers = select(inbox_peers.c.sender, inbox_peers.c.updated_at)
        pushed = {sender: at for sender, at in await conn.execute(peers)}
        latest = select(events.c.origin_node, func.max(events.c.recorded_at)).group_by(events.c.origin_node)
        activity = {origin: at for origin, at in await conn.execute(latest)}
        by_village = select(cases.c.village_code, cases.c.status, func.count())
        counted = await conn.execute(by_village.group_by(cases.c.village_code, cases.c.status))
        village_cases: dict[str, Counter[str]] = defaultdict(Counter)
        for village, status, n in counted:
            village_cases[village][status] += n
        by_township = select(cases.c.township_code, cases.c.status, func.count())
        counted = await conn.execute(by_township.group_by(cases.c.township_code, cases.c.status))
        township_cases: dict[str, Counter[str]] = defaultdict(Counter)
        for township_code, status, n in counted:
            township_cases[township_code][status] += n
    result = []
    for township in sorted(divisions.of_level("township"), key=lambda d: d.code):
        villages = [
            _place(village, known.get(village.code), activity.get(village.code), now, village_cases)
            for village in sorted(divisions.children(township.code), key=lambda d: d.code)
        ]
        center = _place(township, known.get(township.code), None, now, township_cases)
        statuses = township_cases.get(township.code, Counter())
        result.append(TownshipCoverage(center, pushed.get(township.code), villages, statuses))
    return result


def _place(
    division: Division, row: Any, activity: int | None, now: int, counts: dict[str, Counter[str]]
) -> Place:
    seen = [value for value in (row.last_seen if row else None, activity) if value is not None]
    last_seen = max(seen) if seen else None
    return Place(
        division.code,
        division.name,
        state_of(row is not None, last_seen, now),
        last_seen,
        row.backlog if row else None,
        sum(counts.get(division.code, Counter()).values()),
        row,
    )


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
