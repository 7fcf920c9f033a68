"""Watching the hub's PostgreSQL database from the bench: what arrived, and when."""

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress

import asyncpg

SUBMITTED = "case.submitted"
READ_LIMIT = 20_000
RECONNECT_LIMIT = 60.0  # seconds the watcher keeps trying to reach PostgreSQL again


class HubWatch:
    """Reads every new event at the hub by position (the hub commits them in position order:
    relay.db.serialize_writers) every ``interval`` seconds, with its own connection; notes when
    each submitted case first appeared, counts events by origin node, and reads every sender's
    inbox mark. In ``light`` mode it reads only the highest position (during the ingest burst,
    so that watching costs the database almost nothing)."""

    def __init__(self, dsn: str, interval: float = 0.02) -> None:
        self.dsn = dsn
        self.interval = interval
        self.seen: dict[str, float] = {}  # case id -> perf_counter when first seen
        self.by_origin: Counter[str] = Counter()
        self.marks: dict[str, int] = {}  # sender -> applied_upto
        self.last = 0  # highest position read
        self.head = 0  # highest position known (light mode too)
        self.light = False
        self.timeline: list[tuple[float, int]] = []  # (perf_counter, head) in light mode
        self.polled = asyncio.Event()
        self.conn: asyncpg.Connection | None = None
        self.failed: Exception | None = None
        self.reconnects = 0
        self.last_error = ""

    async def open(self) -> None:
        self.conn = await asyncpg.connect(self.dsn, server_settings={"application_name": "bench-watch"})
        self.last = self.head = int(await self.conn.fetchval("SELECT coalesce(max(position), 0) FROM events"))

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def poll(self) -> None:
        assert self.conn is not None
        if self.light:
            self.head = int(await self.conn.fetchval("SELECT coalesce(max(position), 0) FROM events"))
            self.timeline.append((time.perf_counter(), self.head))
        else:
            rows = await self.conn.fetch(
                "SELECT position, case_id, origin_node, type FROM events WHERE position > $1"
                " ORDER BY position LIMIT $2",
                self.last,
                READ_LIMIT,
            )
            now = time.perf_counter()
            for position, case_id, origin, kind in rows:
                self.by_origin[origin] += 1
                if kind == SUBMITTED:
                    self.seen.setdefault(case_id, now)
                self.last = position
            self.head = max(self.head, self.last)
            marks = await self.conn.fetch("SELECT sender, applied_upto FROM inbox_peers")
            self.marks = {row["sender"]: int(row["applied_upto"]) for row in marks}
        self.polled.set()
        self.polled = asyncio.Event()

    def skip_to_head(self) -> None:
        """After light mode: read on from the head, not the events it skipped."""
        self.last = self.head

    async def run(self) -> None:
        """Poll until cancelled. A lost connection (PostgreSQL restarted under the run, say) is
        made again, for up to RECONNECT_LIMIT seconds; ``reconnects`` counts them."""
        lost_since = 0.0
        try:
            while True:
                started = time.perf_counter()
                try:
                    await self.poll()
                    lost_since = 0.0
                except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
                    lost_since = lost_since or started
                    if started - lost_since > RECONNECT_LIMIT:
                        raise
                    self.reconnects += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"[:200]
                    await asyncio.sleep(0.5)
                    with suppress(Exception):
                        await self.reopen()
                    continue
                await asyncio.sleep(max(0.0, self.interval - (time.perf_counter() - started)))
        except Exception as exc:
            self.failed = exc
            self.polled.set()  # wake the waiters: they raise it
            raise

    async def reopen(self) -> None:
        if self.conn is not None:
            self.conn.terminate()
        self.conn = await asyncpg.connect(self.dsn, server_settings={"application_name": "bench-watch"})

    async def until(self, condition: Callable[[], bool], limit: float) -> float:
        """The perf_counter time of the first poll after which ``condition`` holds; 0.0 if it
        did not within ``limit`` seconds."""
        deadline = time.perf_counter() + limit
        while not condition():
            if self.failed is not None:
                raise RuntimeError("watching the hub failed") from self.failed
            if time.perf_counter() > deadline:
                return 0.0
            await self.polled.wait()
        return time.perf_counter()

    async def fresh(self) -> None:
        """Wait for the next poll to finish."""
        await self.polled.wait()
        if self.failed is not None:
            raise RuntimeError("watching the hub failed") from self.failed


async def backend_pids(conn: asyncpg.Connection, database: str, ports: set[int]) -> set[int]:
    """PostgreSQL backends of ``database`` whose client connected from one of ``ports``."""
    rows = await conn.fetch(
        "SELECT pid, client_port FROM pg_stat_activity WHERE datname = $1 AND client_port IS NOT NULL",
        database,
    )
    return {int(row["pid"]) for row in rows if row["client_port"] in ports}


def client_ports(pid: int) -> set[int]:
    """Local TCP ports of the sockets a process holds (Linux /proc)."""
    inodes = set()
    try:
        fd_dir = f"/proc/{pid}/fd"
        for name in os.listdir(fd_dir):
            try:
                target = os.readlink(f"{fd_dir}/{name}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[9] in inodes:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports
