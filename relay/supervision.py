"""Electronic supervision (电子监察): every case against its deadlines, on-time and
satisfaction rates, for the district's management office and each township's own cases."""

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import select

from casework.deadlines import running_light
from casework.lifecycle import RATED
from relay.node import Node
from relay.schema import cases, events
from relay.staff import open_records

FINISHED = ("approved", "rejected", "delivered")
WARNINGS = ("yellow", "red", "overdue")
SATISFIED = 3  # 基本满意 and better; the two lowest scores are bad reviews


async def supervise(node: Node, today: date) -> dict[str, Any]:
    """Where every case stands today, grouped by owner and by item, with the warnings listed."""
    async with node.engine.connect() as conn:
        rows = (await conn.execute(select(cases).where(cases.c.status != "withdrawn"))).all()
        rated = select(events.c.case_id, events.c.payload).where(events.c.type == RATED)
        ratings = [(case_id, json.loads(body).get("score")) for case_id, body in await conn.execute(rated)]
        records = await open_records(conn)
    lights = [(row, _light(node, row, today)) for row in rows]
    by_case = {row.case_id: row for row in rows}
    scores = [score for _, score in ratings]
    return {
        "today": today.isoformat(),
        "calendar": _calendar(node, rows, today),
        "by_owner": _counts(lights, "owner"),
        "by_item": _counts(lights, "item_code"),
        "by_window": _counts(lights, "window"),
        "warnings": [_warning(row, light) for row, light in lights if light in WARNINGS],
        "on_time_rate": _rate(
            sum(1 for _, x in lights if x == "done_on_time"),
            sum(1 for _, x in lights if x in ("done_on_time", "done_late")),
        ),
        "satisfaction": _satisfaction(scores)
        | {
            key: _grouped_satisfaction(ratings, by_case, key)
            for key in ("by_owner", "by_window", "by_item")
        },
        "rectifications": _rectifications(records, today),
    }


def _satisfaction(scores: Sequence[Any]) -> dict[str, Any]:
    """How many rated, how many bad reviews, and the satisfaction rate (target ≥ 95 %)."""
    valid = [score for score in scores if isinstance(score, int)]
    return {
        "ratings": len(valid),
        "bad_reviews": sum(1 for score in valid if score < SATISFIED),
        "rate": _rate(sum(1 for score in valid if score >= SATISFIED), len(valid)),
    }


_GROUP_COLUMN = {"by_owner": "owner", "by_window": "window", "by_item": "item_code"}


def _grouped_satisfaction(
    ratings: list[tuple[str, Any]], by_case: dict[str, Any], key: str
) -> dict[str, dict[str, Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for case_id, score in ratings:
        if case_id in by_case:
            grouped[getattr(by_case[case_id], _GROUP_COLUMN[key])].append(score)
    return {name: _satisfaction(scores) for name, scores in sorted(grouped.items())}


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


def _light(node: Node, row: Any, today: date) -> str:
    if row.deadline is None:
        return "not_accepted"
    deadline = date.fromisoformat(row.deadline)
    if row.status in FINISHED:
        finished = date.fromisoformat(row.decided_on) if row.decided_on else deadline
        return "done_on_time" if finished <= deadline else "done_late"
    if row.paused_on:
        return "paused"
    item = node.ledger.catalogs.get(row.catalog_version, node.ledger.catalog).items.get(row.item_code)
    committed_days = item.committed_days if item else 0
    statutory = date.fromisoformat(row.statutory_deadline or row.deadline)
    return running_light(today, deadline, statutory, committed_days, node.ledger.calendar)


def _calendar(node: Node, rows: Sequence[Any], today: date) -> dict[str, Any]:
    """The calendar deadlines count by, and the years the open cases reach (today to their
    latest deadline) that it does not know: there it assumed Monday to Friday."""
    calendar = node.ledger.calendar
    open_ends = [
        date.fromisoformat(day)
        for row in rows
        if row.status not in FINISHED
        for day in (row.deadline, row.statutory_deadline)
        if day
    ]
    return {
        "version": node.ledger.calendar_version or None,
        "years": sorted(calendar.known_years),
        "assumed_monday_to_friday": calendar.unknown_years(today, max(open_ends)) if open_ends else [],
    }


def _counts(lights: list[tuple[Any, str]], key: str) -> dict[str, dict[str, int]]:
    grouped: dict[str, Counter[str]] = defaultdict(Counter)
    for row, light in lights:
        grouped[getattr(row, key)][light] += 1
    return {name: dict(counter) for name, counter in sorted(grouped.items())}


def _warning(row: Any, light: str) -> dict[str, Any]:
    return {
        "case_id": row.case_id,
        "item_code": row.item_code,
        "owner": row.owner,
        "window": row.window,
        "village_code": row.village_code,
        "status": row.status,
        "deadline": row.deadline,
        "statutory_deadline": row.statutory_deadline,
        "light": light,
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
