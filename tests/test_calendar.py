"""The working-day calendar: holidays and adjusted workdays, unknown years, publication as data."""

import json
import subprocess
import sys
from dataclasses import FrozenInstanceError
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casework import InvalidInput, WorkCalendar, default_calendar, from_chinesecalendar

CALENDAR = default_calendar()
PUBLISHED_2027 = {"years": {"2027": {"holidays": ["2027-01-01"], "workdays": ["2027-01-09"]}}}
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None)
dates = st.dates(min_value=date(2023, 1, 1), max_value=date(2028, 12, 31))


def test_shipped_file_equals_a_fresh_build_from_chinesecalendar() -> None:
    """Regenerating 2024–2026 from chinesecalendar gives exactly the shipped holidays.json."""
    pytest.importorskip("chinese_calendar")
    assert from_chinesecalendar(range(2024, 2027)) == CALENDAR
    assert CALENDAR.known_years == {2024, 2025, 2026}


def test_every_shipped_day_agrees_with_chinesecalendar() -> None:
    """For each day of 2024–2026, is_workday says what chinesecalendar says."""
    chinese_calendar = pytest.importorskip("chinese_calendar")
    day = date(2024, 1, 1)
    while day.year < 2027:
        assert CALENDAR.is_workday(day) == chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


def test_default_calendar_loads_without_chinesecalendar() -> None:
    """The shipped calendar loads in a process where chinesecalendar cannot be imported."""
    code = (
        "import sys; sys.modules['chinese_calendar'] = None\n"
        "from casework import default_calendar\n"
        "print(sorted(default_calendar().known_years))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[2024, 2025, 2026]"


def test_weekend_is_skipped() -> None:
    """One working day after a Friday in an ordinary week is the Monday."""
    assert CALENDAR.add_working_days(date(2026, 3, 6), 1) == date(2026, 3, 9)
    assert CALENDAR.working_days_between(date(2026, 3, 6), date(2026, 3, 9)) == 1


def test_spring_festival_2026() -> None:
    """Spring Festival 2026: Feb 15–23 off, Saturdays Feb 14 and Feb 28 are worked."""
    assert not any(CALENDAR.is_workday(date(2026, 2, day)) for day in range(15, 24))
    assert CALENDAR.is_workday(date(2026, 2, 14)) and CALENDAR.is_workday(date(2026, 2, 28))
    friday = date(2026, 2, 13)
    assert CALENDAR.add_working_days(friday, 1) == date(2026, 2, 14)
    assert CALENDAR.add_working_days(friday, 2) == date(2026, 2, 24)


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (date(2025, 9, 26), 1, date(2025, 9, 28)),  # Sunday Sep 28 is worked
        (date(2025, 9, 26), 4, date(2025, 10, 9)),  # Oct 1–8 off
        (date(2025, 9, 26), 6, date(2025, 10, 11)),  # Saturday Oct 11 is worked
        (date(2025, 9, 26), 7, date(2025, 10, 13)),
        (date(2026, 9, 18), 1, date(2026, 9, 20)),  # Sunday Sep 20 is worked
        (date(2026, 9, 30), 1, date(2026, 10, 8)),  # Oct 1–7 off
        (date(2026, 9, 30), 3, date(2026, 10, 10)),  # Saturday Oct 10 is worked
        (date(2026, 9, 30), 4, date(2026, 10, 12)),
    ],
)
def test_national_day_golden_week(start: date, days: int, expected: date) -> None:
    """National Day 2025 and 2026: the golden week is skipped and its adjusted weekend days count."""
    assert CALENDAR.add_working_days(start, days) == expected


def test_zero_days_is_on_the_spot_even_on_a_holiday() -> None:
    """add_working_days(start, 0) is start itself, whatever kind of day it is."""
    assert CALENDAR.add_working_days(date(2026, 10, 1), 0) == date(2026, 10, 1)


def test_negative_days_are_refused() -> None:
    """A negative number of working days is refused."""
    with pytest.raises(InvalidInput, match="0 or more"):
        CALENDAR.add_working_days(date(2026, 3, 2), -1)


def test_between_is_zero_when_end_is_not_after_start() -> None:
    """working_days_between counts (start, end]: nothing when end <= start."""
    assert CALENDAR.working_days_between(date(2026, 3, 9), date(2026, 3, 9)) == 0
    assert CALENDAR.working_days_between(date(2026, 3, 9), date(2026, 3, 2)) == 0


def test_unknown_year_falls_back_to_monday_to_friday() -> None:
    """Into 2027 (unpublished) New Year's Day counts as a Friday, and unknown_years says 2027."""
    start = date(2026, 12, 30)
    assert not CALENDAR.knows(2027)
    assert CALENDAR.add_working_days(start, 5) == date(2027, 1, 6)
    assert CALENDAR.add_working_days(start, 7) == date(2027, 1, 8)
    assert CALENDAR.unknown_years(start, date(2027, 1, 8)) == [2027]
    assert CALENDAR.unknown_years(date(2026, 1, 1), date(2026, 12, 31)) == []


