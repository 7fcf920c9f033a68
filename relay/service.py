"""What a node serves to the nodes below it: push (the inbox), pull (the feed), heartbeat."""

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import replace
from itertools import pairwise
from typing import Any, TypeVar

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casework.lifecycle import COMMANDS
from relay import audit, calendars, catalogs, metrics, revocations
from relay._chain import MAX_LINKS, check_links
from relay.audit import Links
from relay.bell import pullers_of
from relay.catalogs import Published
from relay.certify import Certified, Certifier, Standing
from relay.clock import now_us
from relay.db import reading
from relay.errors import CertificateRefused, InvalidBatch, NotPermitted, PermanentError
from relay.ledger import MAX_INT64, Ledger, feed
from relay.records import EventRecord, Heartbeat, PullResult, PushResult, Rejected
from relay.revocations import Revocation
from relay.schema import events, inbox_peers, nodes

MAX_BATCH = 1000
MAX_PULL = 1000
MAX_PULL_BYTES = 4 * 1024 * 1024  # a pull's reply stops adding events once their payloads reach this
MAX_WAIT_MS = 30_000
HOLD_SECONDS = 0.5  # how long a batch that overtook its predecessor waits for it
APPLYING_AT_ONCE = 2  # pushes applied at once on PostgreSQL (see RelayService._applying)

log = structlog.get_logger()
T = TypeVar("T")


