"""Hostile and malformed input against a real gRPC server on a loopback port.

The township node of the ``net`` fixture serves its Relay in-process, in plaintext
(INSECURE_LOOPBACK: the sender named in a message is taken at its word, so these tests reach
the checks behind the certificate's; tests/test_tls.py covers those); requests come from a
raw channel (bytes, no serializer) or the generated stubs, as a broken or hostile peer would
send them. After each refusal the node must have written nothing and must keep serving.
"""

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, func, select

from casework import InvalidInput, Request
from casework.lifecycle import ACCEPTED
from protos.v1 import relay_pb2 as pb
from protos.v1 import relay_pb2_grpc as pb_grpc
from relay import metrics
from relay import service as relay_service
from relay._budget import CallBudget
from relay.audit import verify as verify_chain
from relay.certify import Certified, Standing
from relay.db import create_schema, open_engine
from relay.enrollment import (
    EnrollmentServicer,
    TokenRefused,
    enroll_with_token,
    make_token,
    parse_token,
    proof,
    redeem,
    start_enrollment,
)
from relay.errors import PermanentError
from relay.node import Node
from relay.pki import make_request
from relay.records import EventRecord
from relay.schema import (
    audit,
    audit_breaks,
    audit_peers,
    cases,
    dead_letters,
    events,
    inbox_peers,
    nodes,
    outbox,
)
from relay.server import MAX_MESSAGE_BYTES, start_server
from relay.service import MAX_BATCH, RelayService
from relay.staff import act
from relay.sync import Syncer
from relay.tls import INSECURE_LOOPBACK
from relay.upstream import GrpcUpstream
from relay.wire import to_wire
from tests.conftest import OTHER_VILLAGE, PG_URL, TOWNSHIP, VILLAGE, fresh_postgres
from tests.mutations import CODES, EDGE_INTS, hostile_requests
from village_agent import service as village

ID = "11010519491231002X"
PUSH = "/servicenet.v1.Relay/Push"
TIMEOUT = 10.0  # every call has a deadline: a hang shows as DEADLINE_EXCEEDED, not a stuck test
Code = grpc.StatusCode


@pytest.fixture
def district_db() -> str:
    """SQLite only: these tests talk to the township, never to the district's database."""
    return ""


@dataclass
class Served:
    net: Any
    port: int
    channel: grpc.aio.Channel
    stub: pb_grpc.RelayStub
    raw_push: Any  # bytes in, bytes out

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@asynccontextmanager
async def serving(net: Any, **policy: float) -> AsyncIterator[Served]:
    """The township's Relay on a real loopback gRPC server (``policy`` changes its [relay]
    settings), and a client channel to it."""
    relay = dataclasses.replace(net.township.config.relay, **policy)
    net.township.ledger.config = dataclasses.replace(net.township.config, relay=relay)
    service = RelayService(net.township.engine, net.township.ledger)
    server, port = await start_server(service, "127.0.0.1:0", INSECURE_LOOPBACK)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Served(net, port, channel, pb_grpc.RelayStub(channel), channel.unary_unary(PUSH))
    finally:
        await channel.close()
        await server.stop(None)


@pytest.fixture
async def served(net) -> AsyncIterator[Served]:
    """The township's Relay on a real loopback gRPC server, and a client channel to it."""
    async with serving(net) as found:
        yield found


async def take_cases(node: Node, n: int = 1) -> list[str]:
    request = Request("twp-pension-enroll", "张三", ID, materials=("居民身份证或户口簿",))
    return [t.case_id for t in await village.take(node, [village.check(node, request, {}) for _ in range(n)])]


async def village_events(node: Node, n: int) -> list[EventRecord]:
    """``n`` real case.submitted events made at the village, as its outbox holds them."""
    await take_cases(node, n)
    async with node.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(events).join(outbox, outbox.c.event_id == events.c.event_id).order_by(outbox.c.seq)
            )
        ).all()
    return node.ledger.stored(rows)


def push_request(
    records: Sequence[EventRecord], first_seq: int = 1, sender: str = VILLAGE, stream: int = 7
) -> pb.PushRequest:
    envelopes = [pb.Envelope(seq=first_seq + i, event=to_wire(r)) for i, r in enumerate(records)]
    return pb.PushRequest(sender=sender, stream=stream, envelopes=envelopes)


