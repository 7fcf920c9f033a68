"""The baseline: the relay's batches pushed with raw grpc.aio into plain sqlite3.

A baseline server parses each serialized PushRequest, writes its events with one executemany
in one transaction (WAL, synchronous=FULL: the product's durability) into a table made from
the product's own ``events`` schema, commits, and only then acks. Nothing else: no inbox
bookkeeping, no projection onto cases, no outbox. It runs in a process of its own, as the
product's servers do, and serves the same bytes both unary and as a bidirectional stream.
The pushers are stop-and-wait, one batch in flight, each awaiting its ack before sending the
next; the product's forwarder keeps ``relay.sync.PUSH_WINDOW`` batches in flight.
With ``forward`` it also relays what it committed to the next baseline server as soon as it
is committed (the latency baseline's middle hop).
"""

import asyncio
import multiprocessing
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path

import grpc
from sqlalchemy import create_engine

from bench.workload import count_rows, settle
from protos.v1 import relay_pb2 as pb
from relay.schema import events
from relay.server import SERVER_OPTIONS
from relay.upstream import CHANNEL_OPTIONS
from tests.netkit import free_port

SERVICE = "bench.RawRelay"
UNARY, STREAM = f"/{SERVICE}/Push", f"/{SERVICE}/PushStream"
COLUMNS = (
    "event_id, case_id, origin_node, origin_seq, type, payload, recorded_at, catalog_version, "
    "village_code, township_code, via"
)
INSERT = f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
TIMEOUT = 10.0


def open_db(path: Path) -> sqlite3.Connection:
    """A durable sqlite3 connection to a database holding the product's events table."""
    engine = create_engine(f"sqlite:///{path}")
    events.create(engine, checkfirst=True)
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


class Inbox:
    """Applies serialized PushRequests: one transaction per batch, then a serialized PushAck."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def apply(self, data: bytes) -> bytes:
        """Write a batch's events durably; returns the ack to send back."""
        request = pb.PushRequest.FromString(data)
        rows = [
            (
                e.event.event_id,
                e.event.case_id,
                e.event.origin_node,
                e.event.origin_seq,
                e.event.type,
                e.event.payload,
                e.event.recorded_at.seconds * 1_000_000 + e.event.recorded_at.nanos // 1000,
                e.event.catalog_version,
                e.event.village_code,
                e.event.township_code,
                request.sender,
            )
            for e in request.envelopes
        ]
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(INSERT, rows)
        self.conn.execute("COMMIT")
        return pb.PushAck(applied_upto=request.envelopes[-1].seq).SerializeToString()


def serve(db: str, port: int, forward: str | None, ready: ProcessEvent) -> None:
    """A baseline server's process: serve until terminated."""
    asyncio.run(_serve(Path(db), port, forward, ready))


async def _serve(db: Path, port: int, forward: str | None, ready: ProcessEvent) -> None:
    """Serve Push and PushStream on 127.0.0.1:port; set ``ready`` once listening."""
    inbox = Inbox(open_db(db))
    relayed: asyncio.Queue[bytes] = asyncio.Queue()

    async def push(data: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        """One batch, acked once committed (and queued for the next server, if any)."""
        ack = inbox.apply(data)
        if forward:
            relayed.put_nowait(data)
        return ack

    async def push_stream(
        requests: AsyncIterator[bytes], _context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        """Batches over one stream, each acked once committed."""
        async for data in requests:
            yield inbox.apply(data)

    server = grpc.aio.server(options=SERVER_OPTIONS)
    handlers = {
        "Push": grpc.unary_unary_rpc_method_handler(push),
        "PushStream": grpc.stream_stream_rpc_method_handler(push_stream),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    ready.set()
    jobs = [server.wait_for_termination()]
    if forward:
        jobs.append(_forward(forward, relayed))
    await asyncio.gather(*jobs)


async def _forward(target: str, relayed: asyncio.Queue[bytes]) -> None:
    """Push each committed batch on to the next server as soon as it is committed."""
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        push = channel.unary_unary(UNARY)
        while True:
            await push(await relayed.get(), timeout=TIMEOUT)


@contextmanager
def raw_server(db: Path, forward: str | None = None) -> Iterator[str]:
    """A baseline server in its own process, on a fresh database; yields its address."""
    context = multiprocessing.get_context("spawn")
    ready, port = context.Event(), free_port()
    process = context.Process(target=serve, args=(str(db), port, forward, ready), daemon=True)
    process.start()
    try:
        if not ready.wait(30):
            raise TimeoutError(f"baseline server on port {port} did not start")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.join(10)


async def push_unary(address: str, batches: list[bytes]) -> float:
    """Seconds to push the batches one unary call at a time, each awaiting its ack."""
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        push = channel.unary_unary(UNARY)
        started = time.perf_counter()
        for batch in batches:
            await push(batch, timeout=TIMEOUT)
        return time.perf_counter() - started


async def push_stream(address: str, batches: list[bytes]) -> float:
    """Seconds to push the batches over one stream, each awaiting its ack before the next."""
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        started = time.perf_counter()
        call = channel.stream_stream(STREAM)(timeout=TIMEOUT * len(batches))
        for batch in batches:
            await call.write(batch)
            await call.read()
        await call.done_writing()
        return time.perf_counter() - started


PUSHES = {"unary": push_unary, "stream": push_stream}


async def baseline_seconds(db: Path, mode: str, batches: list[bytes], count: int) -> tuple[float, float]:
    """Seconds to push the batches (``count`` events) into a baseline server on a fresh
    database, unary or streamed (a key of PUSHES), and the CPU seconds this process (the
    sender) spent on it; checks that every event was stored."""
    with raw_server(db) as address:
        settle()
        cpu = time.process_time()
        seconds = await PUSHES[mode](address, batches)
        cpu = time.process_time() - cpu
    if (stored := count_rows(db, "events")) != count:
        raise AssertionError(f"the {mode} baseline stored {stored} of {count} events")
    return seconds, cpu
