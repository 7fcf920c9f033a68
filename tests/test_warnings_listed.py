"""The supervision report lists only so many warned cases (relay.supervision.WARNINGS_LISTED),
but counts them all: the totals overall and per township come from the kept counts, not from
the cut list, and the command line and the dashboard say when the list is cut."""

from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from casework import Divisions, Request
from casework.lifecycle import ACCEPTED, ESCALATED
from district_node.dashboard import _app
from messages import t
from relay import console
from relay.node import Node
from relay.schema import cases
from relay.staff import act
from relay.supervision import OPEN, WARNINGS, light_today, supervise
from tests.conftest import DIVISIONS, TOWNSHIP
from tests.test_relay_inprocess import ID, wire
from village_agent import service as village

FIRST = date(2026, 11, 23)  # a Monday


async def test_counts_stay_exact_when_the_list_is_cut(net, capsys, monkeypatch):
    """Cases accepted over three days, some escalated to the district: with one case listed
    of each urgency, the warnings counted overall and per township still equal a scan of the
    cases, day after day, and the list says how many it left out."""
    v_sync, t_sync, _ = wire(net)
    card = [_request(net.village, "twp-elderly-card") for _ in range(6)]
    dibao = [_request(net.village, "twp-dibao-apply") for _ in range(2)]
    ids = [taken.case_id for taken in await village.take(net.village, card + dibao)]
    await v_sync.sync(5)
    for offset in range(3):
        net.township.ledger.today = lambda offset=offset: FIRST + timedelta(days=offset)
        await act(net.township, ids[2 * offset : 2 * offset + 2], ACCEPTED, {})
    await act(net.township, ids[6:], ACCEPTED, {})
    await act(net.township, ids[6:], ESCALATED, {})
    await t_sync.sync(5)
    net.district.ledger.today = lambda: FIRST
    await act(net.district, ids[6:], ACCEPTED, {})  # the district's own: its township is the village's
    await t_sync.sync(5)
    cut_on = []
    for offset in range(0, 20, 2):
        day = FIRST + timedelta(days=offset)
        report = await supervise(net.district, day, listed=1)
        scanned = await _scanned(net.district, day)
        total = {light: sum(n for (_, found), n in scanned.items() if found == light) for light in WARNINGS}
        assert report["warnings_total"] == total
        assert report["warnings_by_township"] == ({TOWNSHIP: _nonzero(total)} if any(total.values()) else {})
        urgent = total["overdue"] + total["red"]
        listed = [w["light"] for w in report["warnings"]]
        assert listed == sorted(listed, key=lambda light: light == "yellow")  # the urgent first
        assert len(report["warnings"]) == min(urgent, 1) + min(total["yellow"], 1)
        assert report["warnings_cut"] == sum(total.values()) - len(report["warnings"])
        if report["warnings_cut"]:
            cut_on.append(day)
    assert cut_on, "no day had more warned cases than the list holds"

    day = cut_on[0]
    report = await supervise(net.district, day, listed=1)
    shown, warned = len(report["warnings"]), sum(report["warnings_total"].values())
    console._print_supervision(report)
    printed = " ".join(capsys.readouterr().out.split())
    assert " ".join(t("cli.supervise.cut", shown=shown, total=warned).split()) in printed

    monkeypatch.setenv("SERVICENET_TODAY", day.isoformat())
    board = _app.Dashboard(net.district, Divisions.from_csv(DIVISIONS))
    board.listed = 1
    _, overview = await board.overview()
    counts = report["warnings_total"]
    assert f"{counts['yellow']}／{counts['red']}／{counts['overdue']}" in overview
    assert t("note.warnings_cut", shown=shown, total=warned) in overview
    _, township = await board.township(TOWNSHIP, None)
    assert t("note.warnings_cut", shown=shown, total=warned) in township
    listed = {w["case_id"] for w in report["warnings"]}
    lights = await _lights(net.district, day)
    left_out = next(case for case, light in lights.items() if light in WARNINGS and case not in listed)
    _, page = await board.case(left_out, None)
    assert f"badge l-{lights[left_out]}" in page  # its light, though the report does not list it


def _request(node: Node, item: str) -> Any:
    return village.check(node, Request(item, "张三", ID), {})


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {light: n for light, n in counts.items() if n}


async def _scanned(node: Node, day: date) -> dict[tuple[str, str], int]:
    """The open cases' lights counted by township, by a scan of every case."""
    light = light_today(day).label("light")
    query = (
        select(cases.c.township_code, light, func.count())
        .where(cases.c.status.in_(OPEN))
        .group_by(cases.c.township_code, light)
    )
    async with node.engine.connect() as conn:
        return {(township, found): n for township, found, n in await conn.execute(query)}


async def _lights(node: Node, day: date) -> dict[str, str]:
    async with node.engine.connect() as conn:
        return dict((await conn.execute(select(cases.c.case_id, light_today(day)))).all())