async def footprint(
    node: Node, tables: Sequence[Table] = (events, cases, outbox, inbox_peers, dead_letters, nodes)
) -> dict[str, int]:
    """How many rows each table a push or pull could write holds."""
    async with node.engine.connect() as conn:
        return {
            table.name: (await conn.execute(select(func.count()).select_from(table))).scalar() or 0
            for table in tables
        }


async def township_event_ids(served: Served) -> list[str]:
    async with served.net.township.engine.connect() as conn:
        return list((await conn.execute(select(events.c.event_id))).scalars())


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def assert_honest_sync_works(served: Served, seconds: float = TIMEOUT) -> None:
    """A new case from the village travels up over gRPC, and its acceptance comes back down
    (each call within ``seconds``, each sync too)."""
    upstream = GrpcUpstream(served.target, seconds, INSECURE_LOOPBACK, TOWNSHIP)
    try:
        syncer = Syncer(served.net.village.engine, served.net.village.ledger, upstream)
        [case_id] = await take_cases(served.net.village)
        report = await syncer.sync(seconds)
        assert report.backlog == 0
        assert (await act(served.net.township, [case_id], ACCEPTED, {}))[0].ok
        await syncer.sync(seconds)
    finally:
        await upstream.close()
    async with served.net.village.engine.connect() as conn:
        status = (await conn.execute(select(cases.c.status).where(cases.c.case_id == case_id))).scalar()
    assert status == "accepted"


# --- malformed and oversized messages -----------------------------------------------------------

GARBAGE = [
    b"\xff\xff\xff\xff",  # an invalid tag
    b"\x0a\x05ab",  # a string field cut short
    b"\x12\x03\x08\x01",  # an envelope cut short
    b"\x12\x80\x80\x80\x80\x10",  # a length far beyond the message
    b"\x0b",  # a deprecated group start, never closed
]


@pytest.mark.parametrize(
    "garbage", GARBAGE, ids=["bad-tag", "short-string", "short-envelope", "huge-len", "group"]
)
async def test_malformed_protobuf_gets_a_clear_error_and_server_keeps_serving(served, garbage):
    """Non-protobuf bytes get a prompt parse-error status, write nothing, and the server keeps serving."""
    before = await footprint(served.net.township)
    error = await refused(served.raw_push(garbage, timeout=TIMEOUT))
    assert error.code() in {Code.INVALID_ARGUMENT, Code.INTERNAL, Code.UNKNOWN}
    assert "pars" in (error.details() or "").lower()
    assert await footprint(served.net.township) == before
    [record] = await village_events(served.net.village, 1)
    ack = await served.stub.Push(push_request([record]), timeout=TIMEOUT)
    assert ack.applied_upto == 1 and await township_event_ids(served) == [record.event_id]


async def test_batch_over_the_limit_is_invalid_argument_naming_the_limit(served):
    """A batch of 1,001 envelopes is refused with INVALID_ARGUMENT naming the limit; nothing applied."""
    [record] = await village_events(served.net.village, 1)
    assert MAX_BATCH == 1000
    error = await refused(served.stub.Push(push_request([record] * (MAX_BATCH + 1)), timeout=TIMEOUT))
    assert error.code() == Code.INVALID_ARGUMENT
    assert "1001" in error.details() and "1000" in error.details()
    assert await footprint(served.net.township) == dict.fromkeys(
        ("events", "cases", "outbox", "inbox_peers", "dead_letters", "nodes"), 0
    )


async def test_batch_at_the_limit_is_accepted(served):
    """A batch of exactly 1,000 envelopes is within the limit and acknowledged."""
    [record] = await village_events(served.net.village, 1)
    ack = await served.stub.Push(push_request([record] * MAX_BATCH), timeout=TIMEOUT)
    assert (ack.applied_upto, ack.duplicates) == (MAX_BATCH, MAX_BATCH - 1)
    assert await township_event_ids(served) == [record.event_id]


async def test_message_over_max_receive_size_is_resource_exhausted(served):
    """A message bigger than the server's receive limit is refused with RESOURCE_EXHAUSTED."""
    [record] = await village_events(served.net.village, 1)
    huge = dataclasses.replace(record, payload=b"x" * (MAX_MESSAGE_BYTES + 1))
    data = push_request([huge]).SerializeToString()
    assert len(data) > MAX_MESSAGE_BYTES
    error = await refused(served.raw_push(data, timeout=TIMEOUT))
    assert error.code() == Code.RESOURCE_EXHAUSTED
    assert (await footprint(served.net.township))["events"] == 0
    ack = await served.stub.Push(push_request([record]), timeout=TIMEOUT)
    assert ack.applied_upto == 1


