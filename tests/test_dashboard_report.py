"""The dashboard makes one supervision report for the pages asked for within a few seconds."""

import asyncio

from casework import Divisions
from district_node.dashboard import _app
from relay.node import open_node
from tests.conftest import DISTRICT, DIVISIONS, config


async def test_pages_share_one_report_until_it_is_old(tmp_path, monkeypatch):
    made = []

    async def supervise(node, today, listed):
        made.append(today)
        await asyncio.sleep(0.01)
        return {"made": len(made)}

    clock = [1000.0]
    monkeypatch.setattr(_app.supervision, "supervise", supervise)
    async with open_node(tmp_path, config(tmp_path, DISTRICT, "district")) as node:
        board = _app.Dashboard(node, Divisions.from_csv(DIVISIONS))
        board.clock = lambda: clock[0]
        reports = await asyncio.gather(*(board.report() for _ in range(5)))
        assert reports == [{"made": 1}] * 5 and len(made) == 1  # five pages at once: one report
        clock[0] += _app.REPORT_SECONDS - 1
        assert await board.report() == {"made": 1}
        clock[0] += 1
        assert await board.report() == {"made": 2}
