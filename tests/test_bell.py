"""Long polls wake when this process commits to the feed, not by re-reading it over and over."""

import asyncio
import contextlib
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import event, text

from casework.lifecycle import ACCEPTED, CMD_WITHDRAW, ESCALATED, WITHDRAWN
from relay import bell as bell_module
from relay import service as service_module
from relay.bell import SAFETY_SECONDS, CommitListener
from relay.ledger import feed
from relay.node import open_node
from relay.service import RelayService
from relay.staff import act
from relay.upstream import LocalUpstream
from tests.conftest import OTHER_TOWNSHIP, TOWNSHIP, VILLAGE
from tests.test_relay_inprocess import intake, wire
from village_agent import service as village


def feed_reads_by_puller(monkeypatch) -> Counter[str]:
    """How many times the service reads each puller's feed from now on."""
    reads: Counter[str] = Counter()
    real_feed = service_module.feed

    async def counted(conn, puller, *args):
        reads[puller] += 1
        return await real_feed(conn, puller, *args)

    monkeypatch.setattr(service_module, "feed", counted)
    return reads


SIBLING = TOWNSHIP + "008"  # another village of the township


async def test_a_commit_wakes_only_the_pulls_of_the_feeds_it_adds_to(net, monkeypatch):
    """A window accepting a village's case wakes that village's waiting pull and not a sibling
    village's, which read its feed once and sleeps on (every decision at the hub woke all 30
    townships' waiting pulls to read their feeds for nothing)."""
    monkeypatch.setattr(bell_module, "SAFETY_SECONDS", 30.0)  # no re-read while this test runs
    v_sync, _, _ = wire(net)
    [case_id] = await intake(net.village)
    await v_sync.sync(5)
    township = RelayService(net.township.engine, net.township.ledger)
    await only_its_pull_wakes(township, net.township, case_id, VILLAGE, SIBLING, monkeypatch)


async def only_its_pull_wakes(service, node, case_id, ours, theirs, monkeypatch):
    """``ours`` and ``theirs`` wait on ``service`` for their feeds; accepting ``case_id`` (a
    case of ours) at ``node`` answers ours, and theirs has read its feed once and waits on."""
    head = (await service.pull(ours, 0, "", 1000, 0)).head
    reads = feed_reads_by_puller(monkeypatch)
    waiting = asyncio.create_task(service.pull(ours, head, "", 1000, 10_000))
    asleep = asyncio.create_task(service.pull(theirs, 0, "", 1000, 10_000))
    await asyncio.sleep(0.3)  # both polls have read their feeds and wait
    assert (await act(node, [case_id], ACCEPTED, {}))[0].ok
    page = await asyncio.wait_for(waiting, 5)
    await asyncio.sleep(0.2)
    assert [record.type for _, record in page.events] == [ACCEPTED]
    assert reads == {ours: 2, theirs: 1} and not asleep.done()
    asleep.cancel()  # and awaited: its connection goes back before the engine closes
    with contextlib.suppress(asyncio.CancelledError):
        await asleep


async def test_a_waiting_pull_wakes_on_a_commit_and_reads_the_feed_twice(net, monkeypatch):
    """A village's long poll at its township returns as soon as a window accepts its case in
    the township's process, having read the feed once before and once after."""
    v_sync, _, _ = wire(net)
    [case_id] = await intake(net.village)
    await v_sync.sync(5)
    township = RelayService(net.township.engine, net.township.ledger)
    first = await township.pull(VILLAGE, 0, "", 1000, 0)
    reads = feed_reads_by_puller(monkeypatch)
    waiting = asyncio.create_task(township.pull(VILLAGE, first.head, "", 1000, 10_000))
    await asyncio.sleep(0.3)  # the poll is waiting
    started = time.perf_counter()
    assert (await act(net.township, [case_id], ACCEPTED, {}))[0].ok
    page = await asyncio.wait_for(waiting, 5)
    assert [record.type for _, record in page.events] == [ACCEPTED]
    assert time.perf_counter() - started < SAFETY_SECONDS / 2
    assert reads == {VILLAGE: 2}


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
    reads = feed_reads_by_puller(monkeypatch)
    waiting = asyncio.create_task(township.pull(VILLAGE, first.head, "", 1000, 10_000))
    await asyncio.sleep(0.05)
    [case_id] = await intake(net.village)
    await v_sync.push_once()
    await asyncio.sleep(0.2)
    assert reads == {VILLAGE: 1} and not waiting.done()
    await village.command(net.village, case_id, CMD_WITHDRAW, {"reason": "不办了"})
    await v_sync.push_once()
    page = await asyncio.wait_for(waiting, SAFETY_SECONDS / 2)
    assert [record.type for _, record in page.events] == [WITHDRAWN] and reads == {VILLAGE: 2}


ON_POSTGRESQL = pytest.mark.parametrize("district_db", ["postgresql"], indirect=True)
LISTENERS = text(  # this database's only: tests in parallel each have one of their own
    "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database()"
)


