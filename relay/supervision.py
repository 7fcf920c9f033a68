"""Electronic supervision (电子监察): every case against its deadlines, on-time and
satisfaction rates, for the district's management office and each township's own cases.

The counting is kept as cases change (relay/tallies.py): each case's light today is a SQL
expression over the dates its owner stamped (deadlines and the first yellow day), summed over
the counts of cases sharing those dates, so a district of a million cases is a few thousand
rows. The warnings are counted there too, overall and per township; the open cases with a
warning come back as rows only up to a limit, the most urgent first.
"""

from collections import Counter, defaultdict
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from casework.lifecycle import STATUSES
from relay.node import Node
from relay.schema import case_counts, cases, township_counts
from relay.staff import open_records
from relay.tallies import DATED, FINISHED, WITHDRAWN, light_on

OPEN = tuple(status for status in STATUSES if status not in (*FINISHED, WITHDRAWN))
WARNINGS = ("yellow", "red", "overdue")
WARNINGS_LISTED = 500  # listed of each urgency (overdue and red; yellow): 1M cases have ~10,000 warned
SATISFIED = 3  # 基本满意 and better; the two lowest scores are bad reviews
_GROUPS = {"by_owner": "owner", "by_item": "item_code", "by_window": "window"}
_WARNING = (
    "case_id",
    "item_code",
    "owner",
    "window",
    "village_code",
    "status",
    "deadline",
    "statutory_deadline",
)


def light_today(today: date) -> ColumnElement[str]:
    """A case's light on ``today`` (casework.deadlines.running_light, from its stamped dates):
    withdrawn; not yet accepted; finished on time or late; paused; overdue past the statutory
    deadline, red past the committed one, yellow from its first yellow day, else green."""
    day = today.isoformat()
    statutory = func.coalesce(cases.c.statutory_deadline, cases.c.deadline)
    finished_on = func.coalesce(cases.c.decided_on, cases.c.deadline)
    return case(
        (cases.c.status == WITHDRAWN, WITHDRAWN),
        (cases.c.deadline.is_(None), "not_accepted"),
        (
            cases.c.status.in_(FINISHED),
            case((finished_on <= cases.c.deadline, "done_on_time"), else_="done_late"),
        ),
        (cases.c.paused_on.is_not(None), "paused"),
        (statutory < day, "overdue"),
        (cases.c.deadline < day, "red"),
        (cases.c.yellow_on <= day, "yellow"),
        else_="green",
    )


async def supervise(node: Node, today: date, listed: int = WARNINGS_LISTED) -> dict[str, Any]:
    """Where every case stands today, grouped by owner, item and window; the warnings counted
    overall and per township, and listed up to ``listed`` of each urgency; on-time and
    satisfaction rates; rectification records. The counts come from ``case_counts`` and
    ``township_counts`` (relay/tallies.py); only the listed warned cases are read."""
    day = today.isoformat()
    async with node.engine.connect() as conn:
        lights, groups = await _counted(conn, light_on(day), case_counts.c.kind != WITHDRAWN)
        scores, scored = await _counted(conn, case_counts.c.rating, case_counts.c.rating != 0)
        by_township = await _warned_by_township(conn, day)
        warned = await warnings(conn, today, listed)
        dated = func.nullif(case_counts.c.statutory_deadline, "")
        latest = select(func.max(dated)).where(case_counts.c.kind.in_(DATED))
        furthest = (await conn.execute(latest)).scalar()
        records = await open_records(conn)
    total = {light: lights[light] for light in WARNINGS}
    return {
        "today": day,
        "calendar": _calendar(node, furthest, today),
        **{key: {name: dict(c) for name, c in sorted(groups[key].items())} for key in _GROUPS},
        "warnings": warned,
        "warnings_total": total,
        "warnings_cut": sum(total.values()) - len(warned),
        "warnings_by_township": by_township,
        "on_time_rate": _rate(lights["done_on_time"], lights["done_on_time"] + lights["done_late"]),
        "satisfaction": _satisfaction(scores)
        | {key: {name: _satisfaction(c) for name, c in sorted(scored[key].items())} for key in _GROUPS},
        "rectifications": _rectifications(records, today),
    }


