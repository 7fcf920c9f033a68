"""The district simulation's villages and service desks, in the bench process.

Each village is a real node (its own home, node.toml and SQLite database, opened with
``relay.node.open_node``) that takes requests with ``village_agent.service`` and talks to its
township over gRPC with the relay's own ``Syncer`` and ``GrpcUpstream``. What differs from
``village-agent run``, so that 419 of them fit in one process on two cores:

- Pushing: ``village-agent run`` looks at its outbox every ``poll_interval_seconds`` (0.1 s);
  here the forwarder sleeps until something is taken, then pushes at the village's next poll
  tick (the same 0-0.1 s wait, without the idle reads), with the product's retry policy
  (exponential backoff with jitter, ``RelayPolicy.tenacity_kwargs``) while the link is down.
- Pulling: every ``pull_every`` simulated minutes, a sync's pull (``pull_once`` until empty,
  then the catalog and calendar checks), or with ``pull_every`` 0 the product's own long poll
  (``Syncer.pull_forever``) as ``village-agent run`` does.
- Heartbeats: the product's ``heartbeat_forever`` (every 60 s of wall time).

An outage takes a village's network away (every call fails as an unreachable township would,
``TransientError``); the agent keeps taking requests offline. Desks act as staff would with the
command lines, through ``relay.staff.act`` on the township's or hub's database (one transaction
per case): accept what was submitted, then decide township items, escalate district items;
the hub accepts and decides what was escalated; villages hand decisions over (``cmd.deliver``)
and pass on the applicant's rating (``cmd.rate``). Each window and each village's desk works at
a phase of its own.
"""

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from tenacity import AsyncRetrying, retry_if_exception_type

from bench.hubdata import applicant_name, resident_id
from casework import Item, Request
from casework.lifecycle import (
    ACCEPTED,
    CMD_DELIVER,
    CMD_RATE,
    DECIDED,
    DEPARTMENT_DECIDED,
    ESCALATED,
)
from relay.audit import Links
from relay.catalogs import Published
from relay.certify import OWN, Standing
from relay.errors import TransientError
from relay.node import Node
from relay.records import EventRecord, Heartbeat, PullResult, PushResult
from relay.schema import cases
from relay.staff import act
from relay.sync import Syncer, backlog
from relay.upstream import GrpcUpstream, Upstream
from village_agent import service

SIM_DAY = 8 * 3600.0  # a working day, in simulated seconds