# --- batches that break the hop-sequence rules --------------------------------------------------


async def test_duplicate_event_ids_within_one_batch_apply_once_and_are_acked(served):
    """The same event twice in one batch is applied once and the whole batch acknowledged."""
    [a, b] = await village_events(served.net.village, 2)
    ack = await served.stub.Push(push_request([a, a, b, a]), timeout=TIMEOUT)
    assert (ack.applied_upto, ack.duplicates, len(ack.rejections)) == (4, 2, 0)
    assert sorted(await township_event_ids(served)) == sorted([a.event_id, b.event_id])
    assert (await footprint(served.net.township))["cases"] == 2


@pytest.mark.parametrize("seqs", [[1, 3], [1, 2, 2], [2, 1], [1, 2, 4, 5]], ids=str)
async def test_non_consecutive_sequences_are_invalid_argument(served, seqs):
    """A batch whose hop sequences are not consecutive is refused whole with INVALID_ARGUMENT."""
    records = await village_events(served.net.village, len(seqs))
    request = pb.PushRequest(
        sender=VILLAGE,
        stream=7,
        envelopes=[pb.Envelope(seq=s, event=to_wire(r)) for s, r in zip(seqs, records, strict=True)],
    )
    before = await footprint(served.net.township)
    error = await refused(served.stub.Push(request, timeout=TIMEOUT))
    assert error.code() == Code.INVALID_ARGUMENT and "consecutive" in error.details()
    assert await footprint(served.net.township) == before


async def test_sequence_zero_is_invalid_argument(served):
    """Hop sequences start at 1: a batch starting at 0 is refused with INVALID_ARGUMENT."""
    [record] = await village_events(served.net.village, 1)
    error = await refused(served.stub.Push(push_request([record], first_seq=0), timeout=TIMEOUT))
    assert error.code() == Code.INVALID_ARGUMENT
    assert (await footprint(served.net.township))["events"] == 0


async def test_batch_starting_with_a_gap_is_acked_with_the_mark_and_not_applied(served):
    """A batch starting past the receiver's mark + 1 is answered with the mark; nothing applied."""
    [a, b, c] = await village_events(served.net.village, 3)
    assert (await served.stub.Push(push_request([a]), timeout=TIMEOUT)).applied_upto == 1
    before = await footprint(served.net.township)
    ack = await served.stub.Push(push_request([c], first_seq=3), timeout=TIMEOUT)
    assert (ack.applied_upto, ack.duplicates, len(ack.rejections)) == (1, 0, 0)
    assert await footprint(served.net.township) == before
    ack = await served.stub.Push(push_request([b, c], first_seq=2), timeout=TIMEOUT)
    assert ack.applied_upto == 3 and len(await township_event_ids(served)) == 3


async def test_regression_in_same_stream_is_acked_and_not_applied_twice(served):
    """A batch of already-applied seqs in the same stream is acked with the mark, applied nothing twice."""
    records = await village_events(served.net.village, 3)
    await served.stub.Push(push_request(records), timeout=TIMEOUT)
    before = await footprint(served.net.township)
    for first, chunk in ((1, records), (2, records[1:2]), (1, records[:1])):
        ack = await served.stub.Push(push_request(chunk, first_seq=first), timeout=TIMEOUT)
        assert (ack.applied_upto, ack.duplicates, len(ack.rejections)) == (3, len(chunk), 0)
    assert await footprint(served.net.township) == before


# --- who may push and pull ----------------------------------------------------------------------

FOREIGN = [OTHER_VILLAGE, TOWNSHIP, "500117", "500117001", "50011700100x", "5001170010051", " 500117001005"]


@pytest.mark.parametrize("sender", FOREIGN)
async def test_push_from_outside_the_jurisdiction_is_permission_denied(served, sender):
    """A push from a node this township does not serve is PERMISSION_DENIED and writes nothing."""
    records = await village_events(served.net.village, 2)
    error = await refused(served.stub.Push(push_request(records, sender=sender), timeout=TIMEOUT))
    assert error.code() == Code.PERMISSION_DENIED
    assert await footprint(served.net.township) == dict.fromkeys(
        ("events", "cases", "outbox", "inbox_peers", "dead_letters", "nodes"), 0
    )


