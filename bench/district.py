"""(d) The district simulation: Hechuan's network on one machine, in simulated time.

The hub is a real ``district-node serve`` on PostgreSQL; each township a real
``township-node serve`` (its own home, SQLite database and port), reaching the hub through a
link the bench can cut (bench.linkproxy); the villages are real nodes in this process
(bench.villages), each with its own home and database, talking gRPC to their township. Nodes
are enrolled at the hub as ``district-node enroll`` does (its own function, in-process: 449
command runs would take minutes) and initialised from their bundles as ``init`` does.

Phases: idle (everything connected, no requests: the cost of standing by), the simulated
working day (Poisson requests at each village, village outages, one township cut off, the
windows working), settling (until every tier holds everything), then the ingest burst (all
township links cut while the villages queue ``burst`` requests into their townships, then
mended at once: the hub's ingest rate on PostgreSQL), and the baselines.
"""

import asyncio
import itertools
import json
import math
import os
import random
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterable
from contextlib import AsyncExitStack, closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench import pgdb
from bench.hubapply import Applied, Together, apart, apply_url
from bench.hubwatch import HubWatch, backend_pids, client_ports
from bench.latency import _baseline as raw_chain_latency
from bench.procstat import MachineMeter, Meter, Span, TreeMeter, memory, mib, parent_of
from bench.villages import SIM_DAY, Outage, SimClock, Tally, Village, desk, village_desk, village_outages
from bench.workload import outbox_records
from casework import Divisions, default_catalog
from relay import joining
from relay.bundle import Bundle
from relay.config import DB_FILE
from relay.console import create_node
from relay.joining import config_from_bundle
from relay.node import open_node
from tests.netkit import free_port, wait_serving

REPO = Path(__file__).resolve().parent.parent
DRAIN_TARGET = 10.0  # seconds: a township's hour-long outage drained after it returns
INGEST_TARGET = 20_000  # events/s at the hub on PostgreSQL
WAIT_LIMIT = 300.0  # seconds any one wait of the bench may take before it gives up
SATURATED = 0.9  # share of the machine's CPUs busy in the day above which figures are suspect
LOOP_LATE = 0.1  # seconds: the bench's event loop late by more than this at p99
APPLY_EVENTS = 20_000  # the in-process apply baseline's events
BURST_BACKOFF_MAX = 1.0  # township retry cap while the burst is queued (see _burst)
POSTGRES_ALL = "PostgreSQL, all its processes (any database's work)"


@dataclass
class Options:
    pg: str
    divisions: Path
    townships: int | None  # None: all
    villages: int | None  # None: all of the chosen townships'
    sim_hours: float
    speed: float
    per_day: tuple[float, float]  # requests per village per working day: low, high
    outages_per_day: float  # village outages per village per working day, on average
    outage_minutes: tuple[float, float]  # shortest, longest (simulated)
    cut: str | None  # township to cut off (default: one chosen at random)
    cut_at_hours: float
    cut_minutes: float
    cut_hold: float  # wall seconds the cut lasts at least
    pull_minutes: float  # 0: long poll
    desk_minutes: float  # 0: no windows
    burst: int
    idle_seconds: float
    baseline_cases: int
    seed: int


@dataclass
class Proc:
    """A server subprocess of the simulation."""

    name: str
    process: subprocess.Popen[bytes]
    address: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Phase:
    """CPU of each group over one phase, and how busy the machine was."""

    name: str
    spans: dict[str, Span] = field(default_factory=dict)
    machine: float = 0.0
    loop_delays: list[float] = field(default_factory=list)  # the bench's event loop, late by (s)