class SimClock:
    """Simulated seconds since the start, running ``speed`` times faster than the wall."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.started = time.perf_counter()

    def now(self) -> float:
        return (time.perf_counter() - self.started) * self.speed

    def wall(self, sim: float) -> float:
        """The perf_counter time at which simulated time ``sim`` comes."""
        return self.started + sim / self.speed

    async def until(self, sim: float) -> None:
        await asyncio.sleep(max(0.0, self.wall(sim) - time.perf_counter()))


class Switch:
    """An upstream that fails every call as an unreachable one would while ``down``."""

    def __init__(self, inner: Upstream) -> None:
        self.inner = inner
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise TransientError("offline (simulated outage)")

    async def push(
        self,
        sender: str,
        stream: int,
        envelopes: Sequence[tuple[int, EventRecord]],
        chain: Links | None = None,
    ) -> PushResult:
        self._check()
        return await self.inner.push(sender, stream, envelopes, chain)

    async def pull(self, node: str, after: int, after_event_id: str, limit: int, wait_ms: int) -> PullResult:
        self._check()
        return await self.inner.pull(node, after, after_event_id, limit, wait_ms)

    async def heartbeat(self, beat: Heartbeat) -> int:
        self._check()
        return await self.inner.heartbeat(beat)

    async def fetch_catalog(self, node: str, have_version: str) -> Published:
        self._check()
        return await self.inner.fetch_catalog(node, have_version)

    async def fetch_calendar(self, node: str, have_version: str) -> Published:
        self._check()
        return await self.inner.fetch_calendar(node, have_version)

    async def fetch_revocations(self, node: str, after: int) -> Any:
        self._check()
        return await self.inner.fetch_revocations(node, after)

    async def certify(self, node: str, subject: str, csr: bytes, standing: Standing = OWN) -> Any:
        self._check()
        return await self.inner.certify(node, subject, csr, standing)

    async def close(self) -> None:
        await self.inner.close()


def upstream_of(node: Node) -> Upstream:
    """The node's client of its upstream as the product makes it (mutual TLS with the node's
    certificate where the checkout has it; Node.upstream), else plain gRPC."""
    make = getattr(node, "upstream", None)
    if callable(make):
        made: Upstream = make()
        return made
    return GrpcUpstream(node.config.upstream, node.config.relay.push_timeout_seconds)  # type: ignore[call-arg]


@dataclass
class Outage:
    """A stretch of simulated time a village or township link is down, and what was seen."""

    code: str
    start: float  # simulated seconds
    end: float
    began: float = 0.0  # perf_counter when it began
    returned: float = 0.0  # perf_counter when the link came back
    expected: int = 0  # events (or hop sequence) the hub must have, counted when it came back
    first_seen: float = 0.0  # perf_counter of the first of them seen at the hub after the return
    drained: float = 0.0  # perf_counter when the hub had them all
    backlog: int = 0  # how many of them the hub lacked when the link came back

    def overlaps(self, began: float, seen: float) -> bool:
        """Whether it lasted, or its backlog was still on the way, at some time in [began, seen]."""
        if not self.began or self.began > seen:
            return False
        end = self.drained or self.returned
        return not end or end >= began


@dataclass
class Tally:
    """What the bench did, for the checks and the lag: intake times by case id."""

    taken: dict[str, tuple[float, str]] = field(default_factory=dict)  # case -> (perf time, village)
    made: dict[str, int] = field(default_factory=dict)  # events made at each village
    commands: int = 0
    desk_actions: int = 0
    desk_failures: int = 0  # refused by the product (an Outcome that is not ok)
    errors: list[str] = field(default_factory=list)  # raised by the product: a bug to report


class Village:
    """One village node with its request stream, forwarder, pulls and outages."""

    def __init__(
        self,
        node: Node,
        clock: SimClock,
        tally: Tally,
        rng: random.Random,
        items: list[Item],
        per_day: float,
        outages: list[Outage],
    ) -> None:
        self.node, self.clock, self.tally, self.rng, self.items = node, clock, tally, rng, items
        self.code = node.config.code
        self.rate = per_day / SIM_DAY  # requests per simulated second
        self.outages = outages
        self.switch = Switch(upstream_of(node))
        self.syncer = Syncer(node.engine, node.ledger, self.switch)
        self.policy = node.config.relay
        self.phase = rng.random() * self.policy.poll_interval_seconds
        self.wake = asyncio.Event()
        self.rated: set[str] = set()
        tally.made.setdefault(self.code, 0)

    def request(self) -> Request:
        item = self.rng.choice(self.items)
        handed = tuple(m.name for m in item.materials if not m.required or self.rng.random() < 0.85)
        phone = f"1{self.rng.choice('3589')}{self.rng.randrange(10**9):09d}"
        return Request(item.code, applicant_name(self.rng), resident_id(self.rng), phone, materials=handed)

    async def take(self, count: int = 1) -> list[str]:
        """Take ``count`` requests in one transaction, as ``village-agent intake`` does one."""
        began = time.perf_counter()
        checked = [service.check(self.node, self.request(), {}) for _ in range(count)]
        taken = await service.take(self.node, checked)
        for case in taken:
            self.tally.taken[case.case_id] = (began, self.code)
        self.tally.made[self.code] += len(taken)
        self.wake.set()
        return [case.case_id for case in taken]

    async def arrivals(self, until: float) -> None:
        """Poisson arrivals at the village's rate, until simulated time ``until``."""
        at = 0.0
        while True:
            at += self.rng.expovariate(self.rate)
            if at >= until:
                return
            await self.clock.until(at)
            await self.take()

    async def forward(self) -> None:
        """Push whatever was taken at the next poll tick; back off while the link is down."""
        poll = self.policy.poll_interval_seconds
        while True:
            await self.wake.wait()
            await asyncio.sleep(poll - (time.perf_counter() - self.phase) % poll)
            self.wake.clear()
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(TransientError), **self.policy.tenacity_kwargs()
                ):
                    with attempt:
                        while True:
                            sent, refused = await self.syncer.push_window()
                            if sent == 0 and refused == 0 and await self.backlog() == 0:
                                break
            except Exception as exc:  # refused for good, or a bug: noted; retried at the slowest pace
                self.tally.errors.append(f"{self.code} push: {type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(self.policy.backoff_max_seconds)
                self.wake.set()

    async def backlog(self) -> int:
        async with self.node.engine.connect() as conn:
            return await backlog(conn)

    async def pull(self) -> None:
        """One sync's pull, as ``village-agent sync`` does after its push."""
        try:
            while (await self.syncer.pull_once())[0]:
                pass
            await self.syncer.refresh_catalog()
            await self.syncer.refresh_calendar()
        except TransientError:
            pass
        except Exception as exc:  # refused for good, or a bug: noted
            self.tally.errors.append(f"{self.code} pull: {type(exc).__name__}: {exc}"[:300])

    async def pulls(self, every: float, until: float) -> None:
        """A pull every ``every`` simulated seconds (a random phase), while online."""
        at = self.rng.random() * every
        while at < until:
            await self.clock.until(at)
            if not self.switch.down:
                await self.pull()
            at += every

    async def hand_over(self, rng: random.Random) -> None:
        """At the village's desk: hand decided cases over and pass on the applicant's rating."""
        query = select(cases.c.case_id, cases.c.status).where(cases.c.status.in_(("approved", "delivered")))
        async with self.node.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        for case_id, status in rows:
            if status == "approved":
                await service.command(self.node, case_id, CMD_DELIVER, {})
            elif case_id not in self.rated:
                self.rated.add(case_id)
                if rng.random() >= 0.6:
                    continue
                score = rng.choices((5, 4, 3, 2, 1), (70, 20, 7, 2, 1))[0]
                await service.command(self.node, case_id, CMD_RATE, {"score": score, "comment": ""})
            else:
                continue
            self.tally.made[self.code] += 1
            self.tally.commands += 1
            self.wake.set()

    def down_at(self, began: float, seen: float) -> bool:
        """Whether an outage of the village overlapped two perf_counter times: from the moment
        it began to the moment its backlog was all at the hub (after the return, the forwarder
        may still be waiting out its backoff)."""
        return any(o.overlaps(began, seen) for o in self.outages)


def village_outages(
    code: str, rng: random.Random, per_day: float, until: float, shortest: float, longest: float
) -> list[Outage]:
    """Outages of one village: ``per_day`` a simulated working day on average, each from
    ``shortest`` to ``longest`` simulated seconds (log-uniform), not overlapping."""
    found: list[Outage] = []
    at = rng.expovariate(per_day / SIM_DAY) if per_day > 0 else until
    while at < until:
        length = shortest * (longest / shortest) ** rng.random()
        found.append(Outage(code, at, at + length))
        at += length + rng.expovariate(per_day / SIM_DAY)
    return found


async def desk_round(node: Node, rng: random.Random, tally: Tally) -> None:
    """One pass of a township's or the hub's windows over the cases it owns: accept what
    waits, then decide what it decides (every department of a joint item), escalate the rest."""
    code = node.config.code
    query = select(cases.c.case_id, cases.c.status, cases.c.decide_level, cases.c.departments).where(
        cases.c.owner == code, cases.c.status.in_(("submitted", "accepted", "escalated"))
    )
    async with node.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    plan: dict[tuple[str, str], list[str]] = {}
    decisions: list[tuple[str, dict[str, Any]]] = []
    for case_id, status, level, departments in rows:
        if status in ("submitted", "escalated"):
            plan.setdefault((ACCEPTED, ""), []).append(case_id)
        elif level == "district" and node.config.role == "township":
            plan.setdefault((ESCALATED, ""), []).append(case_id)
        else:
            pending = [name for name, verdict in _pairs(departments) if verdict == "pending"]
            if pending:
                for name in pending:
                    body = {"department": name, "approved": True, "reason": "审核通过"}
                    decisions.append((case_id, {"type": DEPARTMENT_DECIDED, **body}))
            else:
                approved = rng.random() < 0.92
                body = {"approved": approved, "reason": "符合条件" if approved else "不符合条件"}
                decisions.append((case_id, {"type": DECIDED, **body}))
    steps = [
        (ids, kind, {"opinion": "初审通过"} if kind == ESCALATED else {}) for (kind, _), ids in plan.items()
    ]
    steps += [([case_id], body.pop("type"), body) for case_id, body in decisions]
    for ids, kind, payload in steps:
        try:
            _count(tally, await act(node, ids, kind, payload, "窗口A"))
        except Exception as exc:  # the product failed: note it and go on with the day
            tally.errors.append(f"{node.config.code} {kind}: {type(exc).__name__}: {exc}"[:300])


def _pairs(text: str) -> list[tuple[str, str]]:
    return [(str(name), str(verdict)) for name, verdict in json.loads(text)]


def _count(tally: Tally, outcomes: Sequence[Any]) -> None:
    for outcome in outcomes:
        if outcome.ok:
            tally.desk_actions += 1
        else:
            tally.desk_failures += 1


async def desk(
    node: Node, clock: SimClock, every: float, until: float, rng: random.Random, tally: Tally
) -> None:
    """A township's or the hub's windows: a round every ``every`` simulated seconds, at a phase
    of their own, until simulated time ``until``."""
    at = rng.random() * every
    while at < until:
        await clock.until(at)
        await desk_round(node, rng, tally)
        at += every


async def village_desk(
    village: Village, every: float, until: float, rng: random.Random, tally: Tally
) -> None:
    """A village's desk: hands decisions over and passes ratings on, every ``every`` simulated
    seconds at a phase of its own."""
    at = rng.random() * every
    while at < until:
        await village.clock.until(at)
        try:
            await village.hand_over(rng)
        except Exception as exc:  # the product failed: note it and go on with the day
            tally.errors.append(f"{village.code} hand-over: {type(exc).__name__}: {exc}"[:300])
        at += every