def test_published_2027_is_used_after_merging() -> None:
    """Merged with a 2027 publication, Jan 1 is off and Saturday Jan 9 is worked; no year is unknown."""
    calendar = CALENDAR.merged(WorkCalendar.from_dict(PUBLISHED_2027))
    start = date(2026, 12, 30)
    assert calendar.known_years == {2024, 2025, 2026, 2027}
    assert calendar.add_working_days(start, 5) == date(2027, 1, 7)
    assert calendar.add_working_days(start, 7) == date(2027, 1, 9)
    assert calendar.unknown_years(start, date(2027, 1, 9)) == []


def test_merged_year_replaces_the_same_year_whole() -> None:
    """A republished 2026 replaces the old 2026 entirely; other years are kept."""
    corrected = WorkCalendar.from_dict({"years": {"2026": {"holidays": ["2026-10-01"], "workdays": []}}})
    calendar = CALENDAR.merged(corrected)
    assert not calendar.is_workday(date(2026, 10, 1))
    assert calendar.is_workday(date(2026, 10, 2)) and not calendar.is_workday(date(2026, 10, 10))
    assert not calendar.is_workday(date(2025, 10, 2))


def test_dict_round_trip_is_json_ready() -> None:
    """to_dict goes through JSON and from_dict gives back an equal calendar."""
    text = json.dumps(CALENDAR.to_dict())
    assert WorkCalendar.from_dict(json.loads(text)) == CALENDAR
    assert CALENDAR.to_dict()["years"]["2026"]["workdays"][0] == "2026-01-04"


def test_calendar_is_immutable() -> None:
    """A calendar's years cannot be reassigned."""
    with pytest.raises(FrozenInstanceError):
        CALENDAR.years = ()  # type: ignore[misc]


def _year(**change: Any) -> dict[str, Any]:
    return {"years": {"2027": {"holidays": ["2027-01-01"], "workdays": []} | change}}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "single key 'years'"),
        ({"years": {}, "version": 1}, "single key 'years'"),
        ({"years": []}, "'years' must be an object"),
        ({"years": {"27": {"holidays": [], "workdays": []}}}, r"years\.27: a year key must be four digits"),
        ({"years": {"2027": {"holidays": []}}}, r"years\.2027: expected an object with exactly"),
        (_year(holiday=[]), r"years\.2027: expected an object with exactly"),
        (_year(holidays="2027-01-01"), r"years\.2027\.holidays: must be a list"),
        (_year(holidays=["2027-02-30"]), r"years\.2027\.holidays\[0\]: '2027-02-30' is not a date"),
        (_year(holidays=["20270101"]), r"years\.2027\.holidays\[0\]: '20270101' is not a date"),
        (_year(holidays=[20270101]), r"years\.2027\.holidays\[0\]: 20270101 is not a date"),
        (_year(holidays=["2027-01-01", "2027-01-01"]), r"years\.2027\.holidays: a date is listed twice"),
        (_year(holidays=["2027-01-02"]), r"years\.2027\.holidays: 2027-01-02 is a Saturday"),
        (_year(workdays=["2027-01-04"]), r"years\.2027\.workdays: 2027-01-04 is a Monday"),
        (_year(workdays=["2026-01-04"]), r"years\.2027\.workdays: 2026-01-04 is not in 2027"),
    ],
)
def test_bad_publication_field_is_named(document: Any, message: str) -> None:
    """Each bad field of a published calendar is refused with a message naming it."""
    with pytest.raises(InvalidInput, match=message):
        WorkCalendar.from_dict(document)


@PROPERTY
@given(start=dates, days=st.integers(min_value=1, max_value=400))
def test_result_of_adding_days_is_a_workday(start: date, days: int) -> None:
    """Adding one or more working days always lands on a working day."""
    assert CALENDAR.is_workday(CALENDAR.add_working_days(start, days))


@PROPERTY
@given(start=dates, days=st.integers(min_value=0, max_value=400))
def test_between_undoes_adding(start: date, days: int) -> None:
    """working_days_between(start, add_working_days(start, n)) is n."""
    assert CALENDAR.working_days_between(start, CALENDAR.add_working_days(start, days)) == days


@PROPERTY
@given(start=dates, first=st.integers(0, 200), second=st.integers(0, 200))
def test_adding_in_two_steps_equals_adding_at_once(start: date, first: int, second: int) -> None:
    """Adding a then b working days lands where adding a + b does."""
    stepped = CALENDAR.add_working_days(CALENDAR.add_working_days(start, first), second)
    assert stepped == CALENDAR.add_working_days(start, first + second)