class RelayService:
    def __init__(self, engine: AsyncEngine, ledger: Ledger, certifier: Certifier | None = None) -> None:
        self.engine = engine
        self.ledger = ledger
        self.certifier = certifier  # who signs renewed certificates: None, Certify is refused
        self.code = ledger.config.code
        self.closing = asyncio.Event()  # set at shutdown: long polls answer at once
        # Each sender's mark as last committed here, and a signal when one moves: a batch that
        # overtook its predecessor (two in flight) waits for it instead of bouncing as a gap.
        self._marks: dict[str, int] = {}
        self._moved = asyncio.Condition()
        # Pushes apply one at a time on SQLite (its write lock serialises them anyway), two at
        # once on PostgreSQL (one reads and works out its cases while the other writes its
        # events under the write lock): the others wait here, not on the database's locks
        # holding pooled connections (bench/README.md, issue 4).
        self._applying = asyncio.Semaphore(APPLYING_AT_ONCE if engine.dialect.name == "postgresql" else 1)
        self._writing: set[asyncio.Task[Any]] = set()  # writes whose caller may have gone

    def to_the_end(self, call: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """Run a call that writes to its end even if its caller stops waiting (a gRPC handler
        cancelled by the caller's deadline or a reset link): cut off inside its transaction,
        it left a SQLite connection holding the write lock, and every later write waited
        behind it until the node restarted. The caller retries; the write is found done."""
        task = asyncio.ensure_future(call)
        self._writing.add(task)
        task.add_done_callback(self._written)
        return asyncio.shield(task)

    def _written(self, task: asyncio.Task[Any]) -> None:
        self._writing.discard(task)
        if not task.cancelled():
            task.exception()  # a caller that went away retries; one still waiting was told

    async def settle(self) -> None:
        """Wait for the writes still running (at shutdown, before the database is closed)."""
        await asyncio.gather(*self._writing, return_exceptions=True)

    def close(self) -> None:
        self.closing.set()
        self.ledger.bell.ring()

    def check_peer(self, peer: str) -> None:
        """Only the nodes this node serves may push or pull: its townships or its villages."""
        if not peer:
            raise InvalidBatch("the sender (node) is missing: name the calling node's division code")
        role = self.ledger.config.role
        child_length = {"district": 9, "township": 12}.get(role)
        if child_length is None or len(peer) != child_length or not peer.isdigit():
            raise NotPermitted(f"{peer} is not a node this {role} serves")
        if not peer.startswith(self.code):
            raise NotPermitted(f"{peer} is outside the jurisdiction of {self.code}")

    async def check_certificate(self, code: str, issued_us: int) -> None:
        """Refuse (CertificateRefused) a caller whose certificate the district revoked, as the
        revocation list kept here says: the district's own, or the one last pulled from it."""
        revoked = await revocations.covering(self.engine, code, issued_us)
        if revoked is not None:
            raise CertificateRefused(revoked.refusal())

    async def fetch_revocations(self, puller: str, after: int) -> list[Revocation]:
        """The revocations made after the caller's newest, oldest first, without their reason
        (district staff's words stay at the district)."""
        self.check_peer(puller)
        _check_cursor(after)
        async with self.engine.connect() as conn:
            return [replace(r, reason="") for r in await revocations.after(conn, after)]

    async def certify(self, caller: str, subject: str, csr: bytes, standing: Standing) -> Certified:
        """A certificate for a new key: the caller's own (``standing`` holds the certificate it
        presented), or (at the district) one of the calling township's villages (``standing``
        as the township passed it on)."""
        self.check_peer(caller)
        if self.certifier is None:
            raise PermanentError(f"{self.code} issues no certificates")
        if subject != caller and not (self.ledger.config.role == "district" and _serves(caller, subject)):
            raise NotPermitted(f"{caller} may not ask for a certificate of {subject[:16]}")
        certified = await self.certifier.certify(subject, csr, standing)
        log.info("security.certificate.requested", code=subject, by=caller)
        return certified

    async def push(
        self,
        sender: str,
        stream: int,
        envelopes: Sequence[tuple[int, EventRecord]],
        chain: Links | None = None,
    ) -> PushResult:
        """Apply a consecutive batch exactly once; answer with the sender's high-water mark.
        The rows of the sender's audit trail that came with it are checked on the way."""
        self.check_peer(sender)
        _check_batch(envelopes)
        if not 0 <= stream < MAX_INT64:
            raise InvalidBatch("stream must be below 2^63")
        _check_chain(chain)
        if envelopes and sender in self._marks:
            await self._await_mark(sender, envelopes[0][0] - 1)
        async with self._applying, self.engine.begin() as conn:
            peer = (
                await conn.execute(
                    select(inbox_peers).where(inbox_peers.c.sender == sender).with_for_update()
                )
            ).first()
            chained = await audit.receive(conn, sender, chain, [r for _, r in envelopes])
            audit_upto = chained.upto
            upto = peer.applied_upto if peer else 0
            if not envelopes:
                return PushResult(upto, audit_upto=audit_upto)  # a probe: the sender asks for its mark
            if envelopes[0][0] > upto + 1:
                log.info("relay.push.gap", sender=sender, expected=upto + 1, got=envelopes[0][0])
                return PushResult(upto, audit_upto=audit_upto)
            same_stream = peer is not None and peer.stream == stream
            fresh = [(seq, r) for seq, r in envelopes if seq > upto] if same_stream else list(envelopes)
            if not fresh:
                return PushResult(upto, duplicates=len(envelopes), audit_upto=audit_upto)
            refusals, duplicates = await self.ledger.take(
                conn,
                [r for _, r in fresh],
                via=sender,
                from_below=True,
                seqs=[s for s, _ in fresh],
                digests=chained.digests,
            )
            last = fresh[-1][0]
            values = {"stream": stream, "applied_upto": last, "updated_at": now_us()}
            if peer is None:
                await conn.execute(inbox_peers.insert().values(sender=sender, **values))
            else:
                await conn.execute(
                    inbox_peers.update().where(inbox_peers.c.sender == sender).values(**values)
                )
        if answered := _answered_to(fresh):
            self.ledger.bell.ring(answered)
        async with self._moved:
            self._marks[sender] = last
            self._moved.notify_all()
        rejected = tuple(Rejected(fresh[r.index][0], fresh[r.index][1].event_id, r.reason) for r in refusals)
        breaches = sum(r.breach for r in refusals)
        if breaches:  # refused and dead-lettered, never applied; the event ids name no person
            log.warning("security.refused", sender=sender, rpc="Push", events_outside_jurisdiction=breaches)
        metrics.BATCHES.inc(direction="received")
        metrics.EVENTS.inc(len(fresh), direction="received")
        metrics.REJECTS.inc(len(rejected), direction="in")
        log.info(
            "relay.push.applied",
            sender=sender,
            upto=last,
            events=len(fresh),
            rejected=len(rejected),
            duplicates=duplicates,
        )
        return PushResult(last, rejected, duplicates + len(envelopes) - len(fresh), audit_upto)

    async def _await_mark(self, sender: str, mark: int) -> None:
        """Hold a batch that arrived ahead of its predecessor, briefly, until that one lands."""
        async with self._moved:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._moved.wait_for(lambda: self._marks.get(sender, 0) >= mark), HOLD_SECONDS
                )

    async def pull(
        self, puller: str, after: int, after_event_id: str, limit: int, wait_ms: int
    ) -> PullResult:
        """Events for ``puller`` after its cursor; waits up to wait_ms if there are none yet.
        A cursor that does not match this feed (a restored backup) is answered with reset."""
        self.check_peer(puller)
        _check_cursor(after)
        limit = min(max(limit, 1), MAX_PULL)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(wait_ms, MAX_WAIT_MS) / 1000
        while True:
            ticket = self.ledger.bell.ticket(puller)  # before reading: a commit after it wakes us
            async with reading(self.engine) as conn:
                if after and not await _holds(conn, after, after_event_id):
                    log.warning("relay.pull.reset", puller=puller, after=after)
                    return PullResult((), 0, reset=True)
                found, head = await feed(conn, puller, after, limit, MAX_PULL_BYTES)
            if found or loop.time() >= deadline or self.closing.is_set():
                return PullResult(tuple(found), head)
            await self.ledger.bell.wait(ticket, deadline - loop.time())

    async def fetch_catalog(self, puller: str, have_version: str) -> Published:
        """The newest catalog version kept here, or an empty answer if the caller has it."""
        self.check_peer(puller)
        async with self.engine.connect() as conn:
            found = await catalogs.newest(conn)
        if found is None or found.version == have_version:
            return Published("", b"", 0)
        return found

    async def fetch_calendar(self, puller: str, have_version: str) -> Published:
        """The calendar version published after the caller's, or an empty answer if it has
        the newest (see relay.calendars.next_after)."""
        self.check_peer(puller)
        async with self.engine.connect() as conn:
            found = await calendars.next_after(conn, have_version)
        return found or Published("", b"", 0)

    async def heartbeat(self, beat: Heartbeat) -> int:
        """Record that a node is alive and how it is doing, and how the nodes below it were
        when it last heard from them (a township's villages); returns this node's clock."""
        self.check_peer(beat.node)
        now = now_us()
        below = [seen for seen in beat.below if _serves(beat.node, seen.node)][:MAX_BELOW]
        for sent in (beat, *below):
            _check_beat(sent)
        async with self.engine.begin() as conn:
            await _note(conn, beat, now, (beat.sent_at - now) // 1000)
            for seen in below:
                await _note(conn, seen, min(seen.last_seen, now), None)
                if seen.audit_breaks:  # found by the township in the village's chain
                    await audit.reported(conn, beat.node, seen.node, seen.audit_breaks)
        return now


MAX_BELOW = 2000  # villages one township passes on in a heartbeat (Hechuan's largest has ~40)


def _check_beat(beat: Heartbeat) -> None:
    """Refuse a heartbeat whose numbers no node sends (InvalidBatch): a backlog or a time
    (microseconds since 1970) below 0 or beyond 2^63 - 1, which no database column holds."""
    for name in ("backlog", "sent_at", "last_push", "last_pull", "last_seen"):
        if not 0 <= getattr(beat, name) < MAX_INT64:
            raise InvalidBatch(f"the heartbeat of {beat.node[:16]}: {name} must be from 0 to 2^63 - 1")


def _check_cursor(after: int) -> None:
    """Refuse for good (InvalidBatch) a cursor no database column holds: asking again would
    only fail again."""
    if not 0 <= after < MAX_INT64:
        raise InvalidBatch("after must be from 0 to 2^63 - 1")


def _serves(upper: str, lower: str) -> bool:
    return len(lower) == 12 and lower.isdigit() and lower.startswith(upper) and len(upper) == 9


async def _note(conn: AsyncConnection, beat: Heartbeat, seen_at: int, offset_ms: int | None) -> None:
    """Upsert a node's row from its heartbeat: the caller's own (with its clock offset), or
    one passed on from below unless what is kept is newer already."""
    values: dict[str, Any] = {
        "role": beat.role[:10],
        "last_seen": seen_at,
        "backlog": beat.backlog,
        "software_version": beat.software_version[:32],
        "catalog_version": beat.catalog_version[:32],
        "last_push": beat.last_push or None,
        "last_pull": beat.last_pull or None,
    }
    if offset_ms is not None:
        values["clock_offset_ms"] = offset_ms
    kept = (await conn.execute(select(nodes.c.last_seen).where(nodes.c.code == beat.node))).first()
    if kept is None:
        await conn.execute(nodes.insert().values(code=beat.node, name="", **values))
    elif offset_ms is not None or (kept.last_seen or 0) < seen_at:
        await conn.execute(nodes.update().where(nodes.c.code == beat.node).values(**values))


async def _holds(conn: AsyncConnection, position: int, event_id: str) -> bool:
    found = (await conn.execute(select(events.c.event_id).where(events.c.position == position))).scalar()
    return found is not None and (not event_id or found == event_id)


def _check_chain(chain: Links | None) -> None:
    if chain is None:
        return
    try:
        check_links(chain, MAX_LINKS)
    except ValueError as exc:
        raise InvalidBatch(str(exc)) from exc


def _answered_to(envelopes: Sequence[tuple[int, EventRecord]]) -> set[str]:
    """The pullers whose feeds applying these events from below may add to. A sender's own
    events never do (a feed leaves out what came from its puller, and holds only the puller's
    own villages); only the answers this node makes to commands can, so a batch of
    submissions wakes none of the waiting pulls."""
    return pullers_of(record.village_code for _, record in envelopes if record.type in COMMANDS)


def _check_batch(envelopes: Sequence[tuple[int, EventRecord]]) -> None:
    if len(envelopes) > MAX_BATCH:
        raise InvalidBatch(f"batch of {len(envelopes)} events exceeds the limit of {MAX_BATCH}")
    for (previous, _), (seq, _) in pairwise(envelopes):
        if seq != previous + 1:
            raise InvalidBatch(f"hop sequence {seq} follows {previous}: a batch must be consecutive")
    if envelopes and not 1 <= envelopes[0][0] <= envelopes[-1][0] < MAX_INT64:
        raise InvalidBatch("hop sequences run from 1 to 2^63 - 1")