@ON_POSTGRESQL
async def test_a_decision_in_one_process_wakes_a_pull_waiting_in_another(net):
    """The district's server and its staff command line are processes of their own on one
    database: a decision committed by one wakes a township's pull waiting in the other at
    the commit, also after the listener's connection was lost and made again."""
    case_ids = await escalated(net, 2)
    async with another_process(net) as (_, listener, worker):
        for case_id in case_ids:
            await asyncio.wait_for(listener.listening.wait(), 10)
            head = (await worker.pull(TOWNSHIP, 0, "", 1000, 0)).head
            waiting = asyncio.create_task(worker.pull(TOWNSHIP, head, "", 1000, 10_000))
            await asyncio.sleep(0.2)  # the poll has read the feed and waits
            started = time.perf_counter()
            assert (await act(net.district, [case_id], ACCEPTED, {}))[0].ok
            page = await asyncio.wait_for(waiting, 5)
            assert [(r.case_id, r.type) for _, r in page.events] == [(case_id, ACCEPTED)]
            assert time.perf_counter() - started < SAFETY_SECONDS / 2
            await _lose_listener(net.district.engine)  # as a database restart would


@ON_POSTGRESQL
async def test_a_decision_in_another_process_wakes_only_the_pull_of_its_township(net, monkeypatch):
    """A commit's notification names the feeds it adds to: the district deciding a case in
    one process wakes the waiting pull of the case's township in another, not another
    township's."""
    [case_id] = await escalated(net, 1)
    async with another_process(net) as (_, _, worker):
        await only_its_pull_wakes(worker, net.district, case_id, TOWNSHIP, OTHER_TOWNSHIP, monkeypatch)


@ON_POSTGRESQL
async def test_while_every_commit_is_heard_a_waiting_pull_does_not_reread_each_second(net, monkeypatch):
    """30 townships' waiting pulls read the hub's feed 30 times a second for nothing while it
    is quiet, unless the listener hears every commit: then a pull reads once and waits. Once
    the listener's connection is lost, the waiters read again at once."""
    reads = feed_reads_by_puller(monkeypatch)
    async with another_process(net) as (other, _, worker):
        waiting = asyncio.create_task(worker.pull(TOWNSHIP, 0, "", 1000, 10_000))
        await asyncio.sleep(2.5 * SAFETY_SECONDS)
        assert reads == {TOWNSHIP: 1} and not waiting.done()
        await _lose_listener(net.district.engine)
        assert reads[TOWNSHIP] >= 2 and other.ledger.bell.heard
        waiting.cancel()  # and awaited: its connection goes back before the engine closes
        with contextlib.suppress(asyncio.CancelledError):
            await waiting


async def escalated(net, n):
    """``n`` cases the township escalated to the district, which holds them."""
    v_sync, t_sync, _ = wire(net)
    case_ids = await intake(net.village, "twp-dibao-apply", n=n)
    await v_sync.sync(5)
    for case_id in case_ids:
        await act(net.township, [case_id], ACCEPTED, {})
        await act(net.township, [case_id], ESCALATED, {"opinion": "符合"})
    await t_sync.sync(5)
    return case_ids


@contextlib.asynccontextmanager
async def another_process(net):
    """The district's node opened again, with an engine and a bell of its own, a listener
    hearing its database's commits and a relay service, as the server has them: yields the
    node, the listener (listening) and the service."""
    async with open_node(net.district.home, net.district.config) as other:
        listener = CommitListener(other.engine, other.ledger.bell)
        listening = asyncio.create_task(listener.listen_forever())
        try:
            await asyncio.wait_for(listener.listening.wait(), 10)
            yield other, listener, RelayService(other.engine, other.ledger)
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening


async def _lose_listener(engine):
    """End the listener's connection from the server's side; return once it listens again."""
    async with engine.connect() as conn:
        lost = set((await conn.execute(LISTENERS)).scalars())
        await conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(:p)"),
            {"p": list(lost)},
        )
    for _ in range(500):
        async with engine.connect() as conn:
            now = set((await conn.execute(LISTENERS)).scalars())
        if now and not now & lost:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the listener did not listen again within 10 s")


async def test_a_pull_walks_only_what_its_feed_can_hand_out(net):
    """The feed query is answered from the feed index, which leaves out the events the puller
    sent up itself: a waiting pull reads its feed every second, and walking all a township's
    own events since its last answer grew with every batch it pushed."""
    statements: list[tuple[str, Any]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    engine = net.district.engine.sync_engine
    event.listen(engine, "before_cursor_execute", keep)
    try:
        async with net.district.engine.connect() as conn:
            await feed(conn, TOWNSHIP, 0, 10, 1 << 20)
            statement, parameters = next(s for s in statements if "via" in s[0])
            if conn.dialect.name == "postgresql":
                await conn.exec_driver_sql("SET enable_seqscan = off")
                plan = (await conn.exec_driver_sql("EXPLAIN " + statement, parameters)).scalars().all()
            else:
                found = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
                plan = [row[-1] for row in found]
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    assert any("ix_events_township_feedable" in line for line in plan), plan