async def test_push_without_a_sender_is_refused_and_writes_nothing(served):
    """A push naming no sender is a malformed batch (INVALID_ARGUMENT, per relay.proto) and
    writes nothing."""
    records = await village_events(served.net.village, 2)
    error = await refused(served.stub.Push(push_request(records, sender=""), timeout=TIMEOUT))
    assert error.code() == Code.INVALID_ARGUMENT and "sender" in error.details()
    assert await footprint(served.net.township) == dict.fromkeys(
        ("events", "cases", "outbox", "inbox_peers", "dead_letters", "nodes"), 0
    )


@pytest.mark.parametrize("node", [OTHER_VILLAGE, TOWNSHIP, "500117", " 500117001005"])
async def test_pull_by_a_foreign_node_is_permission_denied(served, node):
    """A pull by a node this township does not serve is PERMISSION_DENIED, even for its own events."""
    error = await refused(served.stub.Pull(pb.PullRequest(node=node, limit=10), timeout=TIMEOUT))
    assert error.code() == Code.PERMISSION_DENIED


async def test_pull_without_a_node_is_invalid_argument(served):
    """A pull naming no node is a malformed request: INVALID_ARGUMENT, not PERMISSION_DENIED."""
    error = await refused(served.stub.Pull(pb.PullRequest(node="", limit=10), timeout=TIMEOUT))
    assert error.code() == Code.INVALID_ARGUMENT


async def test_heartbeat_from_a_foreign_node_is_permission_denied_and_not_recorded(served):
    """A heartbeat from a node this township does not serve is refused and not recorded."""
    request = pb.HeartbeatRequest(node=OTHER_VILLAGE, role="village")
    error = await refused(served.stub.Heartbeat(request, timeout=TIMEOUT))
    assert error.code() == Code.PERMISSION_DENIED
    assert (await footprint(served.net.township))["nodes"] == 0


async def test_heartbeat_without_a_node_is_invalid_argument_and_not_recorded(served):
    """A heartbeat naming no node is INVALID_ARGUMENT and records no node."""
    request = pb.HeartbeatRequest(node="", role="village")
    error = await refused(served.stub.Heartbeat(request, timeout=TIMEOUT))
    assert error.code() == Code.INVALID_ARGUMENT
    assert (await footprint(served.net.township))["nodes"] == 0


# --- integers the database cannot hold ----------------------------------------------------------


@pytest.mark.parametrize("field", ["stream", "seq"])
async def test_out_of_range_stream_or_hop_seq_is_invalid_argument(served, field):
    """A stream or hop sequence beyond signed 64 bits refuses the batch for good: INVALID_ARGUMENT."""
    records = await village_events(served.net.village, 2)
    big = 2**63
    if field == "stream":
        request = push_request(records, stream=big)
    else:
        request = push_request(records, first_seq=big - 1)  # the second envelope's seq is 2^63
    before = await footprint(served.net.township)
    error = await refused(served.stub.Push(request, timeout=TIMEOUT))
    assert error.code() == Code.INVALID_ARGUMENT, error.details()
    assert await footprint(served.net.township) == before


@pytest.mark.parametrize("field", ["origin_seq", "recorded_at"])
async def test_out_of_range_integer_is_refused_for_good_not_retry_later(served, field):
    """An event with an integer beyond signed 64 bits is rejected and dead-lettered; the rest apply."""
    [record, behind] = await village_events(served.net.village, 2)
    if field == "origin_seq":
        big = 2**63
        record = dataclasses.replace(record, origin_seq=big, event_id=f"{VILLAGE}:{big}")
    request = push_request([record, behind])
    if field == "recorded_at":
        request.envelopes[0].event.recorded_at.seconds = 2**62
    ack = await served.stub.Push(request, timeout=TIMEOUT)
    assert ack.applied_upto == 2 and [r.seq for r in ack.rejections] == [1]
    assert "out of range" in ack.rejections[0].reason
    assert await township_event_ids(served) == [behind.event_id]
    assert (await footprint(served.net.township))["dead_letters"] == 1


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("Pull", pb.PullRequest(node=VILLAGE, after=2**63, limit=10)),
        ("FetchRevocations", pb.RevocationsRequest(node=VILLAGE, after=2**64 - 1)),
    ],
)
async def test_a_cursor_beyond_64_bits_is_invalid_argument_not_retry_later(served, method, request_):
    """A pull or a revocations request whose cursor no database column holds is refused for
    good, INVALID_ARGUMENT; it was "retry later" (UNAVAILABLE), asked again for ever. Found by
    the fuzz of every call."""
    error = await refused(getattr(served.stub, method)(request_, timeout=TIMEOUT))
    assert error.code() == Code.INVALID_ARGUMENT and "after must be" in error.details()


