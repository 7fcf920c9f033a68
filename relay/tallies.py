"""Counts of cases kept as the cases change, so that supervision and coverage read a few
thousand rows instead of scanning a million cases (bench/README.md, issue 4).

``case_counts`` counts cases by owner, item, window, rating and ``kind``: the part of a case's
light that no longer depends on the day (not accepted, finished on time or late, paused,
withdrawn). A running case is counted under its deadlines and first yellow day instead, so the
day's lights are a sum over those date buckets against today (``light_on``): a new day needs no
scan and no job. ``township_counts`` counts the running cases by township and the same dates:
the warnings per township, a district's own cases under their village's. ``village_counts``
counts cases by village and status, with the newest case's intake time (coverage).

The ledger notes each case as it was before a batch and as it is after (``Tally``), and
``Tally.write`` applies the differences in the batch's transaction: the counts commit with the
cases or not at all. ``recount`` makes them afresh from the cases (the migration, the bench's
loader, and the tests that compare both).
"""

from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    Table,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from relay.schema import case_counts, cases, township_counts, village_counts

FINISHED = ("approved", "rejected", "delivered")
WITHDRAWN = "withdrawn"
DATED = ("running", "paused")  # kinds counted under their dates
_KEY = ("owner", "item_code", "window", "kind", "deadline", "statutory_deadline", "yellow_on", "rating")

_TOWNSHIP_KEY = ("township_code", "deadline", "statutory_deadline", "yellow_on")

CaseKey = tuple[str, str, str, str, str, str, str, int]
TownshipKey = tuple[str, str, str, str]
VillageKey = tuple[str, str]


def kind_of(row: Mapping[str, Any]) -> str:
    """What a case's light is whatever the day, or "running" if it depends on the day
    (relay.supervision.light_today, the same order of tests)."""
    if row["status"] == WITHDRAWN:
        return WITHDRAWN
    deadline = row["deadline"]
    if deadline is None:
        return "not_accepted"
    if row["status"] in FINISHED:
        return "done_on_time" if (row["decided_on"] or deadline) <= deadline else "done_late"
    return "paused" if row["paused_on"] is not None else "running"


def case_key(row: Mapping[str, Any]) -> CaseKey:
    kind = kind_of(row)
    dated = kind in DATED
    return (
        row["owner"],
        row["item_code"],
        row["window"],
        kind,
        (row["deadline"] or "") if dated else "",
        (row["statutory_deadline"] or "") if dated else "",
        (row["yellow_on"] or "") if dated else "",
        row["rating"] or 0,
    )


class Tally:
    """The counts one batch changes: -1 under a case's key before, +1 under its key after."""

    def __init__(self) -> None:
        self.cases: Counter[CaseKey] = Counter()
        self.townships: Counter[TownshipKey] = Counter()
        self.villages: Counter[VillageKey] = Counter()
        self.latest: dict[VillageKey, int] = {}

    def add(self, row: Mapping[str, Any], sign: int) -> None:
        key = case_key(row)
        self.cases[key] += sign
        if key[3] == "running":
            self.townships[(row["township_code"], *key[4:7])] += sign
        village = (str(row["village_code"]), str(row["status"]))
        self.villages[village] += sign
        if sign > 0:
            self.latest[village] = max(self.latest.get(village, 0), int(row["created_at"]))

    async def write(self, conn: AsyncConnection) -> None:
        """Apply the differences in the caller's transaction; rows counting nothing go."""
        changed = [(key, n) for key, n in self.cases.items() if n]
        if changed:
            await conn.execute(_ADD_CASES, [dict(zip(_KEY, key, strict=True), n=n) for key, n in changed])
            gone = [dict(zip(_KEY, key, strict=True)) for key, n in changed if n < 0]
            if gone:
                await conn.execute(_DROP_EMPTY, gone)
        by_township = [(key, n) for key, n in self.townships.items() if n]
        if by_township:
            rows = [dict(zip(_TOWNSHIP_KEY, key, strict=True), n=n) for key, n in by_township]
            await conn.execute(_ADD_TOWNSHIPS, rows)
            emptied = [dict(zip(_TOWNSHIP_KEY, key, strict=True)) for key, n in by_township if n < 0]
            if emptied:
                await conn.execute(_DROP_EMPTY_TOWNSHIPS, emptied)
        villages = [
            {"village_code": v, "status": s, "n": n, "latest": self.latest.get((v, s), 0)}
            for (v, s), n in self.villages.items()
            if n or (v, s) in self.latest
        ]
        if villages:
            await conn.execute(_ADD_VILLAGES, villages)


