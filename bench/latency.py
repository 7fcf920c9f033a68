"""(c) Latency from intake at the village to the case being visible at the district.

The product: ``district-node serve``, ``township-node serve`` and ``village-agent run`` as
subprocesses; this process takes cases one at a time on the village's database (as the agent's
own ``intake`` would) at a steady rate, and watches the district's database read-only for each
case to arrive. The baseline: the same pacing and watching over two baseline servers (see
bench.baseline), the village's durable write and push done here, each hop forwarding as soon as
it has committed, without polling.
"""

import asyncio
import math
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import replace
from pathlib import Path

import grpc

from bench.baseline import TIMEOUT, UNARY, Inbox, open_db, raw_server
from bench.workload import (
    DISTRICT,
    TOWNSHIP,
    VILLAGE,
    node_db,
    outbox_records,
    push_batches,
    settle,
    take_cases,
)
from relay.clock import uuid7
from relay.node import open_node
from relay.records import EventRecord
from relay.upstream import CHANNEL_OPTIONS
from tests.netkit import Network

POLL_SECONDS = 0.005  # how often the district's database is looked at
ARRIVAL_TIMEOUT = 30.0
TARGET_P99_MS = 500.0
TakeOne = Callable[[int], Awaitable[str]]


class Arrivals:
    """Watches a table of a SQLite database (read-only) for new case ids; notes when each
    was first seen."""

    def __init__(self, db: Path, table: str) -> None:
        self.conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        self.query = f"SELECT rowid, case_id FROM {table} WHERE rowid > ? ORDER BY rowid"
        self.last_rowid = 0
        self.seen: dict[str, float] = {}
        self.arrived = asyncio.Event()

    def poll(self) -> None:
        """Note every row added since the last poll."""
        rows = self.conn.execute(self.query, (self.last_rowid,)).fetchall()
        now = time.perf_counter()
        for rowid, case_id in rows:
            self.seen.setdefault(case_id, now)
            self.last_rowid = rowid
        if rows:
            self.arrived.set()

    async def watch(self) -> None:
        """Poll until cancelled."""
        try:
            while True:
                self.poll()
                await asyncio.sleep(POLL_SECONDS)
        finally:
            self.conn.close()

    async def wait_for(self, case_ids: list[str]) -> None:
        """Return once every case has been seen; TimeoutError after ARRIVAL_TIMEOUT."""
        async with asyncio.timeout(ARRIVAL_TIMEOUT):
            while not all(case_id in self.seen for case_id in case_ids):
                self.arrived.clear()
                await self.arrived.wait()


async def latency(root: Path, rate: float, seconds: float) -> None:
    """Take ``rate`` cases a second for ``seconds`` through the product, then the baseline."""
    count = max(1, round(rate * seconds))
    product, template = await _product(root, count, rate)
    baseline = await _baseline(root / "raw", count, rate, template)
    print(f"(c) latency: intake at the village -> case at the district, {count} cases at {rate:g}/s")
    for label, values in (
        ("product: village-agent run -> township -> district serve", product),
        ("baseline: raw gRPC, durable write at each tier, no polling", baseline),
    ):
        p50, p99 = _percentile(values, 50), _percentile(values, 99)
        print(f"  {label:<60} p50 {p50:6.0f} ms  p99 {p99:6.0f} ms  max {max(values):6.0f} ms")
    met = _percentile(product, 99) < TARGET_P99_MS
    print(f"  target p99 < {TARGET_P99_MS:g} ms: {'met' if met else 'MISSED'}")


async def _product(root: Path, count: int, rate: float) -> tuple[list[float], EventRecord]:
    """Latencies (ms) through the real network, and the event one intake made there."""
    root.mkdir(parents=True, exist_ok=True)
    net = Network(root)
    net.add(TOWNSHIP)
    net.add(VILLAGE)
    try:
        net.start(DISTRICT)
        net.start(TOWNSHIP)
        with _agent_running(net.home(VILLAGE)):
            async with open_node(net.home(VILLAGE)) as village:

                async def take_one(number: int) -> str:
                    """Take one request at the village; returns its case id."""
                    [case_id] = await take_cases(village, 1, first=number)
                    return case_id

                arrivals = Arrivals(node_db(net.home(DISTRICT)), "cases")
                latencies = await _paced(take_one, arrivals, count, rate)
                template = (await outbox_records(village))[0][1]
    finally:
        net.stop_all()
    return latencies, template


@contextmanager
def _agent_running(home: Path) -> Iterator[None]:
    """``village-agent run`` for the village in home, as a subprocess, stopped on exit."""
    command = [sys.executable, "-m", "village_agent", "run", "--home", str(home)]
    with (home.parent / f"{home.name}.log").open("ab") as log:
        agent = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        yield
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)


async def _baseline(folder: Path, count: int, rate: float, template: EventRecord) -> list[float]:
    """Latencies (ms) through two chained baseline servers, for events like ``template``."""
    folder.mkdir(parents=True, exist_ok=True)
    with (
        closing(open_db(folder / "village.db")) as village_db,
        raw_server(folder / "district.db") as district,
        raw_server(folder / "township.db", forward=district) as township,
    ):
        async with grpc.aio.insecure_channel(township, options=CHANNEL_OPTIONS) as channel:
            push = channel.unary_unary(UNARY)
            village = Inbox(village_db)

            async def take_one(number: int) -> str:
                """Write one event like ``template`` at the village, durably, and push it."""
                seq = number + 1
                event = replace(template, case_id=uuid7(), event_id=f"{VILLAGE}:{seq}", origin_seq=seq)
                [batch] = push_batches(VILLAGE, [(seq, event)], 1)
                village.apply(batch)
                await push(batch, timeout=TIMEOUT)
                return event.case_id

            return await _paced(take_one, Arrivals(folder / "district.db", "events"), count, rate)


async def _paced(take_one: TakeOne, arrivals: Arrivals, count: int, rate: float) -> list[float]:
    """Take one case to warm the links up, then ``count`` at ``rate`` a second; returns each
    one's milliseconds from the start of its intake to its arrival."""
    settle()
    watcher = asyncio.create_task(arrivals.watch())
    try:
        await arrivals.wait_for([await take_one(0)])
        taken: dict[str, float] = {}
        start = time.perf_counter()
        for number in range(1, count + 1):
            await asyncio.sleep(max(0.0, start + (number - 1) / rate - time.perf_counter()))
            began = time.perf_counter()
            taken[await take_one(number)] = began
        await arrivals.wait_for(list(taken))
    finally:
        watcher.cancel()
        with suppress(asyncio.CancelledError):
            await watcher
    return [1000 * (arrivals.seen[case_id] - began) for case_id, began in taken.items()]


def _percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