async def warnings(
    conn: AsyncConnection, today: date, listed: int, township: str | None = None
) -> list[dict[str, Any]]:
    """The open cases with a warning today, of ``township`` or all: the overdue and red ones
    by statutory deadline, then the yellow ones by deadline, at most ``listed`` of each.

    The running cases' counts say which deadlines the listed ones have, so the cases are read
    by ``ix_cases_status_deadline`` over those deadlines only: the red and overdue ones before
    today (a committed deadline is never after the statutory one), the yellow ones from today
    up to the deadline by which ``listed`` of them are found."""
    day = today.isoformat()
    light = light_on(day, township_counts)
    query = select(township_counts.c.deadline, light.label("light"), func.sum(township_counts.c.n))
    query = query.where(light.in_(WARNINGS)).group_by(township_counts.c.deadline, light)
    if township is not None:
        query = query.where(township_counts.c.township_code == township)
    urgent, yellow, last = 0, 0, None
    for deadline, name, n in (await conn.execute(query.order_by(township_counts.c.deadline))).all():
        if name != "yellow":
            urgent += int(n)
        elif yellow < listed:
            yellow, last = yellow + int(n), deadline
    found: list[dict[str, Any]] = []
    if urgent:
        past = cases.c.deadline < day
        order = (cases.c.statutory_deadline, cases.c.deadline)
        found += await _listed(conn, today, township, ("overdue", "red"), past, order, listed)
    if yellow:
        near = cases.c.deadline.between(day, last)
        found += await _listed(conn, today, township, ("yellow",), near, (cases.c.deadline,), listed)
    return found


async def _listed(
    conn: AsyncConnection,
    today: date,
    township: str | None,
    lights: tuple[str, ...],
    within: ColumnElement[bool],
    order: tuple[ColumnElement[Any], ...],
    listed: int,
) -> list[dict[str, Any]]:
    """The first ``listed`` open cases ``within`` a range of deadlines with one of ``lights``."""
    light = light_today(today).label("light")
    query = select(*(cases.c[name] for name in _WARNING), light)
    query = query.where(cases.c.status.in_(OPEN), within, light.in_(lights))
    if township is not None:
        query = query.where(cases.c.township_code == township)
    rows = await conn.execute(query.order_by(*order, cases.c.case_id).limit(listed))
    return [dict(row._mapping) for row in rows]


async def _counted(
    conn: AsyncConnection, value: ColumnElement[Any], where: ColumnElement[bool]
) -> tuple[Counter[Any], dict[str, dict[str, Counter[Any]]]]:
    """The cases counted by ``value`` in all, and by value within each owner, item and window:
    one grouped select of ``case_counts`` per grouping, a few hundred rows."""
    labelled = value.label("value")
    parts = [
        select(
            literal(key).label("grouping"),
            case_counts.c[column].label("name"),
            labelled,
            func.sum(case_counts.c.n),
        )
        .where(where)
        .group_by(case_counts.c[column], labelled)
        for key, column in _GROUPS.items()
    ]
    total: Counter[Any] = Counter()
    groups: dict[str, dict[str, Counter[Any]]] = {key: defaultdict(Counter) for key in _GROUPS}
    for grouping, name, found, n in await conn.execute(union_all(*parts)):
        groups[grouping][name][found] += int(n)
        if grouping == "by_owner":  # every case has one owner: these add up to all of them
            total[found] += int(n)
    return total, groups


async def _warned_by_township(conn: AsyncConnection, day: str) -> dict[str, dict[str, int]]:
    """The warned cases counted by township and light, from the running cases' counts."""
    light = light_on(day, township_counts).label("light")
    query = select(township_counts.c.township_code, light, func.sum(township_counts.c.n))
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for township, name, n in await conn.execute(query.group_by(township_counts.c.township_code, light)):
        if name in WARNINGS:
            found[township][name] = int(n)
    return dict(sorted(found.items()))


def _satisfaction(scores: Counter[int]) -> dict[str, Any]:
    """How many cases rated, how many bad reviews, and the satisfaction rate (target ≥ 95 %)."""
    total = sum(scores.values())
    good = sum(n for score, n in scores.items() if score >= SATISFIED)
    return {"ratings": total, "bad_reviews": total - good, "rate": _rate(good, total)}


def _rectifications(records: list[dict[str, Any]], today: date) -> dict[str, Any]:
    """Bad reviews and complaints: each must be rectified by its date (default 15 working days)."""
    still_open = [r for r in records if r["outcome"] is None]
    overdue = [r for r in still_open if date.fromisoformat(r["rectify_by"]) < today]
    return {
        "open": len(still_open),
        "overdue": len(overdue),
        "closed": len(records) - len(still_open),
        "records": [r | {"overdue": r in overdue} for r in still_open],
    }


def _calendar(node: Node, furthest: str | None, today: date) -> dict[str, Any]:
    """The calendar deadlines count by, and the years the open cases reach (today to their
    latest deadline) that it does not know: there it assumed Monday to Friday."""
    calendar = node.ledger.calendar
    end = date.fromisoformat(furthest) if furthest else None
    return {
        "version": node.ledger.calendar_version or None,
        "years": sorted(calendar.known_years),
        "assumed_monday_to_friday": calendar.unknown_years(today, end) if end else [],
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
