"""The dates an owner stamps on its events, so every tier shows the same deadlines.

Deadlines run on the owner's clock: when the owner accepts a case it writes the committed and
statutory deadlines into the event; a correction notice records the day the clock stopped; the
supplement that answers it pushes both deadlines back by the working days the clock stood
still. Other tiers copy the dates from the events (``follow``) and never compute their own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from casework.calendar import WorkCalendar
from casework.errors import IllegalTransition
from casework.lifecycle import ACCEPTED, CORRECTION_REQUESTED, DECIDED, DEPARTMENT_DECIDED, SUPPLEMENTED


@dataclass(frozen=True, slots=True)
class CaseDates:
    deadline: date | None = None  # the committed limit (承诺时限)
    statutory_deadline: date | None = None  # the legal limit (法定时限)
    paused_on: date | None = None  # set while a correction is outstanding
    decided_on: date | None = None  # judged against the committed deadline


def stamp(
    event_type: str,
    payload: dict[str, Any],
    dates: CaseDates,
    limits: tuple[int, int],
    today: date,
    calendar: WorkCalendar,
) -> dict[str, Any]:
    """The payload of an event the owner makes, with the dates it fixes. ``limits`` are the
    item's (committed, statutory) working days."""
    committed, statutory = limits
    if event_type == CORRECTION_REQUESTED:
        return payload | {"paused_on": today.isoformat()}
    if event_type in (DECIDED, DEPARTMENT_DECIDED):
        return payload | {"decided_on": today.isoformat()}
    if event_type not in (ACCEPTED, SUPPLEMENTED):
        return payload
    if dates.deadline is None:  # the case is accepted now (a supplement accepts it too)
        return payload | {
            "accepted_on": today.isoformat(),
            "deadline": calendar.add_working_days(today, committed).isoformat(),
            "statutory_deadline": calendar.add_working_days(today, statutory).isoformat(),
        }
    if dates.paused_on and dates.statutory_deadline:  # the clock resumes after a correction
        stood_still = calendar.working_days_between(dates.paused_on, today)
        return payload | {
            "deadline": calendar.add_working_days(dates.deadline, stood_still).isoformat(),
            "statutory_deadline": calendar.add_working_days(
                dates.statutory_deadline, stood_still
            ).isoformat(),
        }
    return payload


def follow(dates: CaseDates, event_type: str, payload: dict[str, Any]) -> CaseDates:
    """The case's dates after an event, as its owner stamped them."""
    if event_type in (ACCEPTED, SUPPLEMENTED) and "deadline" in payload:
        dates = replace(
            dates,
            deadline=_day(payload["deadline"]),
            statutory_deadline=_day(payload.get("statutory_deadline")),
        )
    if event_type == CORRECTION_REQUESTED and "paused_on" in payload:
        dates = replace(dates, paused_on=_day(payload["paused_on"]))
    if event_type in (ACCEPTED, SUPPLEMENTED):
        dates = replace(dates, paused_on=None)
    if event_type in (DECIDED, DEPARTMENT_DECIDED) and "decided_on" in payload:
        dates = replace(dates, decided_on=_day(payload["decided_on"]))
    return dates


def _day(value: Any) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise IllegalTransition(f"{str(value)[:20]!r} is not an ISO date") from exc
