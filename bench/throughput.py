"""Throughput of one hop, beside the baseline fed the same serialized batches.

(a) drain: a village's backlog, taken while its township was unreachable, pushed into a
``township-node serve`` subprocess by ``Syncer.sync()`` in this process (what ``village-agent
sync`` runs). (b) relay: a township's outbox of relayed events pushed the same way into a
``district-node serve`` subprocess. Each is timed ``repeat`` times from the same saved state.

Both sides move the same batches: the sender's configured ``batch_size`` (the product's default,
1,000 events). The product keeps ``PUSH_WINDOW`` batches in flight; the baselines stay
stop-and-wait (one batch in flight), as a plain raw gRPC + sqlite3 relay would be.
"""

import shutil
import time
from pathlib import Path

from bench.baseline import PUSHES, baseline_seconds
from bench.report import Run, print_runs, print_target
from bench.workload import (
    DISTRICT,
    TOWNSHIP,
    VILLAGE,
    count_rows,
    node_db,
    outbox_records,
    push_batches,
    settle,
    take_cases,
)
from relay.node import Node, open_node
from relay.service import RelayService
from relay.sync import PUSH_WINDOW, Syncer, backlog
from relay.upstream import LocalUpstream
from tests.netkit import Network

DRAIN_TARGET_SECONDS = 2.0
RELAY_TARGET_RATE = 20_000
RELAY_TARGET_SHARE = 25.0


async def drain(root: Path, cases: int, repeat: int) -> None:
    """(a) Time a village's backlog of ``cases`` new cases draining into its township."""
    net = _network(root)
    async with open_node(net.home(VILLAGE)) as village:
        await take_cases(village, cases)  # the township is not started: unreachable
    product, baselines, size = await _compare(net, VILLAGE, TOWNSHIP, repeat)
    _expect(count_rows(node_db(net.home(TOWNSHIP)), "cases"), cases, "cases at the township")
    title = f"(a) drain: village -> township, backlog of {cases:,} cases, {size:,} events/batch"
    print_runs(title, "cases", product, baselines)
    print_target(f"drain < {DRAIN_TARGET_SECONDS:g} s", product.median < DRAIN_TARGET_SECONDS)


async def relay(root: Path, count: int, repeat: int) -> None:
    """(b) Time a township's outbox of ``count`` relayed events draining into the district."""
    net = _network(root)
    async with (
        open_node(net.home(VILLAGE)) as village,
        open_node(net.home(TOWNSHIP)) as township,
    ):
        await take_cases(village, count)
        to_township = LocalUpstream(RelayService(township.engine, township.ledger))
        await Syncer(village.engine, village.ledger, to_township).sync(give_up_after=120)
    product, baselines, size = await _compare(net, TOWNSHIP, DISTRICT, repeat)
    _expect(count_rows(node_db(net.home(DISTRICT)), "events"), count, "events at the district")
    title = f"(b) relay: township -> district, outbox of {count:,} events, {size:,} events/batch"
    share = print_runs(title, "events", product, baselines)
    print_target(f">= {RELAY_TARGET_RATE:,} events/s", product.rate >= RELAY_TARGET_RATE)
    print_target(f">= {RELAY_TARGET_SHARE:g} % of baseline", share >= RELAY_TARGET_SHARE)


def _network(root: Path) -> Network:
    """A district, township 500117001 and village 500117001005, made through their CLIs; no
    server runs yet."""
    root.mkdir(parents=True, exist_ok=True)
    net = Network(root)
    net.add(TOWNSHIP)
    net.add(VILLAGE)
    return net


async def _compare(net: Network, sender: str, upstream: str, repeat: int) -> tuple[Run, list[Run], int]:
    """Time ``sender`` pushing its whole outbox into the ``upstream`` server, and the baselines
    pushing the same batches (the sender's batch_size, also returned), ``repeat`` times each,
    interleaved so that a slow spell of the machine falls on both; every product run starts
    from the state the nodes are in now."""
    async with open_node(net.home(sender)) as node:
        records = await outbox_records(node)
        size = node.config.relay.batch_size
    batches = push_batches(sender, records, size)
    saved = net.root / "saved"
    for code in (DISTRICT, TOWNSHIP, VILLAGE):
        shutil.copytree(net.home(code), saved / code)
    # (seconds, the sender's CPU seconds) of each run; the servers are other processes
    product: list[tuple[float, float]] = []
    baselines: dict[str, list[tuple[float, float]]] = {mode: [] for mode in PUSHES}
    for attempt in range(repeat):
        for mode, runs in baselines.items():
            runs.append(
                await baseline_seconds(net.root / f"raw-{mode}-{attempt}.db", mode, batches, len(records))
            )
        for code in (DISTRICT, TOWNSHIP, VILLAGE):
            shutil.rmtree(net.home(code))
            shutil.copytree(saved / code, net.home(code))
        net.start(upstream)
        try:
            async with open_node(net.home(sender)) as node:
                product.append(await _timed_sync(node))
        finally:
            net.stop_all()
    label = f"product: Syncer.sync() -> {net.role[upstream]}-node serve, {PUSH_WINDOW} in flight"
    raw = [
        _run(f"baseline: raw gRPC {mode}, stop-and-wait", len(records), runs)
        for mode, runs in baselines.items()
    ]
    return _run(label, len(records), product), raw, size


def _run(label: str, count: int, timed: list[tuple[float, float]]) -> Run:
    return Run(label, count, tuple(s for s, _ in timed), tuple(c for _, c in timed))


async def _timed_sync(node: Node) -> tuple[float, float]:
    """Seconds for the node's Syncer.sync() to push its whole outbox upstream, and its CPU
    seconds (this process's)."""
    async with node.engine.connect() as conn:
        queued = await backlog(conn)
    syncer = node.syncer()
    settle()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        report = await syncer.sync(give_up_after=60)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await syncer.upstream.close()
    if report.pushed < queued:  # more is a batch sent again (a rewind), which the time includes
        raise AssertionError(f"events pushed: {report.pushed}, expected at least {queued}")
    _expect(report.backlog, 0, "backlog left")
    return seconds, cpu


def _expect(found: int, wanted: int, what: str) -> None:
    """Stop the benchmark if the network did not do what it was timed doing."""
    if found != wanted:
        raise AssertionError(f"{what}: {found}, expected {wanted}")
