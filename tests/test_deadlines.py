"""Case deadlines in working days, pauses of the clock, and supervision status."""

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casework import InvalidInput, Pause, deadline, default_calendar, status

CALENDAR = default_calendar()
MONDAY = date(2026, 3, 2)  # an ordinary fortnight follows: no holiday until April
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)


def test_deadline_without_pauses_counts_from_the_day_after_acceptance() -> None:
    """Ten working days from Monday Mar 2, 2026 end on Monday Mar 16."""
    assert deadline(MONDAY, 10, [], CALENDAR) == date(2026, 3, 16)


def test_deadline_across_spring_festival_2026() -> None:
    """Five working days from Tue Feb 10, 2026 take the worked Saturday Feb 14, then skip to Feb 24."""
    assert deadline(date(2026, 2, 10), 5, [], CALENDAR) == date(2026, 2, 24)


def test_correction_pause_moves_deadline_by_its_working_days() -> None:
    """A correction out from Thu Mar 5 to Tue Mar 10 (3 working days) moves the deadline by exactly 3."""
    plain = deadline(MONDAY, 10, [], CALENDAR)
    paused = deadline(MONDAY, 10, [Pause(date(2026, 3, 5), date(2026, 3, 10))], CALENDAR)
    assert plain is not None and paused == date(2026, 3, 19)
    assert CALENDAR.working_days_between(plain, paused) == 3


def test_pause_over_golden_week_counts_only_working_days() -> None:
    """A pause from Sep 30 to Oct 9, 2026 holds only Oct 8 and 9 as working days."""
    pause = Pause(date(2026, 9, 30), date(2026, 10, 9))
    assert deadline(date(2026, 9, 29), 1, [pause], CALENDAR) == date(2026, 10, 9)


def test_open_pause_leaves_the_deadline_unknown() -> None:
    """While a correction is outstanding the deadline is None."""
    assert deadline(MONDAY, 10, [Pause(date(2026, 3, 5))], CALENDAR) is None


def test_overlapping_pauses_count_each_day_once() -> None:
    """A public notice inside a correction pause adds no extra days."""
    correction, notice = Pause(date(2026, 3, 5), date(2026, 3, 10)), Pause(date(2026, 3, 6), date(2026, 3, 9))
    assert deadline(MONDAY, 10, [notice, correction], CALENDAR) == date(2026, 3, 19)


def test_only_paused_days_after_acceptance_count() -> None:
    """A pause begun before acceptance extends by its days after acceptance only (here Mar 3)."""
    early = Pause(date(2026, 2, 24), date(2026, 3, 3))
    assert deadline(MONDAY, 10, [early], CALENDAR) == date(2026, 3, 17)


def test_pause_ending_before_it_starts_is_refused() -> None:
    """A pause whose end precedes its start is refused."""
    with pytest.raises(InvalidInput, match="before start"):
        Pause(date(2026, 3, 5), date(2026, 3, 4))


def test_on_the_spot_item() -> None:
    """A 0-day item is due the day it is accepted: done that day is on time, the next day overdue."""
    assert deadline(MONDAY, 0, [], CALENDAR) == MONDAY
    assert status(MONDAY, 0, 0, [], MONDAY, CALENDAR) == "yellow"
    assert status(MONDAY, 0, 0, [], date(2026, 3, 3), CALENDAR) == "overdue"
    assert status(MONDAY, 0, 0, [], MONDAY, CALENDAR, finished_on=MONDAY) == "done_on_time"
    assert status(MONDAY, 0, 0, [], date(2026, 3, 3), CALENDAR, finished_on=date(2026, 3, 3)) == "done_late"


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 3, 3), "green"),
        (date(2026, 3, 5), "green"),  # 3 of 6 used
        (date(2026, 3, 6), "yellow"),  # 4 of 6 used: two thirds
        (date(2026, 3, 10), "yellow"),  # the committed deadline itself
        (date(2026, 3, 11), "red"),
        (date(2026, 3, 14), "red"),
        (date(2026, 3, 18), "red"),  # the statutory deadline itself
        (date(2026, 3, 19), "overdue"),
    ],
)
def test_status_ladder(today: date, expected: str) -> None:
    """Committed 6 / statutory 12 days from Mon Mar 2: green, yellow at two thirds, red, then overdue."""
    assert status(MONDAY, 6, 12, [], today, CALENDAR) == expected


