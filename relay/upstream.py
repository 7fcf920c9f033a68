"""The one interface a node uses to talk to its upstream, with a gRPC and an in-process
implementation (the latter for unit tests: no network, same service code)."""

from collections.abc import Sequence
from typing import Any, Protocol

import grpc

from protos.v1 import relay_pb2 as pb
from protos.v1 import relay_pb2_grpc as pb_grpc
from relay._chain import Links
from relay.catalogs import Published
from relay.errors import TransientError, from_rpc_error
from relay.records import EventRecord, Heartbeat, PullResult, PushResult, Rejected
from relay.server import MAX_MESSAGE_BYTES
from relay.service import RelayService
from relay.tls import Credentials, Security, channel_options, require_loopback
from relay.wire import from_wire, heartbeat_to_wire, links_to_wire, micros, to_wire

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect quickly once the link is back, rather than after gRPC's long default backoff.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]


class Upstream(Protocol):
    async def push(
        self,
        sender: str,
        stream: int,
        envelopes: Sequence[tuple[int, EventRecord]],
        chain: Links | None = None,
    ) -> PushResult: ...

    async def pull(
        self, node: str, after: int, after_event_id: str, limit: int, wait_ms: int
    ) -> PullResult: ...

    async def heartbeat(self, beat: Heartbeat) -> int: ...

    async def fetch_catalog(self, node: str, have_version: str) -> Published: ...

    async def fetch_calendar(self, node: str, have_version: str) -> Published: ...

    async def close(self) -> None: ...


class GrpcUpstream:
    """The upstream's Relay service over a gRPC channel; every call has a deadline. With
    credentials, the channel is mutual TLS and the server must prove it is ``server_code``
    (its certificate, signed by the network's CA, names it); plaintext only to a loopback
    address."""

    def __init__(self, target: str, timeout: float, security: Security, server_code: str) -> None:
        self.target = target
        self.timeout = timeout
        if isinstance(security, Credentials):
            options = CHANNEL_OPTIONS + channel_options(server_code)
            self._channel = grpc.aio.secure_channel(target, security.channel_credentials(), options=options)
        else:
            require_loopback(target, "upstream address")
            self._channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self._stub = pb_grpc.RelayStub(self._channel)  # type: ignore[no-untyped-call]

    async def push(
        self,
        sender: str,
        stream: int,
        envelopes: Sequence[tuple[int, EventRecord]],
        chain: Links | None = None,
    ) -> PushResult:
        request = pb.PushRequest(
            sender=sender,
            stream=stream,
            envelopes=[pb.Envelope(seq=s, event=to_wire(r)) for s, r in envelopes],
            audit=None if chain is None else links_to_wire(chain),
        )
        try:
            ack = await self._stub.Push(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, self.target) from exc
        rejected = tuple(Rejected(r.seq, r.event_id, r.reason) for r in ack.rejections)
        return PushResult(ack.applied_upto, rejected, ack.duplicates, ack.audit_upto)

    async def pull(self, node: str, after: int, after_event_id: str, limit: int, wait_ms: int) -> PullResult:
        request = pb.PullRequest(
            node=node, after=after, after_event_id=after_event_id, limit=limit, wait_ms=wait_ms
        )
        try:
            reply = await self._stub.Pull(request, timeout=self.timeout + wait_ms / 1000)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, self.target) from exc
        events = tuple((e.position, from_wire(e.event)) for e in reply.events)
        return PullResult(events, reply.head, reply.reset)

    async def heartbeat(self, beat: Heartbeat) -> int:
        try:
            reply = await self._stub.Heartbeat(heartbeat_to_wire(beat), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, self.target) from exc
        return micros(reply.server_time)

    async def fetch_catalog(self, node: str, have_version: str) -> Published:
        request = pb.CatalogRequest(node=node, have_version=have_version)
        try:
            reply = await self._stub.FetchCatalog(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, self.target) from exc
        return Published(reply.version, reply.document, micros(reply.published_at))

    async def fetch_calendar(self, node: str, have_version: str) -> Published:
        request = pb.CalendarRequest(node=node, have_version=have_version)
        try:
            reply = await self._stub.FetchCalendar(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:  # an upstream not yet upgraded
                return Published("", b"", 0)
            raise from_rpc_error(exc, self.target) from exc
        return Published(reply.version, reply.document, micros(reply.published_at))

    async def close(self) -> None:
        await self._channel.close()


class LocalUpstream:
    """An upstream in the same process: calls its RelayService directly. ``down`` makes every
    call fail as an unreachable upstream would."""

    def __init__(self, service: RelayService) -> None:
        self.service = service
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise TransientError("upstream is down")

    async def push(
        self,
        sender: str,
        stream: int,
        envelopes: Sequence[tuple[int, EventRecord]],
        chain: Links | None = None,
    ) -> PushResult:
        self._check()
        return await self.service.push(sender, stream, envelopes, chain)

    async def pull(self, node: str, after: int, after_event_id: str, limit: int, wait_ms: int) -> PullResult:
        self._check()
        return await self.service.pull(node, after, after_event_id, limit, wait_ms)

    async def heartbeat(self, beat: Heartbeat) -> int:
        self._check()
        return await self.service.heartbeat(beat)

    async def fetch_catalog(self, node: str, have_version: str) -> Published:
        self._check()
        return await self.service.fetch_catalog(node, have_version)

    async def fetch_calendar(self, node: str, have_version: str) -> Published:
        self._check()
        return await self.service.fetch_calendar(node, have_version)

    async def close(self) -> None:
        return None
