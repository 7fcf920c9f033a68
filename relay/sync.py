"""Store-and-forward toward the upstream: push the outbox in order, pull the feed by cursor.

The outbox is the only queue: nothing waits in memory that is not already committed. A push
is retried with backoff on transient errors; the upstream's acknowledgement (its high-water
mark for this node) is the only thing that moves the send cursor, backward as well as forward.
"""

import asyncio
import os
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from casework import CaseworkError, InvalidInput
from relay import audit, calendars, metrics, revocations
from relay._chain import GENESIS, MAX_LINKS
from relay.audit import Links
from relay.bell import pullers_of
from relay.catalogs import parse_document, store
from relay.clock import now_us
from relay.counters import read_text, read_value, write_value
from relay.db import CommitWatch, reading
from relay.errors import PermanentError, RelayError, TransientError
from relay.ledger import Ledger, Refusal, dead_letter, within_bytes
from relay.privacy import forget_settled
from relay.records import EventRecord, Heartbeat, PushResult, ReportedBreak
from relay.schema import events, nodes, outbox
from relay.upstream import Upstream

log = structlog.get_logger()
SOFTWARE_VERSION = version("servicenet")
PULL_WAIT_MS = 10_000  # long poll while online: status reaches the village within a moment
HEARTBEAT_SECONDS = 60.0
PROBE_SECONDS = 30.0  # an idle forwarder asks the upstream for its mark this often
PUSH_WINDOW = 2  # batches in flight at once
MAX_PUSH_BYTES = 4 * 1024 * 1024  # a batch stops adding events once their payloads reach this
PRUNE_SECONDS = 600.0
MAX_CALENDAR_STEPS = 100  # calendar versions taken in one refresh (one a year is usual)


_ASK = Links(0, GENESIS, (), GENESIS)  # no rows: asks how far the upstream holds this chain


@dataclass(frozen=True, slots=True)
class SyncReport:
    pushed: int
    pulled: int
    rejected: int
    backlog: int


def _count_retry(loop: str) -> Callable[[RetryCallState], None]:
    """A tenacity ``before_sleep`` hook: count each transient failure that will be retried."""

    def count(_: RetryCallState) -> None:
        metrics.RETRIES.inc(loop=loop)

    return count


async def backlog(conn: AsyncConnection) -> int:
    acked = await read_value(conn, "acked_upto")
    return (await conn.execute(select(func.count()).where(outbox.c.seq > acked))).scalar() or 0


