"""Every node's audit trail: an append-only, hash-chained log of the events it applied and the
staff member behind each (relay/_chain.py has the hashing), written in the transaction that
applies them. A node sends the rows of its chain upward with its pushes; its upstream checks
that they follow from the last row it received (its witness) and records a break as a
security event. ``<node> audit verify`` recomputes a node's own chain.
"""

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    record_digest,
    row_hash,
)
from relay.clock import iso, now_us
from relay.db import insert_many
from relay.errors import RelayError
from relay.privacy import FORGOTTEN
from relay.records import EVENT_FIELDS, EventRecord, ReportedBreak
from relay.schema import audit, audit_breaks, audit_peers, events
from relay.vault import Vault

__all__ = [
    "Links",
    "Received",
    "Verdict",
    "append",
    "breaks",
    "latest_breaks",
    "links_from",
    "receive",
    "reported",
    "row_of",
    "verify",
    "witnesses",
]

VERIFY_PAGE = 5000
PASSED_ON = 10  # breaks per lower node a heartbeat passes on upward, the latest
_REASON_CHARS = 300
log = structlog.get_logger()


async def append(
    conn: AsyncConnection, applied: Sequence[tuple[EventRecord, str]], digests: Mapping[str, bytes]
) -> None:
    """Chain the events just applied, in order, each with who acted on it; ``digests`` holds
    those of some of them, computed already."""
    last = select(audit.c.seq, audit.c.row_hash).order_by(audit.c.seq.desc()).limit(1)
    head = (await conn.execute(last)).first()
    seq, prev = (head.seq, head.row_hash) if head else (0, GENESIS)
    entries = []
    for record, name in applied:
        seq += 1
        digest = digests.get(record.event_id) or record_digest(record)
        current = row_hash(prev, seq, digest, name)
        entries.append(
            {
                "seq": seq,
                "event_id": record.event_id,
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


_EVENT = [events.c[name].label(f"e_{name}") for name in EVENT_FIELDS]


async def verify(conn: AsyncConnection, vault: Vault) -> Verdict:
    """Recompute the chain row by row against the events it names (their payloads opened with
    the node's ``vault``: a village seals them); then look for an event applied without a row."""
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
            problem = _broken(row, checked + 1, prev, vault)
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


def _forgotten(payload: bytes) -> bool:
    given = json.loads(payload)
    return isinstance(given, dict) and given.get(FORGOTTEN) is True


def _broken(row: Any, seq: int, prev: bytes, vault: Vault) -> str:
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
    fields = {name: row._mapping[f"e_{name}"] for name in EVENT_FIELDS}
    try:
        fields["payload"] = vault.open_payload(row.e_case_id, row.e_event_id, fields["payload"])
        same = event_digest(list(fields.values())) == row.event_hash
        # A village that forgot an applicant (relay.privacy) keeps a trimmed payload, sealed
        # under its key: only the chain of such an event can still be checked.
        same = same or (vault.sealing and _forgotten(fields["payload"]))
    except (TypeError, AttributeError, ValueError, struct.error, RelayError):
        same = False
    if not same:
        return f"{where}: the event was edited after it was applied"
    return ""


async def links_from(conn: AsyncConnection, first: int, upto: int | None, most: int) -> Links:
    """Rows ``first`` to ``upto`` (None: the last) of this node's chain, at most ``most`` of
    them, to send upward."""
    query = select(audit.c.seq, audit.c.event_id, audit.c.event_hash, audit.c.staff, audit.c.row_hash)
    query = query.where(audit.c.seq >= first - 1)
    if upto is not None:
        query = query.where(audit.c.seq <= upto)
    rows = (await conn.execute(query.order_by(audit.c.seq).limit(most + 1))).all()
    prev = GENESIS
    if rows and rows[0][0] == first - 1:
        prev, rows = rows[0][4], rows[1:]
    if not rows:
        return Links(first, GENESIS, (), GENESIS)
    found = tuple(Link(row[1], row[2], row[3]) for row in rows[:most])
    return Links(rows[0][0], prev, found, rows[len(found) - 1][4])


async def row_of(conn: AsyncConnection, event_id: str) -> int | None:
    """The number of the chain row of an event applied here."""
    found: int | None = (await conn.execute(select(audit.c.seq).where(audit.c.event_id == event_id))).scalar()
    return found


@dataclass(frozen=True, slots=True)
class Received:
    """What the receiver holds of a sender's chain after a push, and the digests it computed
    of the pushed events (for its own chain: relay.ledger)."""

    upto: int
    digests: dict[str, bytes] = field(default_factory=dict)


async def receive(
    conn: AsyncConnection, sender: str, sent: Links | None, records: Sequence[EventRecord]
) -> Received:
    """Check the rows of a sender's chain that came with its push against the witness kept
    for it, and the pushed events against their rows; record a break. The sender continues
    after the row returned."""
    kept = (await conn.execute(select(audit_peers).where(audit_peers.c.node == sender))).first()
    witness = Witness(kept.seq, kept.row_hash) if kept else Witness()
    if sent is None:
        return Received(witness.seq)
    after, found = follow(witness, sent)
    changed, digests = mismatched(sent, records)
    if changed and found is None:
        found = Break(sent.first_seq, f"event {changed} differs from its row in the sender's chain")
    if found is not None:
        await _record_break(conn, sender, found)
    if after != witness:
        values = {"seq": after.seq, "row_hash": after.hash, "updated_at": now_us()}
        if kept is None:
            await conn.execute(audit_peers.insert().values(node=sender, **values))
        else:
            await conn.execute(audit_peers.update().where(audit_peers.c.node == sender).values(**values))
    return Received(after.seq, digests)


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


async def latest_breaks(conn: AsyncConnection, most: int = PASSED_ON) -> dict[str, tuple[ReportedBreak, ...]]:
    """The latest ``most`` breaks found here in each lower node's chain, oldest first: a
    township passes them on to the district with its heartbeat."""
    rows = (
        await conn.execute(select(audit_breaks).order_by(audit_breaks.c.id.desc()).limit(100 * most))
    ).all()
    found: dict[str, list[ReportedBreak]] = {}
    for r in rows:
        kept = found.setdefault(r.node, [])
        if len(kept) < most:
            kept.append(ReportedBreak(r.seq, r.reason, r.recorded_at))
    return {node: tuple(reversed(kept)) for node, kept in found.items()}


async def reported(conn: AsyncConnection, township: str, node: str, sent: Sequence[ReportedBreak]) -> None:
    """Keep the breaks a township found in one of its villages' chains, each once (heartbeats
    pass the latest on again and again), with a reason naming the township."""
    fits = [b for b in sent[:PASSED_ON] if 0 <= b.seq < 2**63 and 0 <= b.recorded_at < 2**63]
    if not fits:
        return
    query = select(audit_breaks.c.seq, audit_breaks.c.reason, audit_breaks.c.recorded_at)
    kept = {tuple(r) for r in (await conn.execute(query.where(audit_breaks.c.node == node))).all()}
    for found in fits:
        said = "".join(c if c.isprintable() else "?" for c in found.reason[:_REASON_CHARS])
        reason = f"reported by township {township}: {said}"
        if (found.seq, reason, found.recorded_at) not in kept:
            kept.add((found.seq, reason, found.recorded_at))
            log.warning("security.audit_break", sender=node, reported_by=township, seq=found.seq)
            row = {"node": node, "seq": found.seq, "reason": reason, "recorded_at": found.recorded_at}
            await conn.execute(audit_breaks.insert().values(**row))


async def witnesses(conn: AsyncConnection) -> list[dict[str, Any]]:
    """How far this node holds each lower node's chain, checked, and since when."""
    rows = (await conn.execute(select(audit_peers).order_by(audit_peers.c.node))).all()
    return [
        {"node": r.node, "seq": r.seq, "head_hash": r.row_hash.hex(), "updated_at": iso(r.updated_at)}
        for r in rows
    ]
