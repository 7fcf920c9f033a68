"""Electronic supervision (电子监察): every case against its deadlines, on-time and
satisfaction rates, for the district's management office and each township's own cases.

The database does the counting: each case's light today is a SQL expression over the dates its
owner stamped (deadlines and the first yellow day), so a district of a million cases is read
in one grouped scan, and only the cases with a warning come back as rows.
"""

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, case, func, select

from relay.node import Node
from relay.schema import cases
from relay.staff import open_records

FINISHED = ("approved", "rejected", "delivered")
WARNINGS = ("yellow", "red", "overdue")
SATISFIED = 3  # 基本满意 and better; the two lowest scores are bad reviews
_GROUPS = {"by_owner": "owner", "by_item": "item_code", "by_window": "window"}


def light_today(today: date) -> ColumnElement[str]:
    """A case's light on ``today`` (casework.deadlines.running_light, from its stamped dates):
    not yet accepted; finished on time or late; paused; overdue past the statutory deadline,
    red past the committed one, yellow from its first yellow day, else green."""
    day = today.isoformat()
    statutory = func.coalesce(cases.c.statutory_deadline, cases.c.deadline)
    finished_on = func.coalesce(cases.c.decided_on, cases.c.deadline)
    return case(
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


async def supervise(node: Node, today: date) -> dict[str, Any]:
    """Where every case stands today, grouped by owner, item and window, with the warnings
    listed; on-time and satisfaction rates; rectification records."""
    light = light_today(today).label("light")
    columns = [cases.c.owner, cases.c.item_code, cases.c.window]
    running = cases.c.status != "withdrawn"
    async with node.engine.connect() as conn:
        counted = (
            await conn.execute(select(*columns, light, func.count()).where(running).group_by(*columns, light))
        ).all()
        rated = (
            await conn.execute(
                select(*columns, cases.c.rating, func.count())
                .where(cases.c.rating.is_not(None))
                .group_by(*columns, cases.c.rating)
            )
        ).all()
        warned = (
            await conn.execute(
                select(cases, light).where(running, light.in_(WARNINGS)).order_by(cases.c.deadline)
            )
        ).all()
        latest = select(func.max(cases.c.statutory_deadline)).where(running, cases.c.status.not_in(FINISHED))
        furthest = (await conn.execute(latest)).scalar()
        records = await open_records(conn)
    lights, groups = _tally(counted)
    scores, scored = _tally(rated)
    return {
        "today": today.isoformat(),
        "calendar": _calendar(node, furthest, today),
        **{key: {name: dict(c) for name, c in sorted(groups[key].items())} for key in _GROUPS},
        "warnings": [_warning(row) for row in warned],
        "on_time_rate": _rate(lights["done_on_time"], lights["done_on_time"] + lights["done_late"]),
        "satisfaction": _satisfaction(scores)
        | {key: {name: _satisfaction(c) for name, c in sorted(scored[key].items())} for key in _GROUPS},
        "rectifications": _rectifications(records, today),
    }


def _tally(rows: Sequence[Any]) -> tuple[Counter[Any], dict[str, dict[str, Counter[Any]]]]:
    """Rows of (owner, item, window, value, count): the counts by value in all, and by value
    within each owner, item and window."""
    total: Counter[Any] = Counter()
    groups: dict[str, dict[str, Counter[Any]]] = {key: defaultdict(Counter) for key in _GROUPS}
    for *names, value, n in rows:
        total[value] += n
        for key, name in zip(_GROUPS, names, strict=True):
            groups[key][name][value] += n
    return total, groups


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


def _warning(row: Any) -> dict[str, Any]:
    return {
        "case_id": row.case_id,
        "item_code": row.item_code,
        "owner": row.owner,
        "window": row.window,
        "village_code": row.village_code,
        "status": row.status,
        "deadline": row.deadline,
        "statutory_deadline": row.statutory_deadline,
        "light": row.light,
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