class Syncer:
    def __init__(self, engine: AsyncEngine, ledger: Ledger, upstream: Upstream) -> None:
        self.engine = engine
        self.ledger = ledger
        self.config = ledger.config
        self.upstream = upstream
        self.policy = ledger.config.relay
        self._next_seq: int | None = None
        self._audit_next: int | None = None  # the next row of the audit trail to send upward
        self._pruned_at = 0  # when _prune last ran (microseconds)
        self.stream = int.from_bytes(os.urandom(8), "big") >> 1  # this sender's stream, see PushRequest

    async def push_once(self, probe: bool = False) -> tuple[int, int]:
        """Send one batch from the outbox; returns (events acknowledged, rejected). With
        nothing to send, a probe still asks the upstream for its mark: an upstream restored
        from an older backup answers lower, and the rows it lost become the backlog again."""
        envelopes, chain = await self._read(await self._start_seq(), probe)
        if not envelopes and not probe:
            return 0, 0
        result = await self.upstream.push(self.config.code, self.stream, envelopes, chain)
        return await self._settle(result, envelopes, chain)

    async def push_window(self) -> tuple[int, int]:
        """Send what is queued with up to PUSH_WINDOW batches in flight: the next batch is read
        and sent while the upstream applies the one before it; the hop sequence keeps them in
        order. Stops early when the upstream stops short (a gap, a restore). Returns (events
        acknowledged, rejected)."""
        sent = refused = 0
        seq = await self._start_seq()
        inflight: deque[tuple[asyncio.Future[PushResult], list[tuple[int, EventRecord]], Links]] = deque()
        try:
            while True:
                while len(inflight) < PUSH_WINDOW:
                    envelopes, chain = await self._read(seq)
                    if not envelopes:
                        break
                    call = self.upstream.push(self.config.code, self.stream, envelopes, chain)
                    inflight.append((asyncio.ensure_future(call), envelopes, chain))
                    seq = envelopes[-1][0] + 1
                    if chain.links:  # the next batch sends the rows after these
                        self._settle_chain(chain, chain.last_seq)
                if not inflight:
                    return sent, refused
                future, envelopes, chain = inflight.popleft()
                got, bad = await self._settle(await future, envelopes, chain)
                sent, refused = sent + got, refused + bad
                if self._next_seq != envelopes[-1][0] + 1:
                    return sent, refused
        finally:
            for future, _, _ in inflight:
                future.cancel()
            await asyncio.gather(*(future for future, _, _ in inflight), return_exceptions=True)

    async def _start_seq(self) -> int:
        if self._next_seq is None:
            async with reading(self.engine) as conn:
                self._next_seq = await read_value(conn, "acked_upto") + 1
        return self._next_seq

    async def _read(self, first: int, probe: bool = False) -> tuple[list[tuple[int, EventRecord]], Links]:
        """The outbox's events from hop sequence ``first`` on (one batch), and the rows of this
        node's audit trail to send with them (if there are events, or for a probe)."""
        async with reading(self.engine) as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.seq, events)
                    .join(events, events.c.event_id == outbox.c.event_id)
                    .where(outbox.c.seq >= first)
                    .order_by(outbox.c.seq)
                    .limit(self.policy.batch_size)
                )
            ).all()
            rows = within_bytes(rows, MAX_PUSH_BYTES)  # a batch of large events fits one message
            if rows:  # the rows of the chain up to the batch's last event's travel with it
                chain = await self._chain(conn, await audit.row_of(conn, rows[-1].event_id))
            else:
                chain = await self._chain(conn, None) if probe else _ASK
        if rows and rows[0].seq != first and first == self._next_seq:
            raise PermanentError(
                f"the upstream asks for events from {first} on, but the oldest kept here is {rows[0].seq}:"
                " it was restored from a backup older than the retention period; an operator must"
                " recover the missing events there"
            )
        return self.ledger.queued(rows), chain

    async def _chain(self, conn: AsyncConnection, upto: int | None) -> Links:
        """The audit rows after those the upstream acknowledged, up to ``upto``; none until it
        has said where its record of this node's chain ends (the first push asks)."""
        if self._audit_next is None:
            return _ASK
        return await audit.links_from(conn, self._audit_next, upto, MAX_LINKS)

    def _settle_chain(self, chain: Links, upto: int) -> None:
        """Continue the audit trail after what the upstream holds: a push whose rows it did not
        take (it lost them to a restore, or they overtook the push before) sends them again."""
        if chain.links and upto != chain.last_seq:
            self._audit_next = upto + 1
        else:
            self._audit_next = max(self._audit_next or 0, upto + 1)

    async def _settle(
        self, result: PushResult, envelopes: list[tuple[int, EventRecord]], chain: Links
    ) -> tuple[int, int]:
        """Record an acknowledgement: the mark, rejections as dead letters; move the cursor."""
        self._settle_chain(chain, result.audit_upto)
        first = envelopes[0][0] if envelopes else await self._start_seq()
        async with self.engine.begin() as conn:
            # A mark above what this push carried belongs to this node's numbering before it was
            # restored from an older backup: what it numbers now is not acknowledged by it.
            mark = min(result.applied_upto, envelopes[-1][0] if envelopes else first - 1)
            # Before the mark moves: a case with a new event here (a rating) is unsettled.
            unneeded = await self._forget(conn) if envelopes else frozenset()
            await write_value(conn, "acked_upto", mark)
            await write_value(conn, "last_push", now_us())
            if result.rejected:
                by_seq = dict(envelopes)
                await dead_letter(
                    conn,
                    "out",
                    self.config.upstream_code,
                    [(r.seq, by_seq[r.seq], r.reason) for r in result.rejected if r.seq in by_seq],
                )
            await self._prune(conn, mark)
        self.ledger.vault.drop_scans(unneeded)
        if mark < first - 1:
            log.warning("relay.push.rewind", upstream_expects=mark + 1, sent=first)
        self._next_seq = mark + 1
        if not envelopes:
            return 0, 0
        log.info("relay.batch.acked", upto=mark, rejected=len(result.rejected))
        acked = max(0, mark - first + 1)
        metrics.BATCHES.inc(direction="sent")
        metrics.EVENTS.inc(acked, direction="pushed")
        metrics.REJECTS.inc(len(result.rejected), direction="out")
        return acked, len(result.rejected)

    async def _forget(self, conn: AsyncConnection) -> frozenset[str]:
        """Forget settled cases here (on a village); returns the scans to delete once that is
        committed."""
        if not self.ledger.vault.sealing:
            return frozenset()
        return (await forget_settled(conn, self.ledger.vault, self.policy.forget_after_days)).scans

    async def _prune(self, conn: AsyncConnection, acked: int) -> None:
        """Forget acknowledged rows older than the retention period (kept for replay). The
        delete walks every retained row, so it runs at most once per PRUNE_SECONDS."""
        now = now_us()
        if now - self._pruned_at < PRUNE_SECONDS * 1_000_000:
            return
        self._pruned_at = now
        horizon = now - int(self.policy.retention_days * 86_400 * 1_000_000)
        await conn.execute(delete(outbox).where(outbox.c.seq <= acked, outbox.c.created_at < horizon))

    async def pull_once(self, wait_ms: int = 0) -> tuple[int, int]:
        """Apply one page of the upstream's feed; returns (events received, refused)."""
        async with reading(self.engine) as conn:
            cursor, cursor_event = await read_value(conn, "pull_cursor"), await read_text(conn, "pull_cursor")
        page = await self.upstream.pull(
            self.config.code, cursor, cursor_event, self.policy.batch_size, wait_ms
        )
        if page.reset:
            log.warning("relay.pull.reset", cursor=cursor)
            async with self.engine.begin() as conn:
                await write_value(conn, "pull_cursor", 0, "")
            return await self.pull_once()
        async with self.engine.begin() as conn:
            refused: list[Refusal] = []
            if page.events:
                records = [record for _, record in page.events]
                refused, _ = await self.ledger.take(
                    conn,
                    records,
                    via=self.config.upstream_code,
                    from_below=False,
                    seqs=[p for p, _ in page.events],
                )
                last_position, last = page.events[-1]
                if last_position > await read_value(conn, "pull_cursor"):
                    await write_value(conn, "pull_cursor", last_position, last.event_id)
            unneeded = await self._forget(conn)  # a case delivered just now, or settled long enough
            await write_value(conn, "last_pull", now_us())
        self.ledger.vault.drop_scans(unneeded)
        if page.events:  # what came down may be for the nodes pulling from here
            self.ledger.bell.ring(pullers_of(record.village_code for _, record in page.events))
        metrics.EVENTS.inc(len(page.events), direction="pulled")
        metrics.PULL_POSITION.set(page.head, what="head")
        metrics.PULL_POSITION.set(page.events[-1][0] if page.events else cursor, what="cursor")
        return len(page.events), len(refused)

    async def refresh_catalog(self) -> None:
        """Take a newer catalog version from the upstream, if it has one; a version that does
        not validate here is logged and left out, never half-taken."""
        found = await self.upstream.fetch_catalog(self.config.code, self.ledger.catalog.version)
        if not found.version:
            return
        try:
            catalog = parse_document(found.document)
            if catalog.version != found.version:
                raise InvalidInput(f"the document says version {catalog.version[:32]}")
            async with self.engine.begin() as conn:
                await store(conn, found)
        except CaseworkError as exc:
            log.error("relay.catalog.invalid", version=found.version[:32], error=str(exc))
            return
        self.ledger.adopt({catalog.version: catalog}, catalog.version)
        log.info("relay.catalog.adopted", version=catalog.version)

    async def refresh_calendar(self) -> None:
        """Take the holiday calendar versions the upstream published after the newest kept
        here, oldest first, and count deadlines by them; a version that does not validate here
        is logged and left out, never half-taken (and the ones after it wait behind it)."""
        have = self.ledger.calendar_version
        for _ in range(MAX_CALENDAR_STEPS):
            found = await self.upstream.fetch_calendar(self.config.code, have)
            if not found.version:
                return
            try:
                version, given = calendars.parse_document(found.document)
                if version != found.version:
                    raise InvalidInput(f"the document says version {version}")
                async with self.engine.begin() as conn:
                    await calendars.store(conn, found)
                    newest, calendar = await calendars.load(conn)
            except CaseworkError as exc:
                log.error("relay.calendar.invalid", version=found.version[:32], error=str(exc))
                return
            self.ledger.adopt_calendar(calendar, newest)
            log.info("relay.calendar.adopted", version=newest, years=sorted(given.known_years))
            if newest == have:  # what came is not newer than what is kept here: stop
                return
            have = newest

    async def refresh_revocations(self) -> None:
        """Keep the revocations the upstream has that this node lacks: from then on this node
        refuses those nodes' certificates too, even while its upstream is away."""
        while True:
            async with reading(self.engine) as conn:
                newest = await revocations.newest_time(conn)
            found = await self.upstream.fetch_revocations(self.config.code, newest)
            if not found:
                return
            async with self.engine.begin() as conn:
                await revocations.keep(conn, found)
            log.info("relay.revocations.kept", codes=[r.code for r in found])
            if len(found) < revocations.PAGE:
                return

    async def sync(self, give_up_after: float | None) -> SyncReport:
        """Push everything queued, then pull everything addressed here; retry transient
        failures with backoff until ``give_up_after`` seconds have passed."""
        pushed = pulled = rejected = 0
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            before_sleep=_count_retry("sync"),
            **self.policy.tenacity_kwargs(give_up_after),
        ):
            with attempt:
                while True:
                    sent, refused = await self.push_window()
                    pushed, rejected = pushed + sent, rejected + refused
                    if sent == 0 and refused == 0 and await self._drained():
                        await self.push_once(probe=True)
                        if await self._drained():
                            break
                while True:
                    got, refused = await self.pull_once()
                    pulled, rejected = pulled + got, rejected + refused
                    if got == 0:
                        break
                await self.refresh_catalog()
                await self.refresh_calendar()
                await self.refresh_revocations()
        await self.beat_once()  # a laptop that only ever runs 'sync' shows up in coverage too
        async with reading(self.engine) as conn:
            left = await backlog(conn)
        return SyncReport(pushed, pulled, rejected, left)

    async def _drained(self) -> bool:
        async with reading(self.engine) as conn:
            return await backlog(conn) == 0

    async def forward_forever(self) -> None:
        """Push whenever the outbox has something; back off while the upstream is away. An
        empty outbox is read again once something is committed to the database (looked at
        every ``poll_interval_seconds``, by any process), or when the upstream is due a probe."""

        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        commits = CommitWatch(self.engine)

        async def step() -> None:
            nonlocal idle_since
            commits.changed()  # before reading: what commits after the read is seen below
            now = loop.time()
            probe = now - idle_since > PROBE_SECONDS
            sent, refused = await (self.push_once(probe=True) if probe else self.push_window())
            if sent or refused or probe:
                idle_since = now
            if sent or refused:
                return
            while loop.time() - idle_since <= PROBE_SECONDS:
                await asyncio.sleep(self.policy.poll_interval_seconds)
                if commits.changed():
                    return

        try:
            await self._forever("push", step)
        finally:
            commits.close()

    async def pull_forever(self) -> None:
        """Long-poll the upstream's feed; back off while it is away."""

        async def step() -> None:
            got, _ = await self.pull_once(wait_ms=PULL_WAIT_MS)
            await self.refresh_catalog()
            await self.refresh_calendar()
            await self.refresh_revocations()
            if got == 0:
                await asyncio.sleep(self.policy.poll_interval_seconds)

        await self._forever("pull", step)

    async def _forever(self, what: str, step: Callable[[], Awaitable[None]]) -> None:
        """Repeat a step for ever: transient failures back off with jitter, from the shortest
        wait again after each success; a permanent one (a misconfigured node, say) is logged
        and retried at the slowest pace."""
        while True:
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(TransientError),
                    before_sleep=_count_retry(what),
                    **self.policy.tenacity_kwargs(),
                ):
                    with attempt:
                        await step()
            except RelayError as exc:
                log.error(f"relay.{what}.refused", error=str(exc))
                await asyncio.sleep(self.policy.backoff_max_seconds)
            except Exception as exc:  # a locked or full database: keep the link alive, retry later
                log.error(f"relay.{what}.failed", error=type(exc).__name__)
                await asyncio.sleep(self.policy.backoff_max_seconds)

    async def heartbeat(self) -> Heartbeat:
        """This node's heartbeat; a township's carries its villages' latest ones too."""
        async with reading(self.engine) as conn:
            queued = await backlog(conn)
            last_push, last_pull = await read_value(conn, "last_push"), await read_value(conn, "last_pull")
            below = [] if self.config.role != "township" else (await conn.execute(select(nodes))).all()
            found = await audit.latest_breaks(conn) if below else {}
        return Heartbeat(
            self.config.code,
            self.config.role,
            SOFTWARE_VERSION,
            self.ledger.catalog.version,
            queued,
            now_us(),
            last_push,
            last_pull,
            below=tuple(
                _seen(row, found.get(row.code, ()))
                for row in below
                if row.last_seen and row.code != self.config.code
            ),
        )

    async def beat_once(self) -> None:
        """Send one heartbeat; best effort: a failure is logged, never raised."""
        try:
            await self.upstream.heartbeat(await self.heartbeat())
        except TransientError:
            pass
        except Exception as exc:  # never let the heartbeat end a sync or the node
            log.warning("relay.heartbeat.failed", error=type(exc).__name__)

    async def heartbeat_forever(self, every: float = HEARTBEAT_SECONDS) -> None:
        """Beat, and take the upstream's new revocations, on their own schedule: a pull that
        keeps failing (an event this node refuses) does not leave a revoked node let in."""
        while True:
            await self.beat_once()
            try:
                await self.refresh_revocations()
            except TransientError:
                pass
            except Exception as exc:  # logged, tried again at the next beat
                log.warning("relay.revocations.failed", error=type(exc).__name__)
            await asyncio.sleep(every)


def _seen(row: Any, breaks: tuple[ReportedBreak, ...]) -> Heartbeat:
    """A lower node's latest heartbeat as this node recorded it, and the breaks found in its
    chain here (passed on upward)."""
    return Heartbeat(
        row.code,
        row.role,
        row.software_version or "",
        row.catalog_version or "",
        row.backlog or 0,
        0,
        row.last_push or 0,
        row.last_pull or 0,
        last_seen=row.last_seen,
        audit_breaks=breaks,
    )
