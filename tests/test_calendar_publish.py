"""The holiday calendar as data: the district publishes a year the software does not ship, every
tier pulls it, and a case accepted in December 2026 counts its deadline into 2027 by it; a
township without it counts Monday to Friday and says so. End to end with real processes and
command lines (marked e2e), and the pull itself in-process."""

import json
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from casework import WorkCalendar, default_calendar, default_catalog
from messages import t
from relay import calendars
from relay.catalogs import Published
from relay.config import DB_FILE
from relay.service import RelayService
from relay.sync import Syncer
from relay.upstream import LocalUpstream
from tests.netkit import IDS, Network, free_port

e2e = pytest.mark.e2e
D, T, V = "500117", "500117001", "500117001005"
CUT_T, CUT_V = "500117002", "500117002001"  # a township that cannot reach the district
FIXTURE = Path(__file__).resolve().parent / "data" / "calendar-2027-test.json"
VERSION = "2027-test.1"
DECEMBER = {"SERVICENET_TODAY": "2026-12-21"}  # a Monday: 15 working days later is in 2027
ITEM = "twp-homestead"  # decided at the township; 15 and 20 working days in catalog 2026.x


@pytest.fixture(scope="module")
def network(network_made: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """District, township T with village V, and township CUT_T (its district address leads
    nowhere) with village CUT_V; the three servers running. One network for the whole file."""
    net = network_made.copy(tmp_path_factory.mktemp("calendar"))
    net.add(CUT_T, upstream=f"127.0.0.1:{free_port()}")
    net.add(CUT_V)
    for code in (D, T, CUT_T):
        net.start(code)
    yield net
    net.stop_all()


@pytest.fixture(scope="module")
def publication(network: Network) -> dict[str, Any]:
    """The district publishes the 2027 test calendar (once for the file)."""
    return dict(network.node(D, "calendar", "publish", str(FIXTURE), "--json"))


def published_2027() -> WorkCalendar:
    """What a node's calendar is once it holds the publication: shipped years plus 2027."""
    years = json.loads(FIXTURE.read_text(encoding="utf-8"))["years"]
    return default_calendar().merged(WorkCalendar.from_dict({"years": years}))


def limits(calendar: WorkCalendar) -> tuple[str, str]:
    """The committed and statutory deadlines of ITEM accepted on 21 December 2026."""
    start, item = date.fromisoformat(DECEMBER["SERVICENET_TODAY"]), default_catalog().items[ITEM]
    committed, statutory = (
        calendar.add_working_days(start, days) for days in (item.committed_days, item.statutory_days)
    )
    return committed.isoformat(), statutory.isoformat()


def intake(net: Network, village: str) -> str:
    taken = net.node(
        village, "intake", "--item", ITEM, "--applicant-name", "王五", "--applicant-id", IDS[1], "--json"
    )
    return str(taken["case_id"])


def accept_in_december(net: Network, village: str, township: str) -> str:
    """A case taken at the village, pushed up, accepted at the township on 21 December 2026."""
    case_id = intake(net, village)
    assert net.sync(village)["pushed"] == 1
    net.node(township, "accept", case_id, env=DECEMBER)
    return case_id


def deadlines(net: Network, code: str, case_id: str) -> tuple[str, str]:
    shown = net.node(code, "show", case_id, "--json")
    return shown["deadline"], shown["statutory_deadline"]


def stored_versions(net: Network, code: str) -> list[str]:
    with sqlite3.connect(net.home(code) / DB_FILE) as db:
        return [row[0] for row in db.execute("SELECT version FROM calendars ORDER BY version")]


@e2e
def test_township_and_village_pull_the_published_calendar(
    network: Network, publication: dict[str, Any]
) -> None:
    """Published at the district, the 2027 calendar reaches a township and its village by sync."""
    assert publication == {"version": VERSION, "years": [2027], "already": False}
    again = network.node(D, "calendar", "publish", str(FIXTURE), "--json")  # a script run twice
    assert again == publication | {"already": True}
    network.sync(T)
    network.sync(V)
    for code in (D, T, V):
        status = network.node(code, "status", "--json")
        assert status["calendar_version"] == VERSION, code
        assert status["calendar_years"] == [2024, 2025, 2026, 2027], code


@e2e
def test_december_case_counts_its_deadline_by_the_published_2027(
    network: Network, publication: dict[str, Any]
) -> None:
    """Accepted 2026-12-21, the deadline skips the 2027 New Year holiday; the village shows it too."""
    network.sync(T)
    case_id = accept_in_december(network, V, T)
    expected = limits(published_2027())  # ("2027-01-12", "2027-01-19") for 15 and 20 days
    assert expected[0].startswith("2027-01") and expected != limits(default_calendar())  # 1 Jan: Friday
    assert deadlines(network, T, case_id) == expected
    network.sync(V)
    assert deadlines(network, V, case_id) == expected
    report = network.node(T, "supervise", "--json", env=DECEMBER)
    assert report["calendar"] == {
        "version": VERSION,
        "years": [2024, 2025, 2026, 2027],
        "assumed_monday_to_friday": [],
    }


@e2e
def test_township_without_the_publication_assumes_monday_to_friday_and_says_so(network: Network) -> None:
    """A township cut off from the district counts 2027 Monday–Friday; supervise says 2027 was assumed."""
    case_id = accept_in_december(network, CUT_V, CUT_T)
    assert deadlines(network, CUT_T, case_id) == limits(default_calendar())  # 2027-01-11, 2027-01-18
    report = network.node(CUT_T, "supervise", "--json", env=DECEMBER)
    assert report["calendar"] == {
        "version": None,
        "years": [2024, 2025, 2026],
        "assumed_monday_to_friday": [2027],
    }
    accepted = network.node(CUT_T, "show", case_id, "--json")["events"][1]
    assert accepted["payload"]["assumed_monday_to_friday"] == [2027]  # the case says so too


@e2e
@pytest.mark.parametrize(
    ("document", "named"),
    [
        (
            {"version": "2027-bad.1", "years": {"2027": {"holidays": [], "workdays": ["2027-02-22"]}}},
            t(
                "refusal.calendar_weekday_worked",
                where="years.2027.workdays",
                day="2027-02-22",
                weekday=t("weekday.monday"),
            ),
        ),
        (
            {"version": "2027-bad.1", "years": {"2027": {"holidays": ["2027-13-01"], "workdays": []}}},
            t("refusal.calendar_not_a_date", where="years.2027.holidays[0]", value="'2027-13-01'"),
        ),
        ({"version": "", "years": {}}, t("refusal.calendar_version", most=calendars.MAX_VERSION)),
    ],
)
def test_malformed_calendar_is_refused_in_one_line_and_nothing_stored(
    network: Network, tmp_path: Path, document: dict[str, Any], named: str
) -> None:
    """A calendar that does not validate is refused with one line naming the field, in the
    catalog's words; none is kept."""
    before = stored_versions(network, D)
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    refused = network.node(D, "calendar", "publish", str(path), check=False)
    assert refused.returncode == 2 and refused.stderr.decode() == t("cli.error", message=named) + "\n"
    assert stored_versions(network, D) == before and "2027-bad.1" not in before


def document(version: str, years: dict[str, Any]) -> bytes:
    return json.dumps({"version": version, "years": years}).encode()


def township_syncer(net: Any) -> Syncer:
    to_district = LocalUpstream(RelayService(net.district.engine, net.district.ledger))
    return Syncer(net.township.engine, net.township.ledger, to_district)


async def test_every_published_version_is_pulled_in_order_and_the_newest_wins(net: Any) -> None:
    """Versions are pulled oldest first, one per call: a later one adds a year or corrects one."""
    first = {"2027": {"holidays": ["2027-01-01"], "workdays": []}}
    later = {"2027": {"holidays": [], "workdays": []}, "2028": {"holidays": ["2028-01-03"], "workdays": []}}
    async with net.district.engine.begin() as conn:
        await calendars.store(conn, Published("2027.1", document("2027.1", first), 1))
        await calendars.store(conn, Published("2028.1", document("2028.1", later), 2))
    to_township = LocalUpstream(RelayService(net.township.engine, net.township.ledger))
    await township_syncer(net).refresh_calendar()
    await Syncer(net.village.engine, net.village.ledger, to_township).refresh_calendar()
    for node in (net.township, net.village):
        ledger = node.ledger
        assert ledger.calendar_version == "2028.1"
        assert {2027, 2028} <= ledger.calendar.known_years
        assert ledger.calendar.is_workday(date(2027, 1, 1))  # corrected by 2028.1
        assert not ledger.calendar.is_workday(date(2028, 1, 3))
        async with node.engine.connect() as conn:
            assert [p.version for p in await calendars.kept(conn)] == ["2027.1", "2028.1"]


async def test_a_bad_calendar_from_upstream_is_logged_and_left_out(net: Any) -> None:
    """An upstream's calendar that does not validate is logged; nothing of it is kept or used."""
    bad = document("2027.9", {"2027": {"holidays": ["2027-01-02"], "workdays": []}})  # a Saturday
    async with net.district.engine.begin() as conn:  # stored past the publish checks
        row = {"version": "2027.9", "document": bad, "published_at": 1}
        await conn.execute(calendars.calendars.insert().values(**row))
    before = net.township.ledger.calendar
    with capture_logs() as logs:
        await township_syncer(net).refresh_calendar()
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["relay.calendar.invalid"]
    assert net.township.ledger.calendar is before and net.township.ledger.calendar_version == ""
    async with net.township.engine.connect() as conn:
        assert await calendars.kept(conn) == []
