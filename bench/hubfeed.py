"""The hub's ingest with a sender that costs little: ``python -m bench hubfeed``.

In the district simulation the hub shares two cores with 30 township processes and the
villages, so its burst measures the machine as much as the hub (bench/README.md). Here the
hub is the same ``district-node serve`` on PostgreSQL, made by ``district-node init``, with
its townships enrolled and holding their own certificates; but the townships are not
running. Each township's outbox (submissions relayed from one of its villages) is read
beforehand by the product's own ``Syncer`` into the very PushRequests it would send, audit
trail links included, and one process replays them over each township's own mutual-TLS
channel, ``PUSH_WINDOW`` batches in flight per township as the product sends them, all
townships at once. Every acknowledgement is checked (all applied, none refused) and timed.

Baselines, same run: the hub's code in-process, four townships at once (bench/hubapply.py),
and the same events written by raw asyncpg COPY (bench/district.py).
"""

import asyncio
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc

from bench import pgdb
from bench.district import INGEST_TARGET, _env, _pg_baseline, _rates, _wait_serving
from bench.hubapply import apart, apply_url
from bench.hubwatch import backend_pids, client_ports
from bench.procstat import MachineMeter, Meter
from bench.workload import take_cases
from casework import Divisions
from protos.v1 import relay_pb2 as pb
from relay import joining
from relay.audit import Links
from relay.console import create_node
from relay.node import Node, open_node
from relay.records import EventRecord, PushResult
from relay.service import RelayService
from relay.sync import PUSH_WINDOW, Syncer
from relay.tls import Credentials, channel_options
from relay.upstream import CHANNEL_OPTIONS, LocalUpstream
from relay.wire import push_request
from tests.netkit import free_port

PUSH = "/servicenet.v1.Relay/Push"
APPLY_EVENTS = 20_000  # the in-process baseline's events, as in the district simulation


class Recorder:
    """An upstream that keeps each push as the bytes the township would send, and acknowledges
    it all: the township's Syncer then reads its next batch (and audit links) as it would."""

    def __init__(self) -> None:
        self.requests: list[tuple[bytes, int, int]] = []  # (request, events, its last hop seq)

    async def push(
        self,
        sender: str,
        stream: int,
        envelopes: Sequence[tuple[int, EventRecord]],
        chain: Links | None = None,
    ) -> PushResult:
        if envelopes:
            request = push_request(sender, stream, envelopes, chain).SerializeToString()
            self.requests.append((request, len(envelopes), envelopes[-1][0]))
        return PushResult(envelopes[-1][0] if envelopes else 0, audit_upto=chain.last_seq if chain else 0)


@dataclass
class Fed:
    events: int
    rates: dict[str, float]  # as the district simulation's burst: rate_10_90, busy, whole
    cores: dict[str, float]  # hub, its backends, this process (the replayer)
    machine: float  # share of all cores busy
    requests: int
    resent: int


@dataclass
class _Progress:
    timeline: list[tuple[float, int]]  # (time, events acknowledged so far)
    acked: int = 0
    resent: int = 0  # pushes the hub answered short (one overtook its predecessor), sent again


async def hub_feed(url: str, divisions: Path, townships: int | None, count: int, root: Path) -> None:
    """Make the hub and the townships' pushes under ``root``, replay them, print the figures."""
    root.mkdir(parents=True, exist_ok=True)
    known = Divisions.from_csv(divisions)
    codes = sorted(d.code for d in known.of_level("township"))[:townships]
    villages = {t: min(d.code for d in known.children(t)) for t in codes}
    print(
        f"(f) hub fed: {len(codes)} townships, {count:,} events, hub on PostgreSQL; nodes in {root}",
        flush=True,
    )
    started = time.perf_counter()
    await pgdb.recreate(url)
    hub_home, address = root / known.district.code, f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "district_node", "init", "--home", str(hub_home)]
    command += ["--code", known.district.code, "--divisions", str(divisions), "--db", url]
    await asyncio.to_thread(subprocess.run, command, check=True, capture_output=True, env=_env(), timeout=120)
    requests = await _recorded(root, hub_home, address, villages, count)
    made = time.perf_counter() - started
    hub = _serve(hub_home, address, root / "hub.log")
    try:
        await _wait_serving(address, hub_home)
        fed = await _replay(
            url, hub.pid, address, known.district.code, {t: root / t for t in codes}, requests
        )
    finally:
        hub.terminate()
        with suppress(subprocess.TimeoutExpired):
            hub.wait(40)
        if hub.poll() is None:
            hub.kill()
    raw = await _pg_baseline(pgdb.asyncpg_dsn(url), 0, fed.events)
    _, together = await apart(apply_url(url), min(count, APPLY_EVENTS))
    per_1000 = together.cpu_seconds / together.events * 1_000_000
    verdict = "met" if fed.rates["rate_10_90"] >= INGEST_TARGET else "MISSED"
    cores = ", ".join(f"{name} {value:.2f}" for name, value in fed.cores.items())
    print(
        f"  set-up: hub, {len(codes)} townships and their pushes made in {made:.0f} s "
        f"({fed.requests} requests; {fed.resent} sent again, answered short)\n"
        f"  product: 10-90 % at {fed.rates['rate_10_90']:,.0f} events/s; busy rate {fed.rates['busy']:,.0f}; "
        f"whole {fed.rates['whole']:,.0f} events/s (first ack {fed.rates['first']:.2f} s, last "
        f"{fed.rates['last']:.2f} s after the first send)\n"
        f"  cores: {cores}; machine {fed.machine:.0%} busy\n"
        f"  baseline: the hub's RelayService.push in-process, 4 townships at once  "
        f"{together.rate:,.0f} events/s (the hub's CPU {per_1000:.0f} ms "
        f"a 1,000 events)\n"
        f"  baseline: raw asyncpg COPY, 1,000 events a transaction, stop-and-wait  "
        f"{raw['COPY']:,.0f} events/s\n"
        f"  target >= {INGEST_TARGET:,} events/s: {verdict}",
        flush=True,
    )