def test_yellow_when_one_working_day_is_left() -> None:
    """With a 2-day commitment, one day left is yellow though only half the time is used."""
    assert status(MONDAY, 2, 5, [], MONDAY, CALENDAR) == "green"
    assert status(MONDAY, 2, 5, [], date(2026, 3, 3), CALENDAR) == "yellow"


def test_closed_pause_keeps_a_case_within_time() -> None:
    """After a 3-day correction, the day that would have been red is only yellow."""
    pause = Pause(date(2026, 3, 3), date(2026, 3, 6))
    assert status(MONDAY, 6, 12, [pause], date(2026, 3, 11), CALENDAR) == "yellow"
    assert status(MONDAY, 6, 12, [pause], date(2026, 3, 4), CALENDAR) == "green"


@pytest.mark.parametrize(
    ("paused_on", "expected"),
    [
        (date(2026, 3, 4), "paused"),
        (date(2026, 3, 10), "paused"),  # paused on the committed deadline: still in time
        (date(2026, 3, 12), "red"),  # paused after the committed deadline
        (date(2026, 3, 19), "overdue"),  # paused after the statutory deadline
    ],
)
def test_open_pause_does_not_undo_lateness(paused_on: date, expected: str) -> None:
    """An open pause shows "paused", unless the case was already red or overdue when it began."""
    assert status(MONDAY, 6, 12, [Pause(paused_on)], date(2026, 4, 30), CALENDAR) == expected


def test_paused_on_a_friday_deadline_stays_paused_over_the_weekend() -> None:
    """A pause opened on a Friday deadline is "paused" on the Saturday, not red."""
    friday = date(2026, 3, 6)
    assert status(MONDAY, 4, 8, [Pause(friday)], date(2026, 3, 7), CALENDAR) == "paused"


@pytest.mark.parametrize(
    ("finished_on", "expected"),
    [(date(2026, 3, 10), "done_on_time"), (date(2026, 3, 11), "done_late"), (date(2026, 3, 20), "done_late")],
)
def test_finished_case_is_judged_against_the_committed_deadline(finished_on: date, expected: str) -> None:
    """Finishing on the committed deadline is on time; any later is late."""
    assert status(MONDAY, 6, 12, [], date(2026, 4, 30), CALENDAR, finished_on=finished_on) == expected


def test_finishing_during_a_pause_counts_it_up_to_that_day() -> None:
    """A case withdrawn during an open correction is judged with the pause ending that day."""
    pause = Pause(date(2026, 3, 5))
    assert status(MONDAY, 6, 12, [pause], date(2026, 3, 13), CALENDAR, finished_on=date(2026, 3, 13)) == (
        "done_on_time"
    )


def test_commitment_longer_than_the_statutory_limit_is_refused() -> None:
    """A committed limit above the statutory one is refused."""
    with pytest.raises(InvalidInput, match="exceeds"):
        status(MONDAY, 13, 12, [], MONDAY, CALENDAR)


@PROPERTY
@given(
    accepted=st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31)),
    limit=st.integers(min_value=0, max_value=60),
    offset=st.integers(min_value=-30, max_value=120),
    length=st.integers(min_value=0, max_value=90),
)
def test_a_pause_never_shortens_a_deadline(accepted: date, limit: int, offset: int, length: int) -> None:
    """Whatever its place and length, a closed pause leaves the deadline where it was or later."""
    start = accepted + timedelta(days=offset)
    pause = Pause(start, start + timedelta(days=length))
    plain, paused = deadline(accepted, limit, [], CALENDAR), deadline(accepted, limit, [pause], CALENDAR)
    assert plain is not None and paused is not None and paused >= plain
