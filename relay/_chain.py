"""The audit trail's hash chain, as pure functions: an event's digest, a row's hash, and a
receiver's check of a stretch of its sender's chain against what it received before.

Row ``seq`` of a node's chain holds the digest of the event it applied and the staff member
behind it; its hash covers the previous row's hash, so a row edited, removed or inserted
changes every hash after it. A node's own database can be rewritten whole by someone who
recomputes the hashes; the upstream, which keeps the last hash it received from each node
below (its witness), then sees that the rows it was sent no longer follow from it.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from operator import attrgetter, itemgetter
from typing import Any

from relay.records import EVENT_FIELDS, EventRecord

GENESIS = bytes(32)  # the "previous row hash" of row 1
HASH_BYTES = 32
MAX_STAFF = 64
MAX_LINKS = 5000  # rows of its chain one push may carry

_FIELDS = itemgetter(*EVENT_FIELDS)  # an event's fields in the record's order
_FIELDS_OF = attrgetter(*EVENT_FIELDS)


def event_digest(fields: Sequence[Any]) -> bytes:
    """SHA-256 of an event's fields (EventRecord's order): its two numbers, then each text
    preceded by its length, then the payload; so no two different events share an encoding."""
    (event_id, case_id, origin, origin_seq, kind, payload, recorded_at, catalog, village, township) = fields
    if not isinstance(payload, bytes):  # a payload overwritten with text (sqlite3 by hand)
        payload = str(payload).encode()
    head = (
        f"{origin_seq} {recorded_at} {len(event_id)} {event_id}{len(case_id)} {case_id}"
        f"{len(origin)} {origin}{len(kind)} {kind}{len(catalog)} {catalog}"
        f"{len(village)} {village}{len(township)} {township}"
    )
    return sha256(head.encode() + payload).digest()


def row_digest(row: Mapping[Any, Any]) -> bytes:
    """The digest of an event held as a row (``events``)."""
    return event_digest(_FIELDS(row))


def record_digest(record: EventRecord) -> bytes:
    """The digest of an event as received or made."""
    return event_digest(_FIELDS_OF(record))


def row_hash(prev: bytes, seq: int, event_hash: bytes, staff: str) -> bytes:
    """The hash of chain row ``seq``: the previous row's hash, the row's number, the event's
    digest and who acted."""
    return sha256(prev + seq.to_bytes(8, "big") + event_hash + staff.encode()).digest()


def staff_of(payload: Mapping[str, Any]) -> str:
    """The staff member an event's payload names (staff actions carry one), else ""."""
    name = payload.get("staff", "")
    if not isinstance(name, str):
        return ""
    return name[:MAX_STAFF].encode(errors="replace").decode()  # a lone surrogate becomes "?"


@dataclass(frozen=True, slots=True)
class Link:
    """One row of a sender's chain as it travels upward (its number is implied)."""

    event_id: str
    event_hash: bytes
    staff: str


@dataclass(frozen=True, slots=True)
class Links:
    """Rows first_seq, first_seq + 1, ... of a sender's chain, with the hash of the row before
    them and the hash the sender holds for the last of them."""

    first_seq: int
    prev_hash: bytes
    links: tuple[Link, ...]
    head_hash: bytes

    @property
    def last_seq(self) -> int:
        return self.first_seq + len(self.links) - 1


@dataclass(frozen=True, slots=True)
class Witness:
    """What a receiver keeps of a sender's chain: its last row number and that row's hash."""

    seq: int = 0
    hash: bytes = GENESIS


@dataclass(frozen=True, slots=True)
class Break:
    """Where a sender's chain stopped following from what was received before, and why."""

    seq: int
    reason: str


_REWRITTEN = "differs from the one received before: rewritten, or restored from a backup"


def follow(witness: Witness, sent: Links) -> tuple[Witness, Break | None]:
    """Check a stretch of a sender's chain against the witness: returns the new witness and
    where the chain is broken, if it is. A stretch that starts past the witness is left for
    the sender to send again from there."""
    if not sent.links or sent.first_seq > witness.seq + 1:
        return witness, None
    found, current = None, sent.prev_hash
    if sent.first_seq == witness.seq + 1 and current != witness.hash:
        found = Break(witness.seq, f"row {witness.seq} {_REWRITTEN}")
    for seq, link in enumerate(sent.links, sent.first_seq):
        current = row_hash(current, seq, link.event_hash, link.staff)
        if seq == witness.seq and current != witness.hash and found is None:
            found = Break(seq, f"row {seq} {_REWRITTEN}")
    if current != sent.head_hash and found is None:
        reason = f"rows {sent.first_seq} to {sent.last_seq} do not hash to the head sent with them"
        found = Break(sent.first_seq, reason)
    if sent.last_seq < witness.seq:
        return witness, found
    return Witness(sent.last_seq, sent.head_hash), found


def check_links(sent: Links, most: int) -> None:
    """Refuse a stretch that is not one (ValueError): sizes, row numbers, hash lengths."""
    if len(sent.links) > most:
        raise ValueError(f"{len(sent.links)} audit links exceed the limit of {most}")
    if sent.links and not 1 <= sent.first_seq <= sent.last_seq < 2**63:
        raise ValueError("audit rows are numbered from 1 to 2^63 - 1")
    hashes = [sent.prev_hash, sent.head_hash] if sent.links else []
    if any(len(h) != HASH_BYTES for h in hashes + [link.event_hash for link in sent.links]):
        raise ValueError(f"an audit hash is not {HASH_BYTES} bytes")
    if any(len(link.staff) > MAX_STAFF or len(link.event_id) > 64 for link in sent.links):
        raise ValueError(f"an audit link's staff or event id is longer than {MAX_STAFF} characters")


def mismatched(sent: Links, records: Sequence[EventRecord]) -> tuple[str, dict[str, bytes]]:
    """The first pushed event whose content differs from its row in the sender's chain sent
    with it ("" if none), and the digests computed of the events checked."""
    recorded = {link.event_id: link.event_hash for link in sent.links}
    digests, first = {}, ""
    for record in records:
        expected = recorded.get(record.event_id)
        if expected is not None:
            digests[record.event_id] = digest = record_digest(record)
            if digest != expected and not first:
                first = record.event_id
    return first, digests