def _serve(home: Path, address: str, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "district_node", "serve", "--home", str(home), "--listen", address]
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=out, env=_env())


async def _recorded(
    root: Path, hub_home: Path, address: str, villages: dict[str, str], count: int
) -> dict[str, list[tuple[bytes, int, int]]]:
    """Per township: its village's share of ``count`` submissions relayed into it, and the
    pushes its Syncer makes of them, recorded."""
    from district_node.cli import _enroll
    from relay.pki import NODE_DAYS

    async with open_node(hub_home) as hub:
        bundles = {code: await _enroll(hub, code, NODE_DAYS) for pair in villages.items() for code in pair}
    share, extra = divmod(count, len(villages))
    requests = {}
    for n, (township, village) in enumerate(villages.items()):
        for code, upstream in ((township, address), (village, "127.0.0.1:9")):  # the village's: never dialled
            home = root / code
            home.mkdir()
            config = joining.config_from_bundle(home, bundles[code], upstream, None, "bench")
            joining.install_credentials(home, bundles[code], config.tls)
            await create_node(home, config)
        async with AsyncExitStack() as stack:
            below: Node = await stack.enter_async_context(open_node(root / village))
            above: Node = await stack.enter_async_context(open_node(root / township))
            await take_cases(below, share + (1 if n < extra else 0))
            await Syncer(
                below.engine, below.ledger, LocalUpstream(RelayService(above.engine, above.ledger))
            ).sync(give_up_after=120)
            recorder = Recorder()
            syncer = Syncer(above.engine, above.ledger, recorder)  # type: ignore[arg-type]  # push_once calls only push
            while (await syncer.push_once())[0]:
                pass
            requests[township] = recorder.requests
    return requests


async def _replay(
    url: str,
    hub_pid: int,
    address: str,
    district: str,
    homes: dict[str, Path],
    requests: dict[str, list[tuple[bytes, int, int]]],
) -> Fed:
    """Every township's pushes over its own channel at once; CPU metered meanwhile."""
    channels = {
        code: grpc.aio.secure_channel(
            address,
            Credentials.load(home).channel_credentials(),
            options=CHANNEL_OPTIONS + channel_options(district),
        )
        for code, home in homes.items()
    }
    activity = await asyncpg.connect(pgdb.asyncpg_dsn(url))
    try:
        for channel in channels.values():
            await asyncio.wait_for(channel.channel_ready(), 30)
        backends = await backend_pids(activity, pgdb.database_name(url), client_ports(hub_pid))
        meters = {
            "hub": Meter({hub_pid}).start(),
            "its backends": Meter(backends).start(),
            "replayer": Meter({os.getpid()}).start(),
        }
        machine = MachineMeter().start()
        started = time.perf_counter()
        progress = _Progress([(started, 0)])
        await asyncio.gather(*(_send(channels[t], requests[t], progress) for t in channels))
        backends |= await backend_pids(activity, pgdb.database_name(url), client_ports(hub_pid))
        spans = {
            name: meter.stop(backends if name == "its backends" else ()) for name, meter in meters.items()
        }
        busy = machine.stop()
        stored = int(await activity.fetchval("SELECT count(*) FROM events"))
        chained = int(await activity.fetchval("SELECT coalesce(sum(seq), 0) FROM audit_peers"))
        breaks = int(await activity.fetchval("SELECT count(*) FROM audit_breaks"))
    finally:
        await activity.close()
        for channel in channels.values():
            await channel.close()
    events = progress.acked
    if not events == stored == sum(n for pushes in requests.values() for _, n, _ in pushes):
        raise AssertionError(f"{events:,} events acknowledged, {stored:,} stored at the hub")
    if chained != events or breaks:  # a township's trail has a row for each event it relayed
        raise AssertionError(
            f"the townships' audit trails reached the hub to {chained:,} rows, {breaks} broken"
        )
    return Fed(
        events,
        _rates(progress.timeline, 0, events, started),
        {name: span.cores for name, span in spans.items()},
        busy,
        sum(map(len, requests.values())),
        progress.resent,
    )


async def _send(channel: grpc.aio.Channel, pushes: list[tuple[bytes, int, int]], progress: _Progress) -> None:
    """One township's pushes, PUSH_WINDOW in flight, each acknowledged whole. A push that
    overtook its predecessor by more than the hub holds it is answered short: like the
    product's forwarder, the township sends it again."""
    push = channel.unary_unary(PUSH, request_serializer=None, response_deserializer=pb.PushAck.FromString)
    inflight: deque[tuple[asyncio.Future[pb.PushAck], bytes, int, int]] = deque()

    async def settle_first() -> None:
        future, request, count, upto = inflight.popleft()
        ack = await future
        while ack.applied_upto < upto and not ack.rejections:
            progress.resent += 1
            ack = await push(request, timeout=120)
        if ack.applied_upto != upto or ack.rejections:
            refused = len(ack.rejections)
            raise AssertionError(
                f"the hub answered {ack.applied_upto} ({refused} refused) to a push up to {upto}"
            )
        progress.acked += count
        progress.timeline.append((time.perf_counter(), progress.acked))

    for request, count, upto in pushes:
        if len(inflight) == PUSH_WINDOW:
            await settle_first()
        inflight.append((asyncio.ensure_future(push(request, timeout=120)), request, count, upto))
    while inflight:
        await settle_first()