@pytest.mark.parametrize("field", ["backlog", "last_push", "sent_at"])
async def test_heartbeat_numbers_beyond_64_bits_are_invalid_argument_and_not_recorded(served, field):
    """A heartbeat whose backlog or times no database column holds is refused for good,
    INVALID_ARGUMENT naming the field, and records nothing (it was "retry later" before)."""
    request = pb.HeartbeatRequest(node=VILLAGE, role="village", backlog=1)
    if field == "backlog":
        request.backlog = 2**64 - 1
    elif field == "last_push":
        request.last_push.seconds = -(2**62)
    else:
        request.sent_at.seconds = 2**62
    error = await refused(served.stub.Heartbeat(request, timeout=TIMEOUT))
    assert error.code() == Code.INVALID_ARGUMENT and field in (error.details() or "")
    assert (await footprint(served.net.township))["nodes"] == 0


# --- audit rows ---------------------------------------------------------------------------------


def with_audit_rows(request: pb.PushRequest, records: Sequence[EventRecord]) -> pb.PushRequest:
    """The request carrying rows 1, 2, ... of a (made-up) audit trail, one per event."""
    links = [pb.AuditLink(event_id=r.event_id, event_hash=bytes(32), staff="") for r in records]
    request.audit.CopyFrom(pb.AuditLinks(first_seq=1, prev_hash=bytes(32), head_hash=bytes(32), links=links))
    return request


@pytest.mark.parametrize("damage", ["hash", "staff", "count", "first_seq"])
async def test_malformed_audit_rows_refuse_the_push_and_write_nothing(served, damage):
    """A push whose audit rows are malformed (a hash not 32 bytes, a staff name too long, too
    many rows, rows numbered from 0) is INVALID_ARGUMENT, names the audit rows, writes nothing."""
    records = await village_events(served.net.village, 2)
    request = with_audit_rows(push_request(records), records)
    if damage == "hash":
        request.audit.links[0].event_hash = b"short"
    elif damage == "staff":
        request.audit.links[0].staff = "x" * 65
    elif damage == "count":
        request.audit.links.extend([request.audit.links[0]] * 4999)
    else:
        request.audit.first_seq = 0
    tables = (events, inbox_peers, dead_letters, audit, audit_peers, audit_breaks)
    before = await footprint(served.net.township, tables)
    error = await refused(served.stub.Push(request, timeout=TIMEOUT))
    assert error.code() == Code.INVALID_ARGUMENT and "audit" in (error.details() or ""), error.details()
    assert await footprint(served.net.township, tables) == before


# --- call budgets -------------------------------------------------------------------------------


def test_call_budget_refills_at_its_rate_per_caller() -> None:
    """Each caller has its own bucket: a burst in a row, then one call per 1/rate seconds."""
    now = [0.0]
    budget = CallBudget(rate=2, burst=3, clock=lambda: now[0])
    assert [budget.allow("a") for _ in range(4)] == [True, True, True, False]
    assert budget.allow("b")  # another caller is unaffected
    now[0] = 0.5
    assert [budget.allow("a"), budget.allow("a")] == [True, False]
    assert all(CallBudget(rate=0, burst=1).allow("a") for _ in range(1000))