class LinkProxy:
    """The township uplinks (bench.linkproxy, a subprocess), cut and mended by name."""

    def __init__(self, target: str, names: Iterable[str], log: Path) -> None:
        command = [sys.executable, "-m", "bench.linkproxy", target, *names]
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err
            )
        assert self.process.stdout is not None
        self.ports: dict[str, int] = json.loads(self.process.stdout.readline())
        self.lock = asyncio.Lock()

    def _say(self, line: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{line}\n".encode())
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != b"ok":
            raise RuntimeError(f"link proxy did not do {line!r}")

    async def say(self, line: str) -> None:
        async with self.lock:
            await asyncio.to_thread(self._say, line)

    def close(self) -> None:
        with suppress(OSError, RuntimeError):
            self._say("quit")
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()


class DistrictSim:
    def __init__(self, opts: Options, root: Path) -> None:
        self.opts = opts
        self.root = root
        self.rng = random.Random(opts.seed)
        self.divisions = Divisions.from_csv(opts.divisions)
        self.district = self.divisions.district.code
        self.dsn = pgdb.asyncpg_dsn(opts.pg)
        self.database = pgdb.database_name(opts.pg)
        self.townships, self.village_codes = self._choose()
        self.cut_code = opts.cut or self.rng.choice(self.townships)
        if self.cut_code not in self.townships:
            raise SystemExit(f"--cut {self.cut_code} is not one of the simulated townships")
        self.hub: Proc | None = None
        self.township_procs: dict[str, Proc] = {}
        self.proxy: LinkProxy | None = None
        self.stack = AsyncExitStack()
        self.villages: dict[str, Village] = {}
        self.tally = Tally()
        self.watch = HubWatch(self.dsn)
        self.cut = Outage(
            self.cut_code, opts.cut_at_hours * 3600, opts.cut_at_hours * 3600 + opts.cut_minutes * 60
        )
        self.phases: list[Phase] = []
        self.notes: list[str] = []
        self.lines: list[str] = []
        self.background: list[asyncio.Task[Any]] = []
        self.hub_rss_start = 0
        self.activity: asyncpg.Connection | None = None
        self.postmaster = 0
        self.pg_started = ""
        self.pg_restarted = False
        self.setup_seconds: dict[str, float] = {}
        self.tails: list[asyncio.Task[None]] = []

    # -- choosing and building the network ---------------------------------------------------

    def _choose(self) -> tuple[list[str], list[str]]:
        townships = sorted(d.code for d in self.divisions.of_level("township"))
        if self.opts.townships is not None:
            townships = townships[: self.opts.townships]
        children = {t: sorted(d.code for d in self.divisions.children(t)) for t in townships}
        if self.opts.villages is None:
            return townships, [v for t in townships for v in children[t]]
        chosen: list[str] = []
        depth = 0
        while len(chosen) < self.opts.villages and depth < max(map(len, children.values()), default=0):
            for t in townships:
                if depth < len(children[t]) and len(chosen) < self.opts.villages:
                    chosen.append(children[t][depth])
            depth += 1
        return [t for t in townships if any(v.startswith(t) for v in chosen)], sorted(chosen)

    def home(self, code: str) -> Path:
        return self.root / code if len(code) < 12 else self.root / "villages" / code

    async def build(self) -> None:
        """The hub made by ``district-node init`` on PostgreSQL; townships and villages
        enrolled there and initialised from their bundles."""
        started = time.perf_counter()
        await pgdb.recreate(self.opts.pg)
        hub_home = self.home(self.district)
        command = [sys.executable, "-m", "district_node", "init", "--home", str(hub_home)]
        command += ["--code", self.district, "--divisions", str(self.opts.divisions), "--db", self.opts.pg]
        await asyncio.to_thread(
            subprocess.run, command, check=True, capture_output=True, env=_env(), timeout=120
        )
        bundles = await self._enroll_all(hub_home, [*self.townships, *self.village_codes])
        self.setup_seconds["hub init and enrollment"] = time.perf_counter() - started
        started = time.perf_counter()
        self.hub = self._spawn(self.district, "district_node", hub_home)
        await _wait_serving(self.hub.address, hub_home)
        self.proxy = LinkProxy(self.hub.address, self.townships, self.root / "linkproxy.log")
        for code in self.townships:
            upstream = f"127.0.0.1:{self.proxy.ports[code]}"
            await self._init(code, bundles[code], upstream, "镇街窗口")
        ports = {code: free_port() for code in self.townships}
        for code in self.village_codes:
            upstream = f"127.0.0.1:{ports[code[:9]]}"
            await self._init(code, bundles[code], upstream, "代办员")
        self.setup_seconds["township and village nodes initialised"] = time.perf_counter() - started
        started = time.perf_counter()
        for code in self.townships:
            self.township_procs[code] = self._spawn(code, "township_node", self.home(code), ports[code])
        await self._wait_townships()
        self.setup_seconds[f"{len(self.townships)} township-node serve up"] = time.perf_counter() - started

    async def _wait_townships(self) -> None:
        await asyncio.gather(
            *(_wait_serving(p.address, self.home(c)) for c, p in self.township_procs.items())
        )

    async def _enroll_all(self, hub_home: Path, codes: list[str]) -> dict[str, Bundle]:
        """Bundles as ``district-node enroll`` makes them: by its own function, in-process (449
        runs of the command would take minutes); by the command if it cannot be imported."""
        try:
            from district_node.cli import _enroll
            from relay.pki import NODE_DAYS
        except Exception as exc:  # a checkout mid-edit: the command line still works
            self.notes.append(
                f"district_node.cli not importable ({type(exc).__name__}): enrolled by the command"
            )
            return {code: await self._enroll_by_command(hub_home, code) for code in codes}
        async with open_node(hub_home) as hub:
            return {code: await _enroll(hub, code, NODE_DAYS) for code in codes}

    async def _enroll_by_command(self, hub_home: Path, code: str) -> Bundle:
        path = self.root / "bundles" / f"{code}.bundle"
        path.parent.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "district_node", "enroll", "--home", str(hub_home)]
        command += ["--code", code, "--out", str(path)]
        await asyncio.to_thread(
            subprocess.run, command, check=True, capture_output=True, env=_env(), timeout=120
        )
        return Bundle.read(path, "township" if len(code) == 9 else "village")

    async def _init(self, code: str, bundle: Bundle, upstream: str, operator: str) -> None:
        """What ``township-node init`` / ``village-agent init`` do with a bundle: the config,
        the bundle's key and certificates kept in the home (where the checkout has mutual TLS),
        the database."""
        home = self.home(code)
        home.mkdir(parents=True)
        config = config_from_bundle(home, bundle, upstream, None, operator)
        install = getattr(joining, "install_credentials", None)
        if install is not None:
            install(home, bundle, config.tls)
        await create_node(home, config)

    def _spawn(self, code: str, module: str, home: Path, port: int | None = None) -> Proc:
        address = f"127.0.0.1:{port or free_port()}"
        command = [sys.executable, "-m", module, "serve", "--home", str(home), "--listen", address]
        with (self.root / f"{code}.log").open("ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=log, env=_env())
        return Proc(code, process, address)

    async def open_villages(self) -> None:
        items = default_catalog().takeable_at("village")
        until = self.opts.sim_hours * 3600
        low, high = self.opts.outage_minutes
        for code in self.village_codes:
            node = await self.stack.enter_async_context(open_node(self.home(code)))
            rng = random.Random(self.rng.random())
            per_day = rng.uniform(*self.opts.per_day)
            outages = village_outages(code, rng, self.opts.outages_per_day, until, low * 60, high * 60)
            self.villages[code] = Village(node, self.clock, self.tally, rng, items, per_day, outages)

    # -- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        opts = self.opts
        self.clock = SimClock(opts.speed)
        try:
            await self.build()
            await self.open_villages()
            await self.watch.open()
            self.pg_started = await _postmaster_started(self.dsn)
            self.background.append(asyncio.create_task(self.watch.run()))
            assert self.hub is not None
            self.hub_rss_start = memory(self.hub.pid)[0]
            for village in self.villages.values():
                self.background.append(asyncio.create_task(village.forward()))
                self.background.append(asyncio.create_task(village.syncer.heartbeat_forever()))
                if opts.pull_minutes == 0:
                    self.background.append(asyncio.create_task(village.syncer.pull_forever()))
            await self._measure("idle", asyncio.sleep(opts.idle_seconds))
            await self._measure("simulated day", self.simulate())
            await self._measure("after the day", self.after_day())
            if opts.burst:
                await self._burst()
            await self._final_counts()
        finally:
            await self.shutdown()
        await self._baselines()
        self.report()

    async def simulate(self) -> None:
        """The working day: requests, pulls and windows until ``sim_hours``; the outages (and
        the township cut) start in it and are left running, as ``self.tails``, for after_day."""
        opts = self.opts
        self.clock = SimClock(opts.speed)
        for village in self.villages.values():
            village.clock = self.clock
        until = opts.sim_hours * 3600
        self.tails = [
            asyncio.create_task(self._village_outage(v, o)) for v in self.villages.values() for o in v.outages
        ]
        self.tails.append(asyncio.create_task(self._township_cut()))
        work: list[Awaitable[Any]] = [v.arrivals(until) for v in self.villages.values()]
        if opts.pull_minutes > 0:
            work += [v.pulls(opts.pull_minutes * 60, until) for v in self.villages.values()]
        if opts.desk_minutes > 0:
            hub_node = await self.stack.enter_async_context(open_node(self.home(self.district)))
            nodes = [hub_node] + [
                await self.stack.enter_async_context(open_node(self.home(code))) for code in self.townships
            ]
            rng = random.Random(opts.seed + 1)
            every = opts.desk_minutes * 60
            work += [
                desk(node, self.clock, every, until, random.Random(rng.random()), self.tally)
                for node in nodes
            ]
            work += [
                village_desk(v, every, until, random.Random(rng.random()), self.tally)
                for v in self.villages.values()
            ]
        progress = asyncio.create_task(self._progress())
        try:
            await asyncio.gather(*work)
        finally:
            progress.cancel()
            with suppress(asyncio.CancelledError):
                await progress

    async def after_day(self) -> None:
        """The outages still running when the day ended, and the township cut, to their end
        and until the hub has their backlogs; then until every tier holds everything."""
        started = time.perf_counter()
        await asyncio.gather(*self.tails)
        tails = time.perf_counter() - started
        settle = await self.settle()
        self.notes.append(
            f"after the day: {tails:.1f} s until the last outage ended and drained, "
            f"then settled in {settle:.1f} s"
        )

    async def _village_outage(self, village: Village, outage: Outage) -> None:
        await self.clock.until(outage.start)
        village.switch.down = True
        outage.began = time.perf_counter()
        await self.clock.until(outage.end)
        outage.expected = self.tally.made[village.code]
        base = self.watch.by_origin[village.code]
        outage.backlog = outage.expected - base
        village.switch.down = False
        outage.returned = time.perf_counter()
        if outage.backlog <= 0:
            outage.first_seen = outage.drained = outage.returned
            return
        code = village.code
        outage.first_seen = await self.watch.until(lambda: self.watch.by_origin[code] > base, WAIT_LIMIT)
        outage.drained = await self.watch.until(
            lambda: self.watch.by_origin[code] >= outage.expected, WAIT_LIMIT
        )

    async def _township_cut(self) -> None:
        """Cut the township's uplink for cut_minutes of simulated time (and at least cut_hold
        seconds of wall time, so that its forwarder backs off as far as it would in an hour),
        then time how long the hub takes to hold everything the township had queued."""
        cut, proxy = self.cut, self.proxy
        assert proxy is not None
        await self.clock.until(cut.start)
        await proxy.say(f"cut {cut.code}")
        cut.began = time.perf_counter()
        await self.clock.until(cut.end)
        await asyncio.sleep(max(0.0, cut.began + self.opts.cut_hold - time.perf_counter()))
        cut.expected = _outbox_head(self.home(cut.code))
        await self.watch.fresh()
        base = self.watch.marks.get(cut.code, 0)
        cut.backlog = cut.expected - base
        await proxy.say(f"mend {cut.code}")
        cut.returned = time.perf_counter()
        cut.end = max(cut.end, self.clock.now())
        if cut.backlog <= 0:  # nothing to drain (a cut shorter than the gap between requests)
            return
        code = cut.code
        cut.first_seen = await self.watch.until(lambda: self.watch.marks.get(code, 0) > base, WAIT_LIMIT)
        cut.drained = await self.watch.until(
            lambda: self.watch.marks.get(code, 0) >= cut.expected, WAIT_LIMIT
        )

    async def _progress(self) -> None:
        hour = 3600.0
        at = hour
        assert self.hub is not None
        last_cpu, last_wall = Meter([self.hub.pid]).start(), time.perf_counter()
        while True:
            await self.clock.until(at)
            span = last_cpu.stop()
            down = sum(1 for v in self.villages.values() if v.switch.down)
            cut = "cut" if self.cut.began and not self.cut.returned else "up"
            print(
                f"  sim {at / hour:4.1f} h ({time.perf_counter() - last_wall:4.1f} s wall): "
                f"taken {len(self.tally.taken):,}, seen at hub {len(self.watch.seen):,}, "
                f"villages offline {down}, township {self.cut.code} {cut}, hub {span.cores:.0%} of a core",
                flush=True,
            )
            last_cpu, last_wall = Meter([self.hub.pid]).start(), time.perf_counter()
            at += hour

    async def settle(self) -> float:
        """Wake every forwarder and wait until every tier holds everything; seconds waited."""
        started = time.perf_counter()
        for village in self.villages.values():
            village.wake.set()
        deadline = started + WAIT_LIMIT
        while time.perf_counter() < deadline:
            await self.watch.fresh()
            if len(self.watch.seen) >= len(self.tally.taken) and await self._all_relayed():
                return time.perf_counter() - started
            await asyncio.sleep(0.2)
        raise AssertionError(f"the network did not settle within {WAIT_LIMIT:.0f} s")

    async def _all_relayed(self) -> bool:
        for village in self.villages.values():
            if await village.backlog():
                return False
        return all(_outbox_head(self.home(t)) <= self.watch.marks.get(t, 0) for t in self.townships)

    async def _measure(self, name: str, work: Awaitable[Any]) -> Phase:
        """Run ``work`` with the CPU of every group metered; keeps the phase."""
        groups = self._groups()
        groups["hub's PostgreSQL backends"] = await self._hub_backends()
        meters = {group: Meter(pids).start() for group, pids in groups.items()}
        if self.postmaster:
            meters[POSTGRES_ALL] = TreeMeter(self.postmaster).start()
        machine = MachineMeter().start()
        delays: list[float] = []
        helpers = [asyncio.create_task(self._sample(meters)), asyncio.create_task(_loop_delays(delays))]
        try:
            await work
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        phase = Phase(name, {group: meter.stop() for group, meter in meters.items()}, machine.stop(), delays)
        self.phases.append(phase)
        return phase

    async def _sample(self, meters: dict[str, Meter]) -> None:
        """Keep the meters' readings fresh and take in new PostgreSQL backends of the hub."""
        while True:
            await asyncio.sleep(1.0)
            extra = await self._hub_backends()
            for group, meter in meters.items():
                meter.sample(extra if group == "hub's PostgreSQL backends" else ())

    def _groups(self) -> dict[str, set[int]]:
        assert self.hub is not None and self.proxy is not None
        return {
            "hub (district-node serve)": {self.hub.pid},
            "hub's PostgreSQL backends": set(),
            f"{len(self.townships)} township-node serve": {p.pid for p in self.township_procs.values()},
            f"bench process ({len(self.villages)} villages, desks, watcher)": {os.getpid()},
            "link proxy": {self.proxy.process.pid},
        }

    async def _hub_backends(self) -> set[int]:
        """The PostgreSQL backends serving the hub process (its connection pool)."""
        assert self.hub is not None
        if self.activity is None:
            self.activity = await asyncpg.connect(
                self.dsn, server_settings={"application_name": "bench-meter"}
            )
            with suppress(OSError, ValueError):  # the server runs on this machine: meter it whole
                self.postmaster = parent_of(int(await self.activity.fetchval("SELECT pg_backend_pid()")))
        ports = client_ports(self.hub.pid)
        try:
            return await backend_pids(self.activity, self.database, ports)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            with suppress(Exception):  # PostgreSQL restarted under the run, say: next time
                self.activity.terminate()
            self.activity = None
            return set()

    # -- the ingest burst ------------------------------------------------------------------

    async def _burst(self) -> None:
        """Every township link cut; the villages take ``burst`` requests (one transaction per
        village) and push them into their townships. The townships are restarted with a retry
        cap of BURST_BACKOFF_MAX s (node.toml), the links still cut; then the hub is paused
        (SIGSTOP) and the links mended: within the cap every township's next push waits at the
        paused hub (the kernel accepts the connections), so that when the hub resumes (SIGCONT)
        all of them push at once, with no retry backoff in the way. The hub stays paused a few
        seconds only, well inside a push's deadline: a push that timed out there would be sent
        again while the hub still applies the first. The hub's ingest rate is read from its
        events' positions every 50 ms."""
        opts, proxy, hub = self.opts, self.proxy, self.hub
        assert proxy is not None and hub is not None
        count = opts.burst
        await proxy.say("cut all")
        started = time.perf_counter()
        villages = list(self.villages.values())
        share, extra = divmod(count, len(villages))
        for n, village in enumerate(villages):
            await village.take(share + (1 if n < extra else 0))
        taken = time.perf_counter() - started
        await _until_empty(villages)
        filled = time.perf_counter() - started
        self.notes.append(
            f"burst: {count:,} requests taken at the villages in {taken:.1f} s, in their townships "
            f"{filled:.1f} s after the first (village -> township at {count / filled:,.0f} cases/s overall)"
        )
        restarted = time.perf_counter()
        await self._restart_townships({"backoff_max_seconds": BURST_BACKOFF_MAX})
        self.notes.append(
            f"burst: {len(self.townships)} townships restarted in {time.perf_counter() - restarted:.1f} s"
        )
        self.watch.light = True
        await self.watch.fresh()
        await self.watch.fresh()
        start = self.watch.head
        hub.process.send_signal(signal.SIGSTOP)
        try:
            await proxy.say("mend all")
            # Every township's retry (at most BURST_BACKOFF_MAX s away, and the channel's own
            # reconnect as long) is on its way.
            await asyncio.sleep(2 * BURST_BACKOFF_MAX + 1.0)
        finally:
            self.watch.timeline.clear()
            self.watch.interval = 0.05
            resumed = 0.0

        async def ingest() -> None:
            nonlocal resumed
            hub.process.send_signal(signal.SIGCONT)
            resumed = time.perf_counter()
            done = await self.watch.until(lambda: self.watch.head - start >= count, WAIT_LIMIT)
            if not done:
                raise AssertionError(f"the hub did not take the burst within {WAIT_LIMIT:.0f} s")

        try:
            phase = await self._measure("ingest burst", ingest())
        finally:
            hub.process.send_signal(signal.SIGCONT)
        self.watch.light = False
        self.watch.interval = 0.02
        self.watch.skip_to_head()
        self.burst_result = _rates(self.watch.timeline, start, count, resumed)
        self.burst_result["cores"] = phase.spans["hub (district-node serve)"].cores
        self.burst_start = start

    async def _restart_townships(self, relay_settings: dict[str, float]) -> None:
        for proc in self.township_procs.values():
            proc.process.send_signal(signal.SIGTERM)
        for code, proc in self.township_procs.items():
            proc.process.wait(60)
            _set_relay(self.home(code) / "node.toml", relay_settings)
        port = {code: int(p.address.rsplit(":", 1)[1]) for code, p in self.township_procs.items()}
        for code in self.townships:
            self.township_procs[code] = self._spawn(code, "township_node", self.home(code), port[code])
        await self._wait_townships()

    # -- counting, stopping, baselines -------------------------------------------------------

    async def _final_counts(self) -> None:
        if self.opts.burst:
            await self.settle_counts()
        self.pg_restarted = await _postmaster_started(self.dsn) != self.pg_started
        conn = await asyncpg.connect(self.dsn)
        try:
            self.hub_cases = int(await conn.fetchval("SELECT count(*) FROM cases"))
            self.hub_events = int(await conn.fetchval("SELECT count(*) FROM events"))
            rows = await conn.fetch("SELECT status, count(*) FROM cases GROUP BY status ORDER BY 2 DESC")
            self.hub_status = {row[0]: int(row[1]) for row in rows}
            self.hub_dead = int(await conn.fetchval("SELECT count(*) FROM dead_letters"))
        finally:
            await conn.close()
        self.tier_cases = {
            "villages": sum(_count(self.home(v), "cases") for v in self.village_codes),
            "townships": sum(_count(self.home(t), "cases") for t in self.townships),
        }
        self.tier_events = {
            "villages": sum(_count(self.home(v), "events") for v in self.village_codes),
            "townships": sum(_count(self.home(t), "events") for t in self.townships),
        }
        self.tier_dead = {
            "villages": sum(_count(self.home(v), "dead_letters") for v in self.village_codes),
            "townships": sum(_count(self.home(t), "dead_letters") for t in self.townships),
        }
        assert self.hub is not None
        self.hub_memory = memory(self.hub.pid)
        self.township_memory = [memory(p.pid) for p in self.township_procs.values()]
        self.bench_memory = memory(os.getpid())

    async def settle_counts(self) -> None:
        """After the burst: wait until the hub holds every case taken."""
        conn = await asyncpg.connect(self.dsn)
        try:
            deadline = time.perf_counter() + WAIT_LIMIT
            while int(await conn.fetchval("SELECT count(*) FROM cases")) < len(self.tally.taken):
                if time.perf_counter() > deadline:
                    raise AssertionError("the hub did not receive every case after the burst")
                await asyncio.sleep(0.5)
        finally:
            await conn.close()

    async def shutdown(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        for village in self.villages.values():
            with suppress(Exception):
                await village.switch.close()
        with suppress(Exception):
            await self.stack.aclose()
        await self.watch.close()
        if self.activity is not None:
            await self.activity.close()
        for proc in [*self.township_procs.values(), *([self.hub] if self.hub else [])]:
            if proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        for proc in [*self.township_procs.values(), *([self.hub] if self.hub else [])]:
            try:
                proc.process.wait(40)
            except subprocess.TimeoutExpired:
                self.notes.append(f"{proc.name} did not stop within 40 s of SIGTERM: killed")
                proc.process.kill()
        if self.proxy is not None:
            self.proxy.close()

    async def _baselines(self) -> None:
        """The raw gRPC chain's latency (bench.latency's baseline) and raw asyncpg writes of
        the burst's events into a copy of the hub's events table."""
        opts = self.opts
        template = None
        for village in self.village_codes:
            async with open_node(self.home(village)) as node:
                queued = await outbox_records(node)
            if queued:
                template = queued[0][1]
                break
        self.baseline_lag: list[float] = []
        if template is not None:
            self.baseline_lag = await raw_chain_latency(
                self.root / "raw-chain", opts.baseline_cases, 8.0, template
            )
        self.baseline_rates: dict[str, float] = {}
        self.applied: Applied | None = None
        self.together: Together | None = None
        if opts.burst:
            self.baseline_rates = await _pg_baseline(self.dsn, self.burst_start, opts.burst)
            self.applied, self.together = await apart(apply_url(opts.pg), min(opts.burst, APPLY_EVENTS))

    # -- the report ------------------------------------------------------------------------

    def report(self) -> None:
        opts = self.opts
        out: list[str] = []
        say = out.append
        villages = list(self.villages.values())
        per_day = sum(v.rate for v in villages) * SIM_DAY
        say(
            f"(d) district: {self.divisions.district.name} {self.district}, {len(self.townships)} townships, "
            f"{len(villages)} villages, {opts.sim_hours:g} simulated hours at {opts.speed:g}x "
            f"({opts.sim_hours * 3600 / opts.speed:.0f} s), hub on PostgreSQL"
        )
        setup = ", ".join(f"{k} {v:.0f} s" for k, v in self.setup_seconds.items())
        say(f"  set-up: {setup}")
        outages = [o for v in villages for o in v.outages]
        say(
            f"  workload: {len(self.tally.taken) - (opts.burst or 0):,} requests in the day "
            f"({per_day:,.0f} a working day network-wide, "
            f"{opts.per_day[0]:g}-{opts.per_day[1]:g} per village), "
            f"{self.tally.commands:,} village commands, {self.tally.desk_actions:,} window actions "
            f"({self.tally.desk_failures} refused); {len(outages)} village outages "
            f"({opts.outage_minutes[0]:g}-{opts.outage_minutes[1]:g} sim min); pulls "
            + (f"every {opts.pull_minutes:g} sim min" if opts.pull_minutes else "by long poll")
        )
        say("  cases at each tier (after settling):")
        say(
            f"    taken by the bench {len(self.tally.taken):,} | villages {self.tier_cases['villages']:,} | "
            f"townships {self.tier_cases['townships']:,} | hub {self.hub_cases:,}   "
            + (
                "all equal"
                if len({len(self.tally.taken), *self.tier_cases.values(), self.hub_cases}) == 1
                else "DIFFER"
            )
        )
        say(
            f"    events: villages {self.tier_events['villages']:,}, "
            f"townships {self.tier_events['townships']:,}, hub {self.hub_events:,}; "
            f"dead letters: villages {self.tier_dead['villages']}, "
            f"townships {self.tier_dead['townships']}, hub {self.hub_dead}"
        )
        say("    hub by status: " + ", ".join(f"{k} {v:,}" for k, v in self.hub_status.items()))
        self._report_lag(say)
        self._report_outages(say, outages)
        self._report_burst(say)
        self._report_cpu(say)
        if self.watch.reconnects:
            self.notes.append(
                f"the bench lost its connection to PostgreSQL {self.watch.reconnects} times "
                f"({self.watch.last_error})"
            )
        day = next((phase for phase in self.phases if phase.name == "simulated day"), None)
        if day is not None and (day.machine > SATURATED or _pct(day.loop_delays or [0.0], 99) > LOOP_LATE):
            say(
                f"  WARNING: the machine was {day.machine:.0%} busy in the day (bench event loop p99 "
                f"{1000 * _pct(day.loop_delays or [0.0], 99):.0f} ms late): lag and drain figures measure "
                "the machine more than the product; run slower (--speed)"
            )
        if self.pg_restarted:
            say("  WARNING: PostgreSQL restarted during the run (someone else's test?): figures disturbed")
        for note in self.notes:
            say(f"  note: {note}")
        if self.tally.errors:
            say(f"  ERRORS raised by the product: {len(self.tally.errors)}, first:")
            for error in self.tally.errors[:3]:
                say(f"    {error}")
        text = "\n".join(out)
        print(text)
        (self.root / "report.txt").write_text(text + "\n", encoding="utf-8")

    def _report_lag(self, say: Any) -> None:
        """Lag of every case seen at the hub; "through an outage" if an outage of its village
        or township lasted, or had not drained yet, at any time between intake and arrival.
        Every case's figures go to lags.csv in the run's folder."""
        clean: list[float] = []
        dirty: list[float] = []
        cut = self.cut
        rows = ["case_id,village,intake_s,lag_ms,through_outage"]
        for case_id, (began, code) in self.tally.taken.items():
            seen = self.watch.seen.get(case_id)
            if seen is None:
                continue
            village = self.villages[code]
            through = village.down_at(began, seen) or (
                code.startswith(cut.code) and cut.overlaps(began, seen)
            )
            (dirty if through else clean).append(1000 * (seen - began))
            intake = began - self.clock.started
            rows.append(f"{case_id},{code},{intake:.3f},{1000 * (seen - began):.1f},{int(through)}")
        (self.root / "lags.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        say("  lag, intake at the village -> case visible at the hub (watched every 20 ms):")
        if clean:
            say(
                f"    product, links up ({len(clean):,} cases)   p50 {_pct(clean, 50):7,.0f} ms  "
                f"p99 {_pct(clean, 99):7,.0f} ms  max {max(clean):7,.0f} ms"
            )
        if dirty:
            say(
                f"    product, through an outage ({len(dirty):,})   p50 {_pct(dirty, 50) / 1000:7,.1f} s   "
                f"p99 {_pct(dirty, 99) / 1000:7,.1f} s   max {max(dirty) / 1000:7,.1f} s"
            )
        base = self.baseline_lag or [math.nan]
        say(
            f"    baseline: raw gRPC chain, durable write at each tier, no polling ({len(base)} at 8/s)  "
            f"p50 {_pct(base, 50):5.0f} ms  p99 {_pct(base, 99):5.0f} ms"
        )

    def _report_outages(self, say: Any, outages: list[Outage]) -> None:
        done = [o for o in outages if o.returned]
        waited = [o for o in done if o.backlog > 0]
        say(f"  village outages: {len(done)} ended, {len(waited)} with something queued:")
        if waited:
            drains = [o.drained - o.returned for o in waited if o.drained]
            firsts = [o.first_seen - o.returned for o in waited if o.first_seen]
            lengths = [(o.end - o.start) / 60 for o in done]
            say(
                f"    length {min(lengths):.0f}-{max(lengths):.0f} sim min; backlog "
                f"{min(o.backlog for o in waited)}-{max(o.backlog for o in waited)} events"
            )
            if drains:
                say(
                    f"    drained at the hub after the return: p50 {_pct(drains, 50):5.1f} s  "
                    f"p99 {_pct(drains, 99):5.1f} s  max {max(drains):5.1f} s  "
                    f"(first event there: p50 {_pct(firsts, 50):.1f} s, max {max(firsts):.1f} s: "
                    "the retry wait)"
                )
            missing = len(waited) - len(drains)
            if missing:
                say(f"    {missing} NOT drained within {WAIT_LIMIT:.0f} s")
        cut = self.cut
        held = cut.returned - cut.began
        say(
            f"  township {cut.code} cut off from {cut.start / 3600:.1f} h for "
            f"{self.opts.cut_minutes:g} sim min of requests, held {held:.0f} s wall "
            f"(= {held * self.opts.speed / 60:.0f} sim min); "
            f"{cut.backlog:,} events queued at the township"
        )
        if cut.drained:
            drain = cut.drained - cut.returned
            copy = self.baseline_rates.get("COPY")
            base = (
                f"; baseline: that backlog by raw asyncpg COPY {1000 * cut.backlog / copy:.0f} ms"
                if copy
                else ""
            )
            say(
                f"    drained at the hub {drain:.1f} s after the link returned (first batch after "
                f"{cut.first_seen - cut.returned:.1f} s: the retry wait){base}"
            )
            say(f"    target < {DRAIN_TARGET:g} s: {'met' if drain < DRAIN_TARGET else 'MISSED'}")
        elif cut.backlog <= 0:
            say("    nothing was queued: no drain to time (make the cut longer)")
        else:
            say(f"    NOT drained within {WAIT_LIMIT:.0f} s")

    def _report_burst(self, say: Any) -> None:
        if not self.opts.burst:
            return
        r = self.burst_result
        say(
            f"  hub ingest, {self.opts.burst:,} events from {len(self.townships)} townships at once "
            f"(hub {r['cores']:.0%} of a core):"
        )
        say(
            f"    product: 10-90 % of the burst at {r['rate_10_90']:,.0f} events/s; busy rate "
            f"{r['busy']:,.0f} events/s; whole burst {r['whole']:,.0f} events/s "
            f"(first event {r['first']:.1f} s after the hub resumed, last {r['last']:.1f} s)"
        )
        if self.applied is not None:
            a = self.applied
            say(
                f"    baseline: the hub's RelayService.push in-process, nothing else running, stop-and-wait  "
                f"{a.rate:,.0f} events/s ({1000 * a.seconds / (a.events / 1000):.0f} ms a 1,000-event batch: "
                f"the hub's CPU {1000 * a.cpu_seconds / (a.events / 1000):.0f} ms, the rest waiting on "
                f"PostgreSQL; SQLAlchemy's statements {1000 * a.in_sql / (a.events / 1000):.0f} ms, "
                "COPY and commits not among them)"
            )
            top = sorted(a.statements.items(), key=lambda item: -item[1][0])[:3]
            for text, (spent, _) in top:
                say(f"      {1000 * spent / (a.events / 1000):6.1f} ms a batch  {text}")
        if self.together is not None:
            g = self.together
            say(
                f"    baseline: the same, 4 townships pushing at once  {g.rate:,.0f} events/s "
                f"(the hub's CPU {1000 * g.cpu_seconds / (g.events / 1000):.0f} ms a 1,000 events, "
                f"{g.cpu_seconds / g.seconds:.2f} core)"
            )
        for name, rate in self.baseline_rates.items():
            say(
                f"    baseline: raw asyncpg {name}, 1,000 events a transaction, stop-and-wait   "
                f"{rate:,.0f} events/s"
            )
        say(
            f"    target >= {INGEST_TARGET:,} events/s: "
            + ("met" if r["rate_10_90"] >= INGEST_TARGET else "MISSED")
            + f" here, the hub sharing the machine with {len(self.townships)} townships"
            + " (the hub alone: python -m bench hubfeed)"
        )

    def _report_cpu(self, say: Any) -> None:
        say("  CPU, in cores busy (1.0 = one core all the time); machine: share of all 2 cores busy")
        names = list(self.phases[0].spans)
        header = "    " + f"{'':<52}" + "".join(f"{p.name:>16}" for p in self.phases)
        say(header)
        for name in names:
            say("    " + f"{name:<52}" + "".join(f"{p.spans[name].cores:>16.2f}" for p in self.phases))
        say("    " + f"{'machine (all processes)':<52}" + "".join(f"{p.machine:>16.0%}" for p in self.phases))
        say(
            "    "
            + f"{'bench event loop late, p99 / max (ms)':<52}"
            + "".join(f"{_loop_late(p.loop_delays):>16}" for p in self.phases)
        )
        rss, peak = self.hub_memory
        tw = [m[0] for m in self.township_memory]
        say(
            f"  memory: hub RSS {mib(self.hub_rss_start)} at start (baseline), {mib(rss)} at the end, peak "
            f"{mib(peak)}; townships {mib(int(statistics.mean(tw)))} each (max {mib(max(tw))}); "
            f"bench process {mib(self.bench_memory[0])}"
        )


def _rates(timeline: list[tuple[float, int]], start: int, count: int, mended: float) -> dict[str, float]:
    """Ingest rates from (time, head) samples: between 10 % and 90 % of the burst, over the
    sampling intervals in which the head moved, and from the first to the last event."""
    moved = [(t, head - start) for t, head in timeline]

    def crossing(share: float) -> float:
        return next(t for t, done in moved if done >= share * count)

    busy_time = sum(t1 - t0 for (t0, d0), (t1, d1) in itertools.pairwise(moved) if d1 > d0)
    first, last = crossing(1 / count), crossing(1.0)
    span = crossing(0.9) - crossing(0.1)
    return {
        "rate_10_90": 0.8 * count / span if span > 0 else math.inf,
        "busy": count / busy_time if busy_time else math.inf,
        "whole": count / (last - mended),
        "first": first - mended,
        "last": last - mended,
    }


async def _pg_baseline(dsn: str, start: int, count: int) -> dict[str, float]:
    """The burst's events written again by raw asyncpg into a copy of the hub's events table
    (same columns, indexes and constraints), 1,000 a transaction, one connection, durable
    commits: by COPY, and by executemany INSERT (what SQLAlchemy Core on asyncpg sends)."""
    conn = await asyncpg.connect(dsn)
    rates = {}
    try:
        rows = await conn.fetch(
            "SELECT * FROM events WHERE position > $1 ORDER BY position LIMIT $2", start, count
        )
        columns = list(rows[0].keys())
        records = [tuple(row) for row in rows]
        marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
        insert = f"INSERT INTO bench_raw_events ({', '.join(columns)}) VALUES ({marks})"
        for name in ("COPY", "executemany INSERT"):
            await conn.execute("DROP TABLE IF EXISTS bench_raw_events")
            await conn.execute("CREATE TABLE bench_raw_events (LIKE events INCLUDING ALL)")
            started = time.perf_counter()
            for i in range(0, len(records), 1000):
                async with conn.transaction():
                    if name == "COPY":
                        await conn.copy_records_to_table(
                            "bench_raw_events", records=records[i : i + 1000], columns=columns
                        )
                    else:
                        await conn.executemany(insert, records[i : i + 1000])
            rates[name] = len(records) / (time.perf_counter() - started)
        await conn.execute("DROP TABLE IF EXISTS bench_raw_events")
    finally:
        await conn.close()
    return rates


async def _wait_serving(address: str, home: Path) -> None:
    """Until the server answers the health check (over mutual TLS with the node's own
    certificate, where the checkout's test harness takes ``home``)."""
    try:
        await asyncio.to_thread(wait_serving, address, 120, home=home)
    except TypeError:
        await asyncio.to_thread(wait_serving, address, 120)


async def _postmaster_started(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SELECT pg_postmaster_start_time()"))
    finally:
        await conn.close()


async def _loop_delays(delays: list[float], every: float = 0.05) -> None:
    """How late the bench process's event loop wakes a 50 ms sleep: when it is late, the
    villages' own work (not the product's) is what delays them."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(every)
        delays.append(time.perf_counter() - started - every)


async def _until_empty(villages: list[Village]) -> None:
    """Return once no village has anything queued for its township."""
    while True:
        if not any([await village.backlog() for village in villages]):
            return
        await asyncio.sleep(0.2)


def _outbox_head(home: Path) -> int:
    """The highest hop sequence a node has queued upward."""
    with closing(sqlite3.connect(f"file:{home / DB_FILE}?mode=ro", uri=True, timeout=30)) as conn:
        return int(conn.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0])


def _count(home: Path, table: str) -> int:
    with closing(sqlite3.connect(f"file:{home / DB_FILE}?mode=ro", uri=True, timeout=30)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _set_relay(config: Path, values: dict[str, float]) -> None:
    lines = config.read_text(encoding="utf-8").splitlines()
    for key, value in values.items():
        lines = [f"{key} = {value!r}" if line.split(" = ")[0] == key else line for line in lines]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _loop_late(delays: list[float]) -> str:
    if not delays:
        return "-"
    return f"{1000 * _pct(delays, 99):.0f} / {1000 * max(delays):.0f}"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SERVICENET_HOME", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def district(opts: Options, root: Path) -> None:
    """Run the simulation in ``root`` and print its report."""
    root.mkdir(parents=True, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # 419 village databases (with their WAL files) and channels in one process
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sim = DistrictSim(opts, root)
    print(
        f"(d) district: {len(sim.townships)} townships, {len(sim.village_codes)} villages, "
        f"{opts.sim_hours:g} h at {opts.speed:g}x; township {sim.cut_code} is cut off at "
        f"{opts.cut_at_hours:g} h for {opts.cut_minutes:g} min; nodes in {root}",
        flush=True,
    )
    await sim.run()
