"""Long polls wake when this process commits to the feed, not by re-reading it over and over."""

import asyncio
import time

from casework.lifecycle import ACCEPTED, CMD_WITHDRAW, WITHDRAWN
from relay import service as service_module
from relay.bell import SAFETY_SECONDS
from relay.service import RelayService
from relay.staff import act
from relay.upstream import LocalUpstream
from tests.conftest import VILLAGE
from tests.test_relay_inprocess import intake, wire
from village_agent import service as village


def count_feed_reads(monkeypatch):
    """How many times the service reads its feed from now on (one counter, in a list)."""
    reads = [0]
    real_feed = service_module.feed

    async def counted(*args):
        reads[0] += 1
        return await real_feed(*args)

    monkeypatch.setattr(service_module, "feed", counted)
    return reads


async def test_a_waiting_pull_wakes_on_a_commit_and_reads_the_feed_twice(net, monkeypatch):
    """A village's long poll at its township returns as soon as a window accepts its case in
    the township's process, having read the feed once before and once after."""
    v_sync, _, _ = wire(net)
    [case_id] = await intake(net.village)
    await v_sync.sync(5)
    township = RelayService(net.township.engine, net.township.ledger)
    first = await township.pull(VILLAGE, 0, "", 1000, 0)
    reads = count_feed_reads(monkeypatch)
    waiting = asyncio.create_task(township.pull(VILLAGE, first.head, "", 1000, 10_000))
    await asyncio.sleep(0.3)  # the poll is waiting
    started = time.perf_counter()
    assert (await act(net.township, [case_id], ACCEPTED, {}))[0].ok
    page = await asyncio.wait_for(waiting, 5)
    assert [record.type for _, record in page.events] == [ACCEPTED]
    assert time.perf_counter() - started < SAFETY_SECONDS / 2
    assert reads[0] == 2


async def test_a_closing_server_answers_waiting_pulls_at_once(net):
    township = RelayService(net.township.engine, net.township.ledger)
    waiting = asyncio.create_task(township.pull(VILLAGE, 0, "", 1000, 10_000))
    await asyncio.sleep(0.1)
    township.close()
    page = await asyncio.wait_for(waiting, SAFETY_SECONDS / 2)
    assert page.events == ()


async def test_submissions_from_below_wake_no_pull_and_a_command_does(net, monkeypatch):
    """A batch of submissions adds nothing to any feed pulled from the township: the waiting
    pull sleeps on; a withdrawal pushed next is answered here, and that wakes it."""
    v_sync, _, _ = wire(net)
    await intake(net.village)
    await v_sync.sync(5)
    township = RelayService(net.township.engine, net.township.ledger)
    v_sync.upstream = LocalUpstream(township)
    first = await township.pull(VILLAGE, 0, "", 1000, 0)
    reads = count_feed_reads(monkeypatch)
    waiting = asyncio.create_task(township.pull(VILLAGE, first.head, "", 1000, 10_000))
    await asyncio.sleep(0.05)
    [case_id] = await intake(net.village)
    await v_sync.push_once()
    await asyncio.sleep(0.2)
    assert reads[0] == 1 and not waiting.done()
    await village.command(net.village, case_id, CMD_WITHDRAW, {"reason": "不办了"})
    await v_sync.push_once()
    page = await asyncio.wait_for(waiting, SAFETY_SECONDS / 2)
    assert [record.type for _, record in page.events] == [WITHDRAWN] and reads[0] == 2
