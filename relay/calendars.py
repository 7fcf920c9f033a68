"""Holiday calendars kept in a node's database: published at the district, pulled down (R7).

The State Council publishes each year's holidays and adjusted workdays (调休) late in the year
before; the software ships only the years it was built with. So the district publishes further
years as versioned documents, every node pulls them, and a node counts working days by the
shipped years overlaid by every version it keeps, oldest first: a later version may correct a
year an earlier one gave.
"""

import json

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from casework import InvalidInput, WorkCalendar, default_calendar
from relay.catalogs import Published, keep_version
from relay.schema import calendars

MAX_VERSION = 32  # the width of calendars.version
_FIELDS = ("version", "years", "source")  # "source" (optional): where the dates come from


def parse_document(document: bytes) -> tuple[str, WorkCalendar]:
    """A published calendar, checked field by field: its version and its years. InvalidInput
    names the first bad field in one line."""
    try:
        raw = json.loads(document)
    except ValueError as exc:
        raise InvalidInput(f"calendar is not valid JSON: {exc}", "calendar_json", reason=str(exc)) from exc
    if not isinstance(raw, dict):
        raise InvalidInput("calendar must be a JSON object with 'version' and 'years'", "calendar_object")
    unknown = sorted(str(key) for key in raw if key not in _FIELDS)
    if unknown:
        field = repr(unknown[0][:40])
        said = f"calendar: unknown field {field}: use 'version', 'years', 'source'"
        raise InvalidInput(said, "calendar_unknown_field", field=field)
    version = raw.get("version")
    if not isinstance(version, str) or not 0 < len(version) <= MAX_VERSION or not version.isprintable():
        said = f"calendar: 'version' must be 1 to {MAX_VERSION} characters, like '2027.1'"
        raise InvalidInput(said, "calendar_version", most=MAX_VERSION)
    if version.strip() != version:
        raise InvalidInput("calendar: 'version' must not start or end with a space", "calendar_version_space")
    if not isinstance(raw.get("source", ""), str):
        raise InvalidInput("calendar: 'source' must be a string", "calendar_source")
    if "years" not in raw:
        said = "calendar: 'years' is missing: give each year's holidays and workdays"
        raise InvalidInput(said, "calendar_no_years")
    calendar = WorkCalendar.from_dict({"years": raw["years"]})
    if not calendar.known_years:
        raise InvalidInput("calendar: 'years' names no year", "calendar_no_year")
    return version, calendar


async def store(conn: AsyncConnection, published: Published) -> bool:
    """Keep a calendar version; False if it was kept already. A version never changes:
    publish a new one to correct a year."""
    return await keep_version(conn, calendars, "calendar", published)


async def kept(conn: AsyncConnection) -> list[Published]:
    """Every kept version in the order it was published (then by version, for equal times)."""
    query = select(calendars).order_by(calendars.c.published_at, calendars.c.version)
    return [Published(r.version, r.document, r.published_at) for r in (await conn.execute(query)).all()]


async def next_after(conn: AsyncConnection, have_version: str) -> Published | None:
    """What a node below asks for next: the version published after ``have_version``; the
    oldest when it has none; the newest when this node does not know its version (it came
    from an upstream restored from an older backup, say). None when it has the newest."""
    versions = await kept(conn)
    names = [published.version for published in versions]
    if not versions or names[-1] == have_version:
        return None
    if not have_version:
        return versions[0]
    if have_version not in names:
        return versions[-1]
    return versions[names.index(have_version) + 1]


async def load(conn: AsyncConnection) -> tuple[str, WorkCalendar]:
    """The newest kept version ("" if none) and the calendar deadlines count by: the shipped
    years overlaid by every kept version, oldest first."""
    versions = await kept(conn)
    calendar = default_calendar()
    for published in versions:
        calendar = calendar.merged(parse_document(published.document)[1])
    return (versions[-1].version if versions else ""), calendar