async def test_a_node_calling_too_fast_is_throttled_while_an_honest_village_is_served(net):
    """A village calling faster than peer_calls_per_second gets RESOURCE_EXHAUSTED, counted
    in /metrics; another village syncing at the same time is served in full."""
    noisy = f"{TOWNSHIP}001"
    before = dict(metrics.THROTTLED.values)
    async with serving(net, peer_calls_per_second=20, peer_call_burst=20) as served:
        beat = pb.HeartbeatRequest(node=noisy, role="village")
        flood = [served.stub.Heartbeat(beat, timeout=TIMEOUT) for _ in range(120)]
        *answers, _ = await asyncio.gather(*flood, assert_honest_sync_works(served), return_exceptions=True)
    codes = Counter(a.code() if isinstance(a, grpc.aio.AioRpcError) else Code.OK for a in answers)
    assert set(codes) == {Code.OK, Code.RESOURCE_EXHAUSTED} and codes[Code.RESOURCE_EXHAUSTED] >= 80, codes
    throttled = sum(metrics.THROTTLED.values.values()) - sum(before.values())
    assert throttled == codes[Code.RESOURCE_EXHAUSTED]  # none of the honest village's calls


# --- thousands of hostile pushes at once ---------------------------------------------------------

BULK = 2000
SLOW = 60.0  # deadlines in a barrage on a busy machine: a hang still fails, a slow spell not


async def test_thousands_of_hostile_pushes_leave_no_half_write_and_an_honest_village_served(net, monkeypatch):
    """2,000 damaged or hostile pushes (tests/mutations.py), 32 at a time, each get an allowed
    status (never UNAVAILABLE: nothing unexpected happened); an honest village syncs all the
    while; afterwards every event applied has its case and its audit row."""
    monkeypatch.setattr(relay_service, "HOLD_SECONDS", 0.01)  # gaps would each hold a push 0.5 s
    made = await village_events(net.village, 2)
    valid = with_audit_rows(push_request(made), made)
    async with serving(net, peer_calls_per_second=0) as served:
        gate, unparsed = asyncio.Semaphore(32), set()

        async def one(data: bytes) -> grpc.StatusCode:
            async with gate:
                try:
                    await served.raw_push(data, timeout=SLOW)
                except grpc.aio.AioRpcError as error:
                    if error.code() == Code.UNKNOWN:  # gRPC's answer to bytes that do not parse
                        unparsed.add((error.details() or "").split(":")[0])
                    return error.code()
                return Code.OK

        barrage = asyncio.ensure_future(
            asyncio.gather(*(one(data) for data in hostile_requests(valid, BULK)))
        )
        rounds = 0
        while not barrage.done() or rounds == 0:
            await assert_honest_sync_works(served, SLOW)
            rounds += 1
        codes = Counter(await barrage)
    assert set(codes) <= ALLOWED and sum(codes.values()) == BULK, codes
    assert unparsed <= {DECODE_ERROR}, unparsed
    assert codes[Code.OK] > 100 and codes[Code.INVALID_ARGUMENT] > 100, codes
    async with net.township.engine.connect() as conn:
        assert (await verify_chain(conn, net.township.ledger.vault)).problem == ""
        caseless = select(func.count()).select_from(
            events.outerjoin(cases, cases.c.case_id == events.c.case_id)
        )
        assert (await conn.execute(caseless.where(cases.c.case_id.is_(None)))).scalar() == 0


# --- after all of that --------------------------------------------------------------------------


async def test_honest_village_push_and_pull_work_after_hostile_traffic(served):
    """After a barrage of hostile pushes and pulls, an honest village still pushes and pulls."""
    records = await village_events(served.net.village, 2)
    assert (await served.stub.Push(push_request(records), timeout=TIMEOUT)).applied_upto == 2
    for garbage in GARBAGE:
        await refused(served.raw_push(garbage, timeout=TIMEOUT))
    await refused(served.stub.Push(push_request(records * 501), timeout=TIMEOUT))
    await refused(served.raw_push(b"x" * (MAX_MESSAGE_BYTES + 16), timeout=TIMEOUT))
    await refused(served.stub.Push(push_request(records * 2, first_seq=0), timeout=TIMEOUT))
    await refused(served.stub.Push(push_request(records, sender=OTHER_VILLAGE), timeout=TIMEOUT))
    await refused(served.stub.Push(push_request(records, sender=""), timeout=TIMEOUT))
    await refused(served.stub.Pull(pb.PullRequest(node=OTHER_VILLAGE), timeout=TIMEOUT))
    await served.stub.Push(push_request(records, first_seq=1), timeout=TIMEOUT)  # a regression
    await served.stub.Push(push_request(records, first_seq=9, stream=99), timeout=TIMEOUT)  # a gap
    assert sorted(await township_event_ids(served)) == sorted(r.event_id for r in records)
    await assert_honest_sync_works(served)
    assert len(await township_event_ids(served)) == 2 + 1 + 1  # 2 earlier cases, 1 new, its acceptance


