"""Converting between the wire contract (protos/v1) and the relay's records."""

from protos.v1 import relay_pb2 as pb
from relay.records import EventRecord


def to_wire(record: EventRecord) -> pb.Event:
    event = pb.Event(
        event_id=record.event_id,
        case_id=record.case_id,
        origin_node=record.origin_node,
        origin_seq=record.origin_seq,
        type=record.type,
        payload=record.payload,
        catalog_version=record.catalog_version,
        village_code=record.village_code,
        township_code=record.township_code,
    )
    event.recorded_at.seconds, micros = divmod(record.recorded_at, 1_000_000)
    event.recorded_at.nanos = micros * 1000
    return event


def from_wire(event: pb.Event) -> EventRecord:
    return EventRecord(
        event_id=event.event_id,
        case_id=event.case_id,
        origin_node=event.origin_node,
        origin_seq=event.origin_seq,
        type=event.type,
        payload=event.payload,
        recorded_at=event.recorded_at.seconds * 1_000_000 + event.recorded_at.nanos // 1000,
        catalog_version=event.catalog_version,
        village_code=event.village_code,
        township_code=event.township_code,
    )
