"""The counts supervision and coverage read (relay/tallies.py) are kept as cases change: after
a random history at every tier they equal a full recount, and the day's lights summed from them
equal each case's own light, day after day."""

import asyncio
import random
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from casework import IllegalTransition, Request
from casework.lifecycle import (
    ACCEPTED,
    CMD_RATE,
    CMD_WITHDRAW,
    CORRECTION_REQUESTED,
    DECIDED,
    ESCALATED,
    PAUSED,
    RESUMED,
    WITHDRAWN,
)
from relay import tallies
from relay.node import Node
from relay.queries import show_case
from relay.schema import case_counts, cases, township_counts, village_counts
from relay.staff import act
from relay.supervision import light_today, supervise
from tests.test_relay_inprocess import ID, wire
from village_agent import service as village

ITEMS = ("twp-elderly-card", "twp-mediation", "twp-dibao-apply", "twp-pension-benefit")
STEPS: list[tuple[str, str, dict[str, Any]]] = [  # (where, action, payload)
    ("township", ACCEPTED, {}),
    ("township", CORRECTION_REQUESTED, {"missing": ["照片"]}),
    ("township", DECIDED, {"approved": True, "reason": "ok"}),
    ("township", DECIDED, {"approved": False, "reason": "不符合条件"}),
    ("township", ESCALATED, {}),
    ("district", ACCEPTED, {}),
    ("district", PAUSED, {"step": "公示"}),
    ("district", RESUMED, {}),
    ("district", DECIDED, {"approved": True, "reason": "ok"}),
    ("village", CMD_WITHDRAW, {"reason": "不办了"}),
    ("village", CMD_RATE, {"score": 1}),
    ("village", CMD_RATE, {"score": 5}),
]


async def test_counts_equal_a_recount_after_a_random_history(net):
    """Cases taken, accepted, paused, decided, escalated, withdrawn and rated in a random order
    over simulated days, relayed both ways: every node's counts equal a recount of its cases."""
    rng = random.Random(4)
    v_sync, t_sync, _ = wire(net)
    taken = await village.take(
        net.village,
        [_request(net.village, ITEMS[i % 4]) for i in range(24)],
    )
    ids = [t.case_id for t in taken]
    nodes = {"village": net.village, "township": net.township, "district": net.district}
    for round_ in range(8):
        day = date(2026, 11, 2) + timedelta(days=round_)
        for node in nodes.values():
            node.ledger.today = lambda day=day: day
        await v_sync.sync(5)
        await t_sync.sync(5)
        for case_id in rng.sample(ids, 12):
            where, action, payload = rng.choice(STEPS)
            if where == "village":
                try:
                    await village.command(net.village, case_id, action, payload)
                except IllegalTransition:
                    pass
            else:
                await act(nodes[where], [case_id], action, payload)
    [paused] = [t.case_id for t in await village.take(net.village, [_request(net.village, ITEMS[2])])]
    await v_sync.sync(5)
    for where, action in (("township", ACCEPTED), ("township", ESCALATED), ("district", ACCEPTED)):
        await t_sync.sync(5)
        assert (await act(nodes[where], [paused], action, {}))[0].ok
    assert (await act(net.district, [paused], PAUSED, {"step": "公示"}))[0].ok
    await t_sync.sync(5)
    await v_sync.sync(5)
    kinds = set()
    for node in nodes.values():
        kept = await _counts(node)
        assert kept == await _recounted(node)
        kinds |= {key[3] for key in kept[0]}
    assert kinds >= {"running", "paused", "done_on_time", "not_accepted", "withdrawn"}, kinds  # reached


async def test_the_district_decides_cases_while_their_withdrawals_are_pushed(net):
    """Two batches apply at once on PostgreSQL, each case changed by one of them at a time:
    staff at the district decide escalated cases while the township pushes the applicants'
    withdrawals of the same cases. Each case ends either decided (its withdrawal refused) or
    withdrawn (the decision refused), and the counts equal a recount."""
    v_sync, t_sync, _ = wire(net)
    taken = await village.take(net.village, [_request(net.village, ITEMS[2]) for _ in range(12)])
    ids = [t.case_id for t in taken]
    await v_sync.sync(5)
    for node, action in ((net.township, ACCEPTED), (net.township, ESCALATED), (net.district, ACCEPTED)):
        await t_sync.sync(5)
        assert all(outcome.ok for outcome in await act(node, ids, action, {}))
    await t_sync.sync(5)
    for case_id in ids:
        await village.command(net.village, case_id, CMD_WITHDRAW, {"reason": "不办了"})
    await v_sync.sync(5)  # the withdrawals wait at the township, on their way to the district
    decided, _ = await asyncio.gather(
        act(net.district, ids, DECIDED, {"approved": True, "reason": "ok"}), t_sync.sync(5)
    )
    for case_id, outcome in zip(ids, decided, strict=True):
        found = await show_case(net.district, case_id)
        assert found is not None
        ends = [e["type"] for e in found["events"] if e["type"] in (DECIDED, WITHDRAWN)]
        expected = ("approved", [DECIDED]) if outcome.ok else ("withdrawn", [WITHDRAWN])
        assert (found["status"], ends) == expected
    assert await _counts(net.district) == await _recounted(net.district)


async def test_lights_from_the_counts_are_the_cases_own_day_by_day(net):
    """The lights summed from the counts against each day equal the lights of the cases
    themselves on that day: a new day needs no recount."""
    v_sync, _, _ = wire(net)
    taken = await village.take(net.village, [_request(net.village, ITEMS[i % 2]) for i in range(6)])
    await v_sync.sync(5)
    net.township.ledger.today = lambda: date(2026, 11, 23)
    ids = [t.case_id for t in taken]
    await act(net.township, ids[:5], ACCEPTED, {})
    await act(net.township, ids[:1], DECIDED, {"approved": True, "reason": "ok"})
    for offset in range(0, 40, 3):
        day = date(2026, 11, 20) + timedelta(days=offset)
        report = await supervise(net.township, day)
        assert report["by_owner"] == {net.township.config.code: await _scanned(net.township, day)}


def _request(node: Node, item: str) -> Any:
    return village.check(node, Request(item, "张三", ID), {})


Counts = tuple[dict[Any, int], dict[Any, int], dict[Any, int], dict[str, int]]


async def _counts(node: Node) -> Counts:
    """The cases counted by owner, item, window and kind; the running ones by township and
    dates; by village and status; and each village's newest intake (kept per status row, only
    the largest matters)."""
    async with node.engine.connect() as conn:
        return await _read(conn)


async def _recounted(node: Node) -> Counts:
    async with node.engine.connect() as conn:
        transaction = await conn.begin()
        for statement in tallies.recount():
            await conn.execute(statement)
        found = await _read(conn)
        await transaction.rollback()
    return found


async def _read(conn: Any) -> Counts:
    by_case = {tuple(row[:-1]): row[-1] for row in await conn.execute(select(case_counts))}
    by_township = {tuple(row[:-1]): row[-1] for row in await conn.execute(select(township_counts))}
    by_village, newest = {}, {}
    for code, status, n, latest in await conn.execute(select(village_counts)):
        if n:
            by_village[code, status] = n
        newest[code] = max(newest.get(code, 0), latest)
    return by_case, by_township, by_village, newest


async def _scanned(node: Node, day: date) -> dict[str, int]:
    """The lights as a scan of every case counts them (supervision before relay/tallies.py)."""
    light = light_today(day).label("light")
    query = select(light, func.count()).where(cases.c.status != "withdrawn").group_by(light)
    async with node.engine.connect() as conn:
        return {name: n for name, n in await conn.execute(query)}
