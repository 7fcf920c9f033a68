"""Case deadlines in working days, and where a case stands against them (R7, R8).

A time limit counts working days from the day after acceptance. The clock pauses while the
applicant corrects materials and during steps the rules exclude (public notice, expert review):
every working day of a closed pause pushes the deadline back by one. While a pause is open the
deadline is unknown, because nobody knows when the applicant will come back.

Everything here takes ``today`` and the calendar as arguments and never reads the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from casework.calendar import WorkCalendar
from casework.errors import InvalidInput

Status = Literal["green", "yellow", "red", "overdue", "paused", "done_on_time", "done_late"]


@dataclass(frozen=True, slots=True)
class Pause:
    """A stretch when the clock stands still: its working days in (start, end] do not count.

    ``end`` is None while the pause is open (the correction has not come back yet).
    """

    start: date
    end: date | None = None

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise InvalidInput(f"pause: end {self.end.isoformat()} is before start {self.start.isoformat()}")

    @property
    def is_open(self) -> bool:
        return self.end is None


def deadline(
    accepted_on: date, limit_days: int, pauses: Sequence[Pause], calendar: WorkCalendar
) -> date | None:
    """The last working day allowed, or None while a pause is open (the deadline is unknown)."""
    spans = [(pause.start, pause.end) for pause in pauses if pause.end is not None]
    if len(spans) < len(pauses):
        return None
    return calendar.add_working_days(accepted_on, limit_days + _paused_days(accepted_on, spans, calendar))


def status(
    accepted_on: date,
    committed_days: int,
    statutory_days: int,
    pauses: Sequence[Pause],
    today: date,
    calendar: WorkCalendar,
    finished_on: date | None = None,
) -> Status:
    """Where a case stands for electronic supervision (电子监察).

    Finished: done_on_time or done_late against the committed deadline. Running: overdue past the
    statutory deadline (督办), red past the committed one, yellow once two thirds of the committed
    time is used or at most one working day is left, green otherwise. An open pause gives "paused"
    unless the case was already red or overdue when it began: pausing does not undo lateness.
    """
    if committed_days > statutory_days:
        raise InvalidInput(f"committed_days {committed_days} exceeds statutory_days {statutory_days}")
    if finished_on is not None:
        committed = _deadline_at(accepted_on, committed_days, pauses, finished_on, calendar)
        return "done_on_time" if finished_on <= committed else "done_late"

    def on(day: date) -> Status:
        return _running_status(accepted_on, committed_days, statutory_days, pauses, day, calendar)

    open_since = [pause.start for pause in pauses if pause.is_open]
    if not open_since:
        return on(today)
    # The clock stopped when the first open pause began: judge lateness as of that day.
    when_paused = on(min(open_since))
    return when_paused if when_paused in ("red", "overdue") else "paused"


def _running_status(
    accepted_on: date,
    committed_days: int,
    statutory_days: int,
    pauses: Sequence[Pause],
    today: date,
    calendar: WorkCalendar,
) -> Status:
    statutory = _deadline_at(accepted_on, statutory_days, pauses, today, calendar)
    committed = _deadline_at(accepted_on, committed_days, pauses, today, calendar)
    return running_light(today, committed, statutory, committed_days, calendar)


def running_light(
    today: date, committed: date, statutory: date, committed_days: int, calendar: WorkCalendar
) -> Status:
    """A running case against its deadlines as they stand today: overdue past the statutory one,
    red past the committed one, yellow with two thirds of the committed time used or at most one
    working day left, else green."""
    if today > statutory:
        return "overdue"
    if today > committed:
        return "red"
    left = calendar.working_days_between(today, committed)
    used = committed_days - left
    return "yellow" if left <= 1 or 3 * used >= 2 * committed_days else "green"


def _deadline_at(
    accepted_on: date, limit_days: int, pauses: Sequence[Pause], when: date, calendar: WorkCalendar
) -> date:
    """The deadline as it stands on ``when``: an open pause counts as ending that day."""
    spans = [(pause.start, max(when, pause.start) if pause.end is None else pause.end) for pause in pauses]
    return calendar.add_working_days(accepted_on, limit_days + _paused_days(accepted_on, spans, calendar))


def _paused_days(accepted_on: date, spans: Sequence[tuple[date, date]], calendar: WorkCalendar) -> int:
    """Working days inside the pauses and after acceptance, each day once where pauses overlap."""
    total, counted_to = 0, accepted_on
    for start, end in sorted(spans):
        total += calendar.working_days_between(max(start, counted_to), end)
        counted_to = max(counted_to, end)
    return total