_QUOTED = ", ".join(f'"{name}"' for name in _KEY)  # "window" is a keyword
_ADD_CASES = text(
    f"INSERT INTO case_counts ({_QUOTED}, n) VALUES ({', '.join(f':{name}' for name in _KEY)}, :n) "
    f"ON CONFLICT ({_QUOTED}) DO UPDATE SET n = case_counts.n + excluded.n"
)
_DROP_EMPTY = text(
    "DELETE FROM case_counts WHERE n = 0 AND " + " AND ".join(f'"{name}" = :{name}' for name in _KEY)
)
_ADD_TOWNSHIPS = text(
    f"INSERT INTO township_counts ({', '.join(_TOWNSHIP_KEY)}, n) "
    f"VALUES ({', '.join(f':{name}' for name in _TOWNSHIP_KEY)}, :n) "
    f"ON CONFLICT ({', '.join(_TOWNSHIP_KEY)}) DO UPDATE SET n = township_counts.n + excluded.n"
)
_DROP_EMPTY_TOWNSHIPS = text(
    "DELETE FROM township_counts WHERE n = 0 AND "
    + " AND ".join(f"{name} = :{name}" for name in _TOWNSHIP_KEY)
)
_ADD_VILLAGES = text(
    "INSERT INTO village_counts (village_code, status, n, latest) "
    "VALUES (:village_code, :status, :n, :latest) ON CONFLICT (village_code, status) DO UPDATE "
    "SET n = village_counts.n + excluded.n, latest = CASE WHEN excluded.latest > village_counts.latest "
    "THEN excluded.latest ELSE village_counts.latest END"
)


def light_on(day: str, counts: Table = case_counts) -> ColumnElement[str]:
    """The light of the cases a ``case_counts`` row counts, or a ``township_counts`` row (all
    running), on ``day`` (ISO date)."""
    statutory = func.coalesce(func.nullif(counts.c.statutory_deadline, ""), counts.c.deadline)
    yellow_on = counts.c.yellow_on
    settled = [(counts.c.kind != "running", counts.c.kind)] if "kind" in counts.c else []
    return case(
        *settled,
        (statutory < day, "overdue"),
        (counts.c.deadline < day, "red"),
        (and_(yellow_on != "", yellow_on <= day), "yellow"),
        else_="green",
    )


def recount() -> list[Executable]:
    """Statements that count every case afresh (sync or async connection alike)."""
    kind = case(
        (cases.c.status == WITHDRAWN, WITHDRAWN),
        (cases.c.deadline.is_(None), "not_accepted"),
        (
            cases.c.status.in_(FINISHED),
            case(
                (func.coalesce(cases.c.decided_on, cases.c.deadline) <= cases.c.deadline, "done_on_time"),
                else_="done_late",
            ),
        ),
        (cases.c.paused_on.is_not(None), "paused"),
        else_="running",
    )
    dated = kind.in_(DATED)

    def when_dated(column: Any) -> ColumnElement[str]:
        return case((dated, func.coalesce(column, "")), else_=literal(""))

    keyed = select(
        cases.c.owner,
        cases.c.item_code,
        cases.c.window,
        kind.label("kind"),
        when_dated(cases.c.deadline).label("deadline"),
        when_dated(cases.c.statutory_deadline).label("statutory_deadline"),
        when_dated(cases.c.yellow_on).label("yellow_on"),
        func.coalesce(cases.c.rating, 0).label("rating"),
        cases.c.township_code,
    ).subquery()  # grouped outside: PostgreSQL does not match a CASE's parameters in GROUP BY
    key = [keyed.c[name] for name in _KEY]
    by_case = select(*key, func.count()).group_by(*key)
    running = select(*(keyed.c[name] for name in _TOWNSHIP_KEY)).where(keyed.c.kind == "running").subquery()
    by_township = select(*running.c, func.count()).group_by(*running.c)
    by_village = select(cases.c.village_code, cases.c.status, func.count(), func.max(cases.c.created_at))
    return [
        delete(case_counts),
        delete(township_counts),
        delete(village_counts),
        insert(case_counts).from_select([*_KEY, "n"], by_case),
        insert(township_counts).from_select([*_TOWNSHIP_KEY, "n"], by_township),
        insert(village_counts).from_select(
            ["village_code", "status", "n", "latest"],
            by_village.group_by(cases.c.village_code, cases.c.status),
        ),
    ]
