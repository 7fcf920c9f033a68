"""The relay's logic across three real SQLite nodes, wired in-process (no network)."""

import json
from datetime import date

import pytest

from casework import InvalidInput, Request, default_catalog
from casework.lifecycle import (
    ACCEPTED,
    CMD_RATE,
    CMD_SUPPLEMENT,
    CMD_WITHDRAW,
    CORRECTION_REQUESTED,
    DECIDED,
    ESCALATED,
)
from relay import catalogs
from relay.queries import list_cases, show_case
from relay.schema import staff
from relay.service import RelayService
from relay.staff import act
from relay.supervision import supervise
from relay.sync import Syncer
from relay.upstream import LocalUpstream
from tests.conftest import TOWNSHIP
from village_agent import service as village

ID = "11010519491231002X"


def wire(net):
    """Syncers for the village (to the township) and the township (to the district)."""
    to_district = LocalUpstream(RelayService(net.district.engine, net.district.ledger))
    to_township = LocalUpstream(RelayService(net.township.engine, net.township.ledger))
    return (
        Syncer(net.village.engine, net.village.ledger, to_township),
        Syncer(net.township.engine, net.township.ledger, to_district),
        to_township,
    )


async def intake(node, item="twp-pension-enroll", n=1):
    checked = [
        village.check(node, Request(item, "张三", ID, materials=("居民身份证或户口簿",)), {})
        for _ in range(n)
    ]
    return [t.case_id for t in await village.take(node, checked)]


async def test_township_item_is_decided_at_township_and_outcome_returns(net):
    """A township item goes up, is accepted and approved at the township, and the village sees it."""
    v_sync, t_sync, _ = wire(net)
    [case_id] = await intake(net.village)
    assert (await v_sync.sync(5)).pushed == 1
    assert (await act(net.township, [case_id], ACCEPTED, {"staff": "A"}))[0].ok
    assert (await act(net.township, [case_id], DECIDED, {"approved": True, "reason": "ok"}))[0].ok
    report = await v_sync.sync(5)
    assert report.pulled == 2
    [case] = await list_cases(net.village)
    assert case["status"] == "approved" and case["owner"] == "500117001"
    await t_sync.sync(5)
    [hub_case] = await list_cases(net.district)
    assert hub_case["status"] == "approved"


async def test_district_item_is_escalated_and_decided_at_district(net):
    """A district item is accepted and escalated by the township, then decided by the district."""
    v_sync, t_sync, _ = wire(net)
    [case_id] = await intake(net.village, "twp-dibao-apply")
    await v_sync.sync(5)
    await act(net.township, [case_id], ACCEPTED, {})
    refused = await act(net.township, [case_id], DECIDED, {"approved": True, "reason": "x"})
    assert not refused[0].ok and "escalate" in refused[0].error
    assert (await act(net.township, [case_id], ESCALATED, {"opinion": "符合"}))[0].ok
    await t_sync.sync(5)
    assert (await act(net.district, [case_id], ACCEPTED, {}))[0].ok
    assert (await act(net.district, [case_id], DECIDED, {"approved": False, "reason": "收入超标"}))[0].ok
    await t_sync.sync(5)
    await v_sync.sync(5)
    case = await show_case(net.village, case_id)
    assert case["status"] == "rejected" and case["reason"] == "收入超标"
    assert [e["type"] for e in case["events"]][-1] == DECIDED


async def test_withdrawal_travels_up_to_owner_and_back(net):
    """A withdrawal from the village is applied by the owner and the result comes back down."""
    v_sync, _, _ = wire(net)
    [case_id] = await intake(net.village)
    await village.command(net.village, case_id, CMD_WITHDRAW, {"reason": "不办了"})
    await v_sync.sync(5)
    [township_case] = await list_cases(net.township)
    assert township_case["status"] == "withdrawn"
    await v_sync.sync(5)
    assert (await list_cases(net.village))[0]["status"] == "withdrawn"


async def test_village_keeps_taking_while_township_down_then_drains(net):
    """Requests taken while the township is unreachable stay queued and drain exactly once."""
    v_sync, _, link = wire(net)
    link.down = True
    await intake(net.village, n=30)
    assert (await net_backlog(v_sync)) == 30
    link.down = False
    report = await v_sync.sync(5)
    assert report.pushed == 30 and report.backlog == 0
    assert len(await list_cases(net.township)) == 30


async def test_resent_batch_is_applied_once(net):
    """A batch sent twice (a lost acknowledgement) is acknowledged but not applied again."""
    v_sync, _, _ = wire(net)
    await intake(net.village, n=3)
    await v_sync.sync(5)
    v_sync._next_seq = 1  # forget the acknowledgement, as after a crash before it was stored
    await v_sync.push_once()
    assert len(await list_cases(net.township)) == 3


