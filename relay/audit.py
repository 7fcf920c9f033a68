"""Every node's audit trail: an append-only, hash-chained log of the events it applied and the
staff member behind each (relay/_chain.py has the hashing), written in the transaction that
applies them. A node sends the rows of its chain upward with its pushes; its upstream checks
that they follow from the last row it received (its witness) and records a break as a
security event. ``<node> audit verify`` recomputes a node's own chain.
"""

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from relay._chain import (
    GENESIS,
    Break,
    Link,
    Links,
    Witness,
    event_digest,
    follow,
    mismatched,
    row_digest,
    row_hash,
)
from relay.clock import iso, now_us
from relay.db import insert_many
from relay.records import EventRecord
from relay.schema import audit, audit_breaks, audit_peers, events

__all__ = ["Links", "Verdict", "append", "breaks", "links_from", "receive", "verify", "witnesses"]

VERIFY_PAGE = 5000
log = structlog.get_logger()


async def append(conn: AsyncConnection, rows: Sequence[dict[str, Any]], staff: Sequence[str]) -> None:
    """Chain the events just applied (``events`` rows, in order) with who acted on each."""
    last = select(audit.c.seq, audit.c.row_hash).order_by(audit.c.seq.desc()).limit(1)
    head = (await conn.execute(last)).first()
    seq, prev = (head.seq, head.row_hash) if head else (0, GENESIS)
    entries = []
    for row, name in zip(rows, staff, strict=True):
        seq += 1
        digest = row_digest(row)
        current = row_hash(prev, seq, digest, name)
        entries.append(
            {
                "seq": seq,
                "event_id": row["event_id"],
                "event_hash": digest,
                "staff": name,
                "prev_hash": prev,
                "row_hash": current,
            }
        )
        prev = current
    await insert_many(conn, audit, entries)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A node's own chain, recomputed: rows checked, the head, and the first broken row."""

    rows: int
    head: Witness
    problem: str = ""  # one line naming the row; "" when the chain is whole


_EVENT = [events.c[name].label(f"e_{name}") for name in EventRecord.__slots__]


async def verify(conn: AsyncConnection) -> Verdict:
    """Recompute the chain row by row against the events it names; then look for an event
    applied without a row."""
    checked, prev, after = 0, GENESIS, 0
    while True:
        page = (
            await conn.execute(
                select(audit, *_EVENT)
                .outerjoin(events, events.c.event_id == audit.c.event_id)
                .where(audit.c.seq > after)
                .order_by(audit.c.seq)
                .limit(VERIFY_PAGE)
            )
        ).all()
        for row in page:
            problem = _broken(row, checked + 1, prev)
            if problem:
                return Verdict(checked, Witness(checked, prev), problem)
            checked, prev = checked + 1, row.row_hash
        if len(page) < VERIFY_PAGE:
            break
        after = page[-1].seq
    head = Witness(checked, prev)
    unchained = (
        await conn.execute(
            select(events.c.position, events.c.event_id)
            .where(~exists().where(audit.c.event_id == events.c.event_id))
            .order_by(events.c.position)
            .limit(1)
        )
    ).first()
    if unchained is not None:
        problem = f"event {unchained.event_id} (position {unchained.position}) has no audit row"
        return Verdict(checked, head, problem)
    return Verdict(checked, head)


def _broken(row: Any, seq: int, prev: bytes) -> str:
    """What is wrong with one row of the chain, expected to be row ``seq`` after ``prev``."""
    where = f"audit row {row.seq} (event {row.event_id})"
    if row.seq != seq:
        return f"audit row {seq} is missing (the next is row {row.seq})"
    if row.prev_hash != prev:
        return f"{where}: its previous hash is not row {seq - 1}'s hash"
    try:
        whole = row_hash(prev, seq, row.event_hash, row.staff) == row.row_hash
    except (TypeError, AttributeError):  # a value of another type written into the row
        whole = False
    if not whole:
        return f"{where}: the row was edited (its hash does not match its content)"
    if row.e_event_id is None:
        return f"{where}: the event is missing from the events table"
    try:
        same = event_digest([row._mapping[f"e_{name}"] for name in EventRecord.__slots__]) == row.event_hash
    except (TypeError, AttributeError, ValueError, struct.error):
        same = False
    if not same:
        return f"{where}: the event was edited after it was applied"
    return ""


async def links_from(conn: AsyncConnection, first: int, most: int) -> Links:
    """Rows ``first`` on of this node's chain (at most ``most``), to send upward."""
    rows = (
        await conn.execute(
            select(audit).where(audit.c.seq >= first - 1).order_by(audit.c.seq).limit(most + 1)
        )
    ).all()
    prev = GENESIS
    if rows and rows[0].seq == first - 1:
        prev, rows = rows[0].row_hash, rows[1:]
    if not rows:
        return Links(first, GENESIS, (), GENESIS)
    found = tuple(Link(r.event_id, r.event_hash, r.staff) for r in rows[:most])
    return Links(rows[0].seq, prev, found, rows[len(found) - 1].row_hash)


async def receive(
    conn: AsyncConnection, sender: str, sent: Links | None, records: Sequence[EventRecord]
) -> int:
    """Check the rows of a sender's chain that came with its push against the witness kept
    for it, and the pushed events against their rows; record a break. Returns the last row
    of the sender's chain held here (the sender continues after it)."""
    kept = (await conn.execute(select(audit_peers).where(audit_peers.c.node == sender))).first()
    witness = Witness(kept.seq, kept.row_hash) if kept else Witness()
    if sent is None:
        return witness.seq
    after, found = follow(witness, sent)
    changed = mismatched(sent, records) if found is None else ""
    if changed:
        found = Break(sent.first_seq, f"event {changed} differs from its row in the sender's chain")
    if found is not None:
        await _record_break(conn, sender, found)
    if after != witness:
        values = {"seq": after.seq, "row_hash": after.hash, "updated_at": now_us()}
        if kept is None:
            await conn.execute(audit_peers.insert().values(node=sender, **values))
        else:
            await conn.execute(audit_peers.update().where(audit_peers.c.node == sender).values(**values))
    return after.seq


async def _record_break(conn: AsyncConnection, sender: str, found: Break) -> None:
    log.warning("security.audit_break", sender=sender, seq=found.seq, reason=found.reason)
    row = {"node": sender, "seq": found.seq, "reason": found.reason, "recorded_at": now_us()}
    await conn.execute(audit_breaks.insert().values(**row))


async def breaks(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The breaks found in lower nodes' chains as they were received, oldest first."""
    rows = (await conn.execute(select(audit_breaks).order_by(audit_breaks.c.id))).all()
    return [
        {"node": r.node, "seq": r.seq, "reason": r.reason, "recorded_at": iso(r.recorded_at)} for r in rows
    ]


async def witnesses(conn: AsyncConnection) -> list[dict[str, Any]]:
    """How far this node holds each lower node's chain, checked, and since when."""
    rows = (await conn.execute(select(audit_peers).order_by(audit_peers.c.node))).all()
    return [
        {"node": r.node, "seq": r.seq, "head_hash": r.row_hash.hex(), "updated_at": iso(r.updated_at)}
        for r in rows
    ]
