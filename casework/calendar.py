"""The working-day calendar: which days count towards a case's time limit (R7).

China moves working days around its public holidays (调休): a holiday on a weekday is a day off,
and a weekend day next to it becomes a working day. Both are published by the State Council
year by year, so a calendar knows only the years it was given; for any other year it falls back to
Monday–Friday and says so through ``unknown_years``, so a deadline can carry that caveat.

The shipped years live in ``casework/data/holidays.json``, generated once from the
``chinesecalendar`` package (see ``from_chinesecalendar``); further years that the district
publishes come as data in the same shape and are combined with ``merged``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from types import MappingProxyType
from typing import Any

from casework.errors import InvalidInput

_ONE_DAY = timedelta(days=1)
_YEAR_KEY = re.compile(r"\d{4}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LISTS = ("holidays", "workdays")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")  # not locale


def _is_weekday(day: date) -> bool:
    return day.weekday() < 5


@dataclass(frozen=True, slots=True)
class YearRules:
    """One published year: weekdays that are off (holidays) and weekend days that are worked (调休)."""

    year: int
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        self._check("holidays", self.holidays, weekday=True)
        self._check("workdays", self.workdays, weekday=False)

    def _check(self, name: str, days: frozenset[date], weekday: bool) -> None:
        where = f"years.{self.year}.{name}"
        for day in sorted(days):
            if day.year != self.year:
                said = f"{day.isoformat()} is not in {self.year}"
                raise _bad(where, said, "calendar_other_year", day=day.isoformat(), year=self.year)
            if _is_weekday(day) != weekday:
                kind = "weekdays that are off" if weekday else "weekend days that are worked"
                named = _DAY_NAMES[day.weekday()]
                said = f"{day.isoformat()} is a {named}; list only {kind}"
                code = "calendar_weekend_holiday" if weekday else "calendar_weekday_worked"
                raise _bad(where, said, code, day=day.isoformat(), weekday=named.lower())


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    """An immutable set of published years; days of other years count Monday–Friday."""

    years: tuple[YearRules, ...] = ()
    _by_year: Mapping[int, YearRules] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_year = {rules.year: rules for rules in self.years}
        if len(by_year) != len(self.years):
            raise InvalidInput("calendar: a year is given twice", "calendar_year_twice")
        object.__setattr__(self, "years", tuple(sorted(self.years, key=lambda rules: rules.year)))
        object.__setattr__(self, "_by_year", MappingProxyType(by_year))

    @property
    def known_years(self) -> frozenset[int]:
        """The years whose holidays and adjusted workdays this calendar holds."""
        return frozenset(self._by_year)

    def knows(self, year: int) -> bool:
        return year in self._by_year

    def is_workday(self, day: date) -> bool:
        """Whether staff work on this day: Monday–Friday unless the year's publication says otherwise."""
        rules = self._by_year.get(day.year)
        if rules is None:
            return _is_weekday(day)
        if _is_weekday(day):
            return day not in rules.holidays
        return day in rules.workdays

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start``; 0 means on the spot, i.e. ``start`` itself."""
        if days < 0:
            raise InvalidInput(f"working days must be 0 or more, got {days}")
        day = start
        while days:
            day += _ONE_DAY
            if self.is_workday(day):
                days -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days lie in (start, end]: 0 when ``end`` is not after ``start``."""
        return sum(1 for day in _days_after(start, end) if self.is_workday(day))

    def unknown_years(self, start: date, end: date) -> list[int]:
        """Years touched by [start, end] that fell back to Monday–Friday, in order."""
        low, high = sorted((start.year, end.year))
        return [year for year in range(low, high + 1) if not self.knows(year)]

    def merged(self, other: WorkCalendar) -> WorkCalendar:
        """This calendar with ``other``'s years added; a year in both is taken from ``other``."""
        kept = [rules for rules in self.years if not other.knows(rules.year)]
        return WorkCalendar((*kept, *other.years))

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form read by ``from_dict``: dates as ISO strings, in order."""
        return {"years": {str(rules.year): _year_to_dict(rules) for rules in self.years}}

    @classmethod
    def from_dict(cls, document: Any) -> WorkCalendar:
        """Validate a published calendar; each bad field raises InvalidInput naming it."""
        if not isinstance(document, dict) or set(document) != {"years"}:
            raise InvalidInput(
                "calendar: expected an object with the single key 'years'", "calendar_single_key"
            )
        years = document["years"]
        if not isinstance(years, dict):
            raise InvalidInput("calendar: 'years' must be an object keyed by year", "calendar_years_object")
        return cls(tuple(_year_from_dict(key, value) for key, value in years.items()))


def default_calendar() -> WorkCalendar:
    """The calendar shipped with the software (2024–2026), read without chinesecalendar."""
    text = resources.files("casework").joinpath("data/holidays.json").read_text(encoding="utf-8")
    return WorkCalendar.from_dict(json.loads(text))


def from_chinesecalendar(years: Iterable[int]) -> WorkCalendar:
    """Build the calendar for ``years`` from the ``chinesecalendar`` package.

    A maintainer's tool, never called at run time: the shipped ``data/holidays.json`` is
    ``json.dumps(from_chinesecalendar(range(2024, 2027)).to_dict(), indent=1)``, and a test checks
    that the two still agree.
    """
    return WorkCalendar(tuple(_year_from_chinesecalendar(year) for year in years))


def _year_from_chinesecalendar(year: int) -> YearRules:
    import chinese_calendar

    first, last = date(year, 1, 1), date(year, 12, 31)
    try:
        off: list[date] = chinese_calendar.get_holidays(first, last, include_weekends=False)
        worked: list[date] = chinese_calendar.get_workdays(first, last, include_weekends=True)
    except NotImplementedError as exc:
        raise InvalidInput(f"chinesecalendar has no holidays for {year}: {exc}") from exc
    # Its holiday list also names the weekend days of a holiday week, which are off anyway.
    holidays = frozenset(day for day in off if _is_weekday(day))
    return YearRules(year, holidays, frozenset(day for day in worked if not _is_weekday(day)))


def _days_after(start: date, end: date) -> Iterator[date]:
    day = start + _ONE_DAY
    while day <= end:
        yield day
        day += _ONE_DAY


def _year_to_dict(rules: YearRules) -> dict[str, list[str]]:
    return {
        "holidays": [day.isoformat() for day in sorted(rules.holidays)],
        "workdays": [day.isoformat() for day in sorted(rules.workdays)],
    }


def _bad(where: str, english: str, code: str, **fields: object) -> InvalidInput:
    """A refusal naming the calendar's field (``where``: years.2027.holidays, say)."""
    return InvalidInput(f"calendar: {where}: {english}", code, where=where, **fields)


