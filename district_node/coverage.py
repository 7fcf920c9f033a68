"""Coverage of the network as the district sees it (R11): every township and village of the
divisions file against the ``nodes`` table (enrolment, heartbeats, and what townships pass on of
their villages' heartbeats) and the cases that arrived. Read-only; the dashboard and
``district-node coverage`` show it."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from casework import Division, Divisions
from relay.clock import iso
from relay.node import Node
from relay.schema import audit_breaks, inbox_peers, nodes, village_counts

DAY_US = 86_400 * 1_000_000
WEEK_US = 7 * DAY_US
STATES = ("active_day", "active_week", "silent", "never", "not_enrolled")


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
    audit_breaks: int = 0  # breaks found in its audit trail as it arrived (relay/audit.py)

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
        # Per village and status, how many cases, and the village's latest intake to reach
        # the district (its own activity, besides its heartbeats), as the ledger keeps them.
        counted = (await conn.execute(select(village_counts))).all()
        by_node = select(audit_breaks.c.node, func.count()).group_by(audit_breaks.c.node)
        broken: dict[str, int] = {code: n for code, n in await conn.execute(by_node)}
    village_cases: dict[str, Counter[str]] = defaultdict(Counter)
    township_cases: dict[str, Counter[str]] = defaultdict(Counter)
    activity: dict[str, int] = {}
    for village, status, n, latest in counted:
        if n:
            village_cases[village][status] += n
            township_cases[village[:9]][status] += n
        activity[village] = max(activity.get(village, 0), latest)
    result = []
    for township in sorted(divisions.of_level("township"), key=lambda d: d.code):
        villages = [
            _place(village, known.get(village.code), activity.get(village.code), now, village_cases)
            for village in sorted(divisions.children(township.code), key=lambda d: d.code)
        ]
        center = _place(township, known.get(township.code), None, now, township_cases)
        statuses = township_cases.get(township.code, Counter())
        breaks = broken.get(township.code, 0)
        result.append(TownshipCoverage(center, pushed.get(township.code), villages, statuses, breaks))
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


def summary(townships: list[TownshipCoverage]) -> dict[str, Any]:
    """Per township: villages enrolled, active in the last day and week, silent, never seen;
    and the district's coverage figure: the share of its villages active in the last week."""
    rows: list[dict[str, Any]] = []
    for township in townships:
        by_state = Counter(village.state for village in township.villages)
        rows.append(
            {
                "code": township.center.code,
                "name": township.center.name,
                "state": township.center.state,
                "last_seen": _iso(township.center.last_seen),
                "last_push": _iso(township.last_push),
                "backlog": township.center.backlog,
                "audit_breaks": township.audit_breaks,
                "villages": len(township.villages),
                "enrolled": len(township.villages) - by_state["not_enrolled"],
                **{state: by_state[state] for state in STATES},
            }
        )
    total = {key: sum(int(row[key]) for row in rows) for key in ("villages", "enrolled", *STATES)}
    active = total["active_day"] + total["active_week"]
    return {
        "townships": rows,
        **total,
        "coverage": round(active / total["villages"], 4) if total["villages"] else None,
    }


def _iso(us: int | None) -> str | None:
    return iso(us) if us else None
