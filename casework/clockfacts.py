"""The dates an owner stamps on its events, so every tier shows the same deadlines.

Deadlines run on the owner's clock: when the owner accepts a case it writes the committed and
statutory deadlines into the event; a correction notice records the day the clock stopped; the
supplement that answers it pushes both deadlines back by the working days the clock stood
still. Other tiers copy the dates from the events (``follow``) and never compute their own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from casework.calendar import WorkCalendar
from casework.errors import IllegalTransition
from casework.lifecycle import (
    ACCEPTED,
    COMPLAINT_FILED,
    CORRECTION_REQUESTED,
    DECIDED,
    DEPARTMENT_DECIDED,
    PAUSED,
    RATED,
    RESUMED,
    SUPPLEMENTED,
)

BAD_REVIEW = 2  # 不满意 (2) and 非常不满意 (1) are bad reviews: each opens a rectification record
RECTIFY_DAYS = 15  # working days to rectify, unless the node is configured otherwise


@dataclass(frozen=True, slots=True)
class CaseDates:
    deadline: date | None = None  # the committed limit (承诺时限)
    statutory_deadline: date | None = None  # the legal limit (法定时限)
    paused_on: date | None = None  # set while a correction or a law-excluded step is outstanding
    decided_on: date | None = None  # judged against the committed deadline
    yellow_on: date | None = None  # from this day a running case shows yellow (with its deadline)


def stamp(
    event_type: str,
    payload: dict[str, Any],
    dates: CaseDates,
    limits: tuple[int, int],
    today: date,
    calendar: WorkCalendar,
    rectify_days: int = RECTIFY_DAYS,
) -> dict[str, Any]:
    """The payload of an event the owner makes, with the dates it fixes. ``limits`` are the
    item's (committed, statutory) working days."""
    committed, statutory = limits
    if event_type in (CORRECTION_REQUESTED, PAUSED):
        return payload | {"paused_on": today.isoformat()}
    if event_type in (DECIDED, DEPARTMENT_DECIDED):
        return payload | {"decided_on": today.isoformat()}
    if opens_rectification(event_type, payload):
        return payload | {"rectify_by": calendar.add_working_days(today, rectify_days).isoformat()}
    if event_type not in (ACCEPTED, SUPPLEMENTED, RESUMED):
        return payload
    if dates.deadline is None:  # the case is accepted now (a supplement accepts it too)
        legal = calendar.add_working_days(today, statutory)
        promised = calendar.add_working_days(today, committed)
        stamped = payload | {
            "accepted_on": today.isoformat(),
            "deadline": promised.isoformat(),
            "statutory_deadline": legal.isoformat(),
            "yellow_on": yellow_from(promised, committed, calendar).isoformat(),
        }
        assumed = calendar.unknown_years(today, legal)
        return stamped | {"assumed_monday_to_friday": assumed} if assumed else stamped
    if dates.paused_on and dates.statutory_deadline:  # the clock resumes after a pause
        stood_still = calendar.working_days_between(dates.paused_on, today)
        promised = calendar.add_working_days(dates.deadline, stood_still)
        return payload | {
            "deadline": promised.isoformat(),
            "yellow_on": yellow_from(promised, committed, calendar).isoformat(),
            "statutory_deadline": calendar.add_working_days(
                dates.statutory_deadline, stood_still
            ).isoformat(),
        }
    return payload


def follow(dates: CaseDates, event_type: str, payload: dict[str, Any]) -> CaseDates:
    """The case's dates after an event, as its owner stamped them."""
    if event_type in (ACCEPTED, SUPPLEMENTED, RESUMED) and "deadline" in payload:
        dates = replace(
            dates,
            deadline=_day(payload["deadline"]),
            statutory_deadline=_day(payload.get("statutory_deadline")),
            yellow_on=_day(payload["yellow_on"]) if "yellow_on" in payload else None,
        )
    if event_type in (CORRECTION_REQUESTED, PAUSED) and "paused_on" in payload:
        dates = replace(dates, paused_on=_day(payload["paused_on"]))
    if event_type in (ACCEPTED, SUPPLEMENTED, RESUMED):
        dates = replace(dates, paused_on=None)
    if event_type in (DECIDED, DEPARTMENT_DECIDED) and "decided_on" in payload:
        dates = replace(dates, decided_on=_day(payload["decided_on"]))
    if "rectify_by" in payload:
        _day(payload["rectify_by"])  # a record's due date must be a date wherever it is read
    return dates


def yellow_from(deadline: date, committed_days: int, calendar: WorkCalendar) -> date:
    """The first day a running case shows yellow (casework.deadlines.running_light): two thirds
    of its committed time used, or at most one working day left before ``deadline``."""
    margin = max(1, committed_days // 3)  # working days left when it turns yellow
    day = deadline
    while calendar.working_days_between(day - _ONE_DAY, deadline) <= margin:
        day -= _ONE_DAY
    return day


_ONE_DAY = timedelta(days=1)


def opens_rectification(event_type: str, payload: dict[str, Any]) -> bool:
    """A bad review or a complaint: the owner must answer it with a rectification (整改)."""
    if event_type == COMPLAINT_FILED:
        return True
    score = payload.get("score")
    return event_type == RATED and type(score) is int and score <= BAD_REVIEW


def _day(value: Any) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise IllegalTransition(f"{str(value)[:20]!r} is not an ISO date") from exc