def _year_from_dict(key: Any, value: Any) -> YearRules:
    where = f"years.{key}"
    if not isinstance(key, str) or not _YEAR_KEY.fullmatch(key):
        raise _bad(where, "a year key must be four digits, like '2027'", "calendar_year_key")
    if not isinstance(value, dict) or set(value) != set(_LISTS):
        said = "expected an object with exactly 'holidays' and 'workdays'"
        raise _bad(where, said, "calendar_year_lists")
    holidays, workdays = (_dates(value[name], f"{where}.{name}") for name in _LISTS)
    return YearRules(int(key), holidays, workdays)


def _dates(raw: Any, where: str) -> frozenset[date]:
    if not isinstance(raw, list):
        raise _bad(where, "must be a list of dates (YYYY-MM-DD)", "calendar_dates")
    days = [_date(entry, f"{where}[{index}]") for index, entry in enumerate(raw)]
    if len(set(days)) != len(days):
        raise _bad(where, "a date is listed twice", "calendar_date_twice")
    return frozenset(days)


def _date(raw: Any, where: str) -> date:
    if isinstance(raw, str) and _ISO_DATE.fullmatch(raw):
        with suppress(ValueError):  # 2027-02-30, say
            return date.fromisoformat(raw)
    raise _bad(where, f"{raw!r} is not a date (YYYY-MM-DD)", "calendar_not_a_date", value=repr(raw))