# --- fuzzing ------------------------------------------------------------------------------------

ALLOWED = frozenset(
    {
        Code.OK,
        Code.INVALID_ARGUMENT,
        Code.PERMISSION_DENIED,
        Code.RESOURCE_EXHAUSTED,
        Code.UNKNOWN,  # only for bytes that do not parse (DECODE_ERROR); never INTERNAL
        Code.FAILED_PRECONDITION,
    }
)
# What gRPC says of bytes that do not parse as the request; any other UNKNOWN is a handler crash.
DECODE_ERROR = "Unexpected <class 'google.protobuf.message.DecodeError'>"


@st.composite
def hostile_bytes(draw: st.DrawFn, valid: bytes) -> bytes:
    """Random bytes, or a valid PushRequest with bytes flipped, set, inserted, deleted or cut off."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.binary(max_size=512))
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif kind == "delete" and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


def fuzz(
    target: str,
    method: str,
    payloads: st.SearchStrategy[bytes],
    examples: int = 200,
    service: str = "Relay",
    allowed: frozenset[grpc.StatusCode] = ALLOWED,
) -> list[grpc.StatusCode]:
    """Send ``examples`` hostile messages to one of a service's calls over a blocking channel
    (run in a thread while the server's event loop serves); returns the status of each."""
    seen: list[grpc.StatusCode] = []
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(f"/servicenet.v1.{service}/{method}")

        @settings(max_examples=examples, deadline=None, derandomize=True, database=None)
        @given(payload=payloads)
        def one(payload: bytes) -> None:
            try:
                call(payload, timeout=TIMEOUT)
                code, details = Code.OK, ""
            except grpc.RpcError as error:
                code, details = error.code(), error.details() or ""
            seen.append(code)
            assert code in allowed, (method, code, details)
            assert code != Code.UNKNOWN or details.startswith(DECODE_ERROR), (method, details)

        one()
    return seen


async def test_fuzzed_push_bytes_get_an_allowed_status_and_never_break_the_server(served):
    """Random and mutated Push bytes get an allowed status, and the server keeps serving honestly."""
    made = await village_events(served.net.village, 2)
    fixed = [  # the same bytes on every run, so the derandomized examples are the same too
        dataclasses.replace(
            r, case_id=f"0190a000-0000-7000-8000-00000000000{i}", origin_seq=i, event_id=f"{VILLAGE}:{i}"
        )
        for i, r in enumerate(made, start=1)
    ]
    fixed = [dataclasses.replace(r, recorded_at=1_750_000_000_000_000) for r in fixed]
    valid = with_audit_rows(push_request(fixed), fixed).SerializeToString()
    seen = await asyncio.to_thread(fuzz, served.target, "Push", hostile_bytes(valid))
    assert len(seen) >= 150 and set(seen) <= ALLOWED
    assert Code.OK in seen and len(set(seen)) > 1  # the fuzz met both applied and refused pushes
    await assert_honest_sync_works(served)


def hostile_message(kind: Any, bounded: dict[str, int], nested: bool = True) -> st.SearchStrategy[bytes]:
    """A message of ``kind`` (serialized) whose fields, each set or left out, hold what a broken
    or hostile peer might send: division codes of the wrong length or place and any text, any
    bytes, integers at the edges of their type (timestamps out of range too), nested messages
    one level deep. ``bounded`` caps some integer fields (a pull's wait)."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in kind.DESCRIPTOR.fields:
        if field.message_type is not None:
            if not nested:
                continue
            inner = message_factory.GetMessageClass(field.message_type)
            one = hostile_message(inner, bounded, nested=False).map(inner.FromString)
        elif field.name in bounded:
            one = st.integers(0, bounded[field.name])
        elif field.type in _INTEGERS:
            low, high = _INTEGERS[field.type]
            one = st.sampled_from([n for n in (low, *EDGE_INTS, high) if low <= n <= high]) | st.integers(
                low, high
            )
        elif field.type == FieldDescriptor.TYPE_STRING:
            one = st.sampled_from(CODES) | st.text(max_size=80)
        elif field.type == FieldDescriptor.TYPE_BYTES:
            one = st.binary(max_size=300)
        else:
            one = st.booleans()
        fields[field.name] = st.lists(one, max_size=3) if field.is_repeated else one
    return st.fixed_dictionaries({}, optional=fields).map(lambda values: kind(**values).SerializeToString())


_INTEGERS = {
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
}

# Every other call a node below may make, each as a valid request to damage.
OTHER_CALLS = {
    "Pull": pb.PullRequest(node=VILLAGE, limit=100),
    "Heartbeat": pb.HeartbeatRequest(
        node=VILLAGE, role="village", software_version="1.0", catalog_version="2026.1", backlog=3
    ),
    "FetchCatalog": pb.CatalogRequest(node=VILLAGE),
    "FetchCalendar": pb.CalendarRequest(node=VILLAGE),
    "FetchRevocations": pb.RevocationsRequest(node=VILLAGE),
    "Certify": pb.CertifyRequest(node=VILLAGE, subject=VILLAGE, csr=b"-----BEGIN CERTIFICATE REQUEST-----"),
}


@pytest.mark.parametrize("method", sorted(OTHER_CALLS))
async def test_fuzzed_requests_of_every_other_call_get_an_allowed_status_and_never_break_the_server(
    served, method
):
    """Each call but Push, sent damaged bytes or requests whose fields hold hostile values: an
    allowed status each time, never a handler crash, and the server keeps serving honestly. A
    pull asks for a wait of 200 ms at most, so that a long poll ends well within TIMEOUT."""
    valid = OTHER_CALLS[method]
    hostile = hostile_message(type(valid), {"wait_ms": 200})
    seen = await asyncio.to_thread(
        fuzz, served.target, method, hostile_bytes(valid.SerializeToString()) | hostile
    )
    assert len(seen) >= 150 and set(seen) <= ALLOWED
    assert Code.UNKNOWN in seen and len(set(seen) - {Code.UNKNOWN}) >= 2  # not only unparsed bytes
    await assert_honest_sync_works(served)


class DistrictAway:
    """The network edge of an enrollment: the district, asked to certify, refuses."""

    async def certify(self, subject: str, csr: bytes, standing: Standing) -> Certified:
        raise PermanentError("the district refused (a test's stand-in)")


async def test_fuzzed_enrollments_get_an_allowed_status_and_leave_the_token_good(net):
    """The township's enrollment address answers anyone, without TLS: damaged or hostile
    requests naming a real token get an allowed status, never a handler crash, and do not use
    the token up; the village's honest request still reaches the district afterwards."""
    async with net.township.engine.begin() as conn:
        token = await make_token(conn, net.township.config, VILLAGE, 10)
    token_id, secret = parse_token(token.text)
    _, csr = make_request(VILLAGE)
    valid = pb.EnrollRequest(token_id=token_id, csr=csr, proof=proof(secret, b"enroll-request", csr))
    servicer = EnrollmentServicer(net.township.engine, net.township.config, DistrictAway())
    server, port = await start_enrollment(servicer, "127.0.0.1:0")
    allowed = frozenset({Code.UNAUTHENTICATED, Code.FAILED_PRECONDITION, Code.UNKNOWN})
    hostile = hostile_bytes(valid.SerializeToString()) | hostile_message(pb.EnrollRequest, {})
    try:
        seen = await asyncio.to_thread(
            fuzz, f"127.0.0.1:{port}", "Enroll", hostile, service="Enrollment", allowed=allowed
        )
        assert len(seen) >= 150 and Code.UNAUTHENTICATED in seen and Code.UNKNOWN in seen
        with pytest.raises(InvalidInput, match="the district did not certify the village"):
            await enroll_with_token(f"127.0.0.1:{port}", token.text)  # the token was still good
    finally:
        await server.stop(None)


@pytest.mark.parametrize("token_id", ["AB\x00CDEFG", "ABCDEFG", "中文中文中文中文", "x" * 5000])
async def test_a_token_id_that_is_none_is_refused_before_the_database_sees_it(token_id):
    """On a township whose database is PostgreSQL, a NUL in the token id made the database
    raise and the call end with a handler crash: an id that is not 8 letters and digits is
    refused as it comes."""
    engine = open_engine(await fresh_postgres(PG_URL))
    try:
        await create_schema(engine)
        async with engine.begin() as conn:
            with pytest.raises(TokenRefused, match="not an enrollment token's id"):
                await redeem(conn, token_id, b"csr", b"proof")
    finally:
        await engine.dispose()
