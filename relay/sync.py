"""Store-and-forward toward the upstream: push the outbox in order, pull the feed by cursor.

The outbox is the only queue: nothing waits in memory that is not already committed. A push
is retried with backoff on transient errors; the upstream's acknowledgement (its high-water
mark for this node) is the only thing that moves the send cursor, backward as well as forward.
"""

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tenacity import AsyncRetrying, retry_if_exception_type

from relay.clock import now_us
from relay.counters import read_text, read_value, write_value
from relay.errors import RelayError, TransientError
from relay.ledger import Ledger, Refusal, dead_letter, record_from_row
from relay.records import Heartbeat
from relay.schema import events, outbox
from relay.upstream import Upstream

log = structlog.get_logger()
SOFTWARE_VERSION = "0.1.0"
PULL_WAIT_MS = 10_000  # long poll while online: status reaches the village within a moment
HEARTBEAT_SECONDS = 60.0
PROBE_SECONDS = 30.0  # an idle forwarder asks the upstream for its mark this often


@dataclass(frozen=True, slots=True)
class SyncReport:
    pushed: int
    pulled: int
    rejected: int
    backlog: int


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
        self.stream = int.from_bytes(os.urandom(8), "big") >> 1  # this sender's stream, see PushRequest

    async def push_once(self, probe: bool = False) -> tuple[int, int]:
        """Send one batch from the outbox; returns (events acknowledged, rejected). With
        nothing to send, a probe still asks the upstream for its mark: an upstream restored
        from an older backup answers lower, and the rows it lost become the backlog again."""
        async with self.engine.connect() as conn:
            acked = await read_value(conn, "acked_upto")
            if self._next_seq is None:
                self._next_seq = acked + 1
            rows = (
                await conn.execute(
                    select(outbox.c.seq, events)
                    .join(events, events.c.event_id == outbox.c.event_id)
                    .where(outbox.c.seq >= self._next_seq)
                    .order_by(outbox.c.seq)
                    .limit(self.policy.batch_size)
                )
            ).all()
        if not rows and not probe:
            return 0, 0
        envelopes = [(row.seq, record_from_row(row)) for row in rows]
        first = envelopes[0][0] if envelopes else self._next_seq
        if first != self._next_seq and self._next_seq <= acked:
            log.error("relay.replay.impossible", expected=self._next_seq, oldest=first)
        result = await self.upstream.push(self.config.code, self.stream, envelopes)
        async with self.engine.begin() as conn:
            await write_value(conn, "acked_upto", result.applied_upto)
            await write_value(conn, "last_push", now_us())
            if result.rejected:
                by_seq = dict(envelopes)
                await dead_letter(
                    conn,
                    "out",
                    self.config.upstream_code,
                    [(r.seq, by_seq[r.seq], r.reason) for r in result.rejected if r.seq in by_seq],
                )
            await self._prune(conn, result.applied_upto)
        if result.applied_upto < first - 1:
            log.warning("relay.push.rewind", upstream_expects=result.applied_upto + 1, sent=first)
        sent = max(0, result.applied_upto - first + 1) if envelopes else 0
        self._next_seq = result.applied_upto + 1
        if envelopes:
            log.info("relay.batch.acked", upto=result.applied_upto, rejected=len(result.rejected))
        return sent, len(result.rejected)

    async def _prune(self, conn: AsyncConnection, acked: int) -> None:
        """Forget acknowledged rows older than the retention period (kept for replay)."""
        horizon = now_us() - int(self.policy.retention_days * 86_400 * 1_000_000)
        await conn.execute(delete(outbox).where(outbox.c.seq <= acked, outbox.c.created_at < horizon))

    async def pull_once(self, wait_ms: int = 0) -> tuple[int, int]:
        """Apply one page of the upstream's feed; returns (events received, refused)."""
        async with self.engine.connect() as conn:
            cursor, cursor_event = await read_value(conn, "pull_cursor"), await read_text(conn, "pull_cursor")
        page = await self.upstream.pull(
            self.config.code, cursor, cursor_event, self.policy.batch_size, wait_ms
        )
        async with self.engine.begin() as conn:
            if page.reset:
                log.warning("relay.pull.reset", cursor=cursor)
                await write_value(conn, "pull_cursor", 0, "")
        if page.reset:
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
            await write_value(conn, "last_pull", now_us())
        return len(page.events), len(refused)

    async def sync(self, give_up_after: float | None) -> SyncReport:
        """Push everything queued, then pull everything addressed here; retry transient
        failures with backoff until ``give_up_after`` seconds have passed."""
        pushed = pulled = rejected = 0
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TransientError), **self.policy.tenacity_kwargs(give_up_after)
        ):
            with attempt:
                while True:
                    sent, refused = await self.push_once()
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
        async with self.engine.connect() as conn:
            left = await backlog(conn)
        return SyncReport(pushed, pulled, rejected, left)

    async def _drained(self) -> bool:
        async with self.engine.connect() as conn:
            return await backlog(conn) == 0

    async def forward_forever(self) -> None:
        """Push whenever the outbox has something; back off while the upstream is away."""

        idle_since = asyncio.get_running_loop().time()

        async def step() -> None:
            nonlocal idle_since
            now = asyncio.get_running_loop().time()
            sent, refused = await self.push_once(probe=now - idle_since > PROBE_SECONDS)
            if sent or refused or now - idle_since > PROBE_SECONDS:
                idle_since = now
            if sent == 0 and refused == 0:
                await asyncio.sleep(self.policy.poll_interval_seconds)

        await self._forever("push", step)

    async def pull_forever(self) -> None:
        """Long-poll the upstream's feed; back off while it is away."""

        async def step() -> None:
            got, _ = await self.pull_once(wait_ms=PULL_WAIT_MS)
            if got == 0:
                await asyncio.sleep(self.policy.poll_interval_seconds)

        await self._forever("pull", step)

    async def _forever(self, what: str, step: Callable[[], Awaitable[None]]) -> None:
        """Repeat a step for ever: transient failures back off with jitter; a permanent one
        (a misconfigured node, say) is logged and retried at the slowest pace."""
        while True:
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(TransientError), **self.policy.tenacity_kwargs()
                ):
                    with attempt:
                        while True:
                            await step()
            except RelayError as exc:
                log.error(f"relay.{what}.refused", error=str(exc))
                await asyncio.sleep(self.policy.backoff_max_seconds)

    async def heartbeat_forever(self) -> None:
        while True:
            try:
                async with self.engine.connect() as conn:
                    queued = await backlog(conn)
                await self.upstream.heartbeat(
                    Heartbeat(
                        self.config.code,
                        self.config.role,
                        SOFTWARE_VERSION,
                        self.ledger.catalog.version,
                        queued,
                        now_us(),
                    )
                )
            except TransientError:
                pass
            await asyncio.sleep(HEARTBEAT_SECONDS)
