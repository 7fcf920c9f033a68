"""The only places the relay reads the clock or makes random ids."""

import os
import time
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

from casework.errors import InvalidInput


def now_us() -> int:
    """Wall-clock time in microseconds since the epoch (UTC)."""
    return time.time_ns() // 1000


def iso(us: int) -> str:
    """ISO 8601 with offset for a microsecond timestamp."""
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).isoformat()


CHINA = timezone(timedelta(hours=8))  # China Standard Time, no daylight saving


TODAY_VARIABLE = "SERVICENET_TODAY"


def today_in_china() -> date:
    """The calendar day in China now: deadlines count in the offices' working days.

    For drills and tests only, the environment variable SERVICENET_TODAY (YYYY-MM-DD) sets the
    day instead, e.g. to accept a case "in December 2026". The deploy units never set it.
    """
    given = os.environ.get(TODAY_VARIABLE)
    if given is None:
        return datetime.now(CHINA).date()
    try:
        return date.fromisoformat(given)
    except ValueError as exc:
        said = f"{TODAY_VARIABLE}={given[:40]!r} is not a date (YYYY-MM-DD)"
        raise InvalidInput(said, "today_not_date", variable=TODAY_VARIABLE, given=given[:40]) from exc


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 version 7): a case id an offline laptop can make alone."""
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))
