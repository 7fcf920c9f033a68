"""What the benchmarks feed the network: village requests, and the batches the relay sends."""

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy import select

from casework import Request
from protos.v1 import relay_pb2 as pb
from relay.config import DB_FILE
from relay.node import Node
from relay.records import EventRecord
from relay.schema import events, outbox
from relay.wire import to_wire
from village_agent import service

DISTRICT, TOWNSHIP, VILLAGE = "500117", "500117001", "500117001005"
ITEM, MATERIAL = "twp-pension-enroll", "居民身份证或户口簿"
IDS = ("500117195603124322", "500117197811052166", "500117200108230041", "11010519491231002X")


def request(number: int) -> Request:
    """A valid request for a township item, as an agent would take it."""
    return Request(ITEM, f"村民{number}", IDS[number % len(IDS)], "13800000000", materials=(MATERIAL,))


async def take_cases(village: Node, count: int, first: int = 0) -> list[str]:
    """Take ``count`` requests at the village (one transaction); returns their case ids."""
    checked = [service.check(village, request(first + n), {}) for n in range(count)]
    return [taken.case_id for taken in await service.take(village, checked)]


async def outbox_records(node: Node) -> list[tuple[int, EventRecord]]:
    """Everything in a node's outbox, as (hop sequence, event), in the order it is sent."""
    query = select(outbox.c.seq, events).join(events, events.c.event_id == outbox.c.event_id)
    async with node.engine.connect() as conn:
        rows = (await conn.execute(query.order_by(outbox.c.seq))).all()
    return node.ledger.queued(rows)


def push_batches(sender: str, records: list[tuple[int, EventRecord]], size: int) -> list[bytes]:
    """The serialized PushRequests the relay would send for these events, ``size`` per batch."""
    return [
        pb.PushRequest(
            sender=sender,
            stream=1,
            envelopes=[pb.Envelope(seq=seq, event=to_wire(record)) for seq, record in records[i : i + size]],
        ).SerializeToString()
        for i in range(0, len(records), size)
    ]


def settle() -> None:
    """Write out every dirty page before a timed run: on ext4 a commit's fsync otherwise also
    waits for the megabytes the set-up just wrote, which makes the figures erratic."""
    os.sync()


def node_db(home: Path) -> Path:
    """A node's SQLite database file."""
    return home / DB_FILE


def count_rows(db: Path, table: str) -> int:
    """Rows of a table in a SQLite database, read-only."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
