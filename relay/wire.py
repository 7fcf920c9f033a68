"""Converting between the wire contract (protos/v1) and the relay's records."""

from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from protos.v1 import relay_pb2 as pb
from relay._chain import Link, Links
from relay.records import EventRecord, Heartbeat, ReportedBreak


def set_micros(stamp: Timestamp, micros: int) -> None:
    """Write microseconds since the epoch into a protobuf Timestamp."""
    stamp.seconds, rest = divmod(micros, 1_000_000)
    stamp.nanos = rest * 1000


def micros(stamp: Timestamp) -> int:
    """Microseconds since the epoch from a protobuf Timestamp."""
    return int(stamp.seconds * 1_000_000 + stamp.nanos // 1000)


def to_wire(record: EventRecord) -> pb.Event:
    event = pb.Event()
    fill(event, record)
    return event


def fill(event: pb.Event, record: EventRecord) -> None:
    """Write an event into a message in place: the relay's batches add their events to the
    request's own repeated field, as building each apart and copying it in costs twice as
    much (bench/README.md, "Cheaper batches at both ends")."""
    event.event_id = record.event_id
    event.case_id = record.case_id
    event.origin_node = record.origin_node
    event.origin_seq = record.origin_seq
    event.type = record.type
    event.payload = record.payload
    event.catalog_version = record.catalog_version
    event.village_code = record.village_code
    event.township_code = record.township_code
    set_micros(event.recorded_at, record.recorded_at)


def push_request(
    sender: str, stream: int, envelopes: Sequence[tuple[int, EventRecord]], chain: Links | None
) -> pb.PushRequest:
    request = pb.PushRequest(sender=sender, stream=stream)
    add = request.envelopes.add
    for seq, record in envelopes:
        fill(add(seq=seq).event, record)
    if chain is not None:
        sent = request.audit
        sent.SetInParent()  # present even when empty: a probe asks where the chain stands
        sent.first_seq, sent.prev_hash, sent.head_hash = chain.first_seq, chain.prev_hash, chain.head_hash
        add_link = sent.links.add
        for link in chain.links:
            add_link(event_id=link.event_id, event_hash=link.event_hash, staff=link.staff)
    return request


def pull_reply(head: int, reset: bool, events: Sequence[tuple[int, EventRecord]]) -> pb.PullReply:
    reply = pb.PullReply(head=head, reset=reset)
    add = reply.events.add
    for position, record in events:
        fill(add(position=position).event, record)
    return reply


def from_wire(event: pb.Event) -> EventRecord:
    return EventRecord(
        event.event_id,
        event.case_id,
        event.origin_node,
        event.origin_seq,
        event.type,
        event.payload,
        micros(event.recorded_at),
        event.catalog_version,
        event.village_code,
        event.township_code,
    )


def heartbeat_to_wire(beat: Heartbeat) -> pb.HeartbeatRequest:
    request = pb.HeartbeatRequest(
        node=beat.node,
        role=beat.role,
        software_version=beat.software_version,
        catalog_version=beat.catalog_version,
        backlog=beat.backlog,
        below=[heartbeat_to_wire(seen) for seen in beat.below],
        audit_breaks=[_break_to_wire(found) for found in beat.audit_breaks],
    )
    for field, value in (
        (request.sent_at, beat.sent_at),
        (request.last_push, beat.last_push),
        (request.last_pull, beat.last_pull),
        (request.last_seen, beat.last_seen),
    ):
        if value:
            set_micros(field, value)
    return request


def heartbeat_from_wire(request: pb.HeartbeatRequest, depth: int = 0) -> Heartbeat:
    """A heartbeat as received; entries of ``below`` have no ``below`` of their own."""
    return Heartbeat(
        node=request.node,
        role=request.role,
        software_version=request.software_version,
        catalog_version=request.catalog_version,
        backlog=request.backlog,
        sent_at=micros(request.sent_at),
        last_push=micros(request.last_push),
        last_pull=micros(request.last_pull),
        last_seen=micros(request.last_seen),
        below=tuple(heartbeat_from_wire(seen, depth + 1) for seen in request.below) if depth == 0 else (),
        audit_breaks=tuple(
            ReportedBreak(found.seq, found.reason, micros(found.recorded_at))
            for found in request.audit_breaks
        ),
    )


def _break_to_wire(found: ReportedBreak) -> pb.AuditBreak:
    sent = pb.AuditBreak(seq=found.seq, reason=found.reason)
    set_micros(sent.recorded_at, found.recorded_at)
    return sent


def links_from_wire(request: pb.PushRequest) -> Links | None:
    """The audit rows a push carries; None if it carries none (an older sender)."""
    if not request.HasField("audit"):
        return None
    got = request.audit
    found = tuple(Link(k.event_id, k.event_hash, k.staff) for k in got.links)
    return Links(got.first_seq, got.prev_hash, found, got.head_hash)