async def net_backlog(syncer):
    from relay.sync import backlog

    async with syncer.engine.connect() as conn:
        return await backlog(conn)


async def test_deadlines_are_fixed_by_the_owner_and_extended_by_a_correction(net):
    """The owner stamps committed and statutory deadlines at acceptance (working days, on its
    clock); a correction stops the clock until the supplement; every tier shows the same dates."""
    v_sync, t_sync, _ = wire(net)
    [case_id] = await intake(net.village, "twp-elderly-card")  # committed 1, statutory 5 days
    await v_sync.sync(5)
    net.township.ledger.today = lambda: date(2026, 11, 23)  # a Monday
    await act(net.township, [case_id], ACCEPTED, {})
    await act(net.township, [case_id], CORRECTION_REQUESTED, {"missing": ["照片"]})
    [case] = await list_cases(net.township)
    assert (case["deadline"], case["statutory_deadline"], case["paused_on"]) == (
        "2026-11-24",
        "2026-11-30",
        "2026-11-23",
    )
    await v_sync.sync(5)
    await village.command(net.village, case_id, CMD_SUPPLEMENT, {"materials": [{"name": "照片"}]})
    net.township.ledger.today = lambda: date(2026, 11, 26)  # three working days later
    await v_sync.sync(5)
    await v_sync.sync(5)
    await t_sync.sync(5)
    for node in (net.village, net.township, net.district):
        [case] = await list_cases(node)
        assert (case["status"], case["deadline"], case["statutory_deadline"], case["paused_on"]) == (
            "accepted",
            "2026-11-27",
            "2026-12-03",
            None,
        )


async def test_supervision_colours_cases_and_rates_the_service(net):
    """Yellow with a day left, red past the committed deadline, overdue past the statutory one;
    on-time and satisfaction rates count decided and rated cases."""
    v_sync, _, _ = wire(net)
    waiting, decided = await intake(net.village, "twp-elderly-card", n=2)  # committed 1, statutory 5
    await v_sync.sync(5)
    net.township.ledger.today = lambda: date(2026, 11, 23)
    await act(net.township, [waiting, decided], ACCEPTED, {})
    async with net.township.engine.begin() as conn:  # a roster: the decision is window 2's
        await conn.execute(staff.insert().values(name="王五", window="2", role="A", department=""))
    await act(net.township, [decided], DECIDED, {"approved": True, "reason": "ok"}, "王五")
    await v_sync.sync(5)
    for score in (5, 1):
        await village.command(net.village, decided, CMD_RATE, {"score": score})
    await v_sync.sync(5)
    lights = [
        (await supervise(net.township, date(2026, 11, day)))["warnings"][0]["light"] for day in (24, 25)
    ] + [(await supervise(net.township, date(2026, 12, 1)))["warnings"][0]["light"]]
    assert lights == ["yellow", "red", "overdue"]
    report = await supervise(net.township, date(2026, 11, 24))
    assert report["by_owner"][TOWNSHIP] == {"yellow": 1, "done_on_time": 1}
    assert report["on_time_rate"] == 1.0
    rated = {"ratings": 1, "bad_reviews": 1, "rate": 0.0}  # a case counts once: its latest rating
    assert {k: report["satisfaction"][k] for k in rated} == rated
    assert report["satisfaction"]["by_window"] == {"500117001:2": rated}
    assert report["by_window"] == {"": {"yellow": 1}, "500117001:2": {"done_on_time": 1}}
    # The bad review opened a rectification record due 15 working days after it arrived.
    [record] = report["rectifications"]["records"]
    assert (record["case_id"], record["kind"], record["window"]) == (decided, "bad_review", "500117001:2")
    assert record["rectify_by"] == "2026-12-14" and not record["overdue"]


async def test_published_catalog_reaches_every_tier_and_cases_keep_their_version(net):
    """A catalog version published at the district is taken by the township and the village at
    their next sync; a case taken under the old version still flows and keeps its version."""
    v_sync, t_sync, _ = wire(net)
    [old_case] = await intake(net.village)
    items = [i.to_dict() for i in default_catalog().items.values() if i.code != "twp-pension-enroll"]
    newer = {"version": "2027.1", "items": items}
    async with net.district.engine.begin() as conn:
        document = json.dumps(newer, ensure_ascii=False).encode()
        await catalogs.store(conn, catalogs.Published("2027.1", document, 1))
    await t_sync.sync(5)
    await v_sync.sync(5)
    assert (net.township.ledger.catalog.version, net.village.ledger.catalog.version) == ("2027.1",) * 2
    [case] = await list_cases(net.township)
    assert (case["case_id"], case["catalog_version"]) == (old_case, default_catalog().version)
    with pytest.raises(InvalidInput, match="unknown item"):  # withdrawn in the new version
        village.check(net.village, Request("twp-pension-enroll", "张三", ID), {})
