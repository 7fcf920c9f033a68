"""The one interface a node uses to talk to its upstream, with a gRPC and an in-process
implementation (the latter for unit tests: no network, same service code)."""

from collections.abc import Sequence
from typing import Any, Protocol

import grpc

from protos.v1 import relay_pb2 as pb
from protos.v1 import relay_pb2_grpc as pb_grpc
from relay._chain import Links
from relay.catalogs import Published
from relay.certify import OWN, Certified, Standing
from relay.errors import CertificateRefused, RelayError, TransientError, from_rpc_error
from relay.handshake import explain
from relay.records import EventRecord, Heartbeat, PullResult, PushResult, Rejected
from relay.revocations import Revocation
from relay.server import MAX_MESSAGE_BYTES
from relay.service import RelayService
from relay.tls import Credentials, Security, channel_options, require_loopback
from relay.wire import from_wire, heartbeat_to_wire, links_to_wire, micros, set_micros, to_wire

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

    async def fetch_revocations(self, node: str, after: int) -> list[Revocation]: ...

    async def certify(self, node: str, subject: str, csr: bytes, standing: Standing = OWN) -> Certified: ...

    async def close(self) -> None: ...


class GrpcUpstream:
    """The upstream's Relay service over a gRPC channel; every call has a deadline. With
    credentials, the channel is mutual TLS and the server must prove it is ``server_code``
    (its certificate, signed by the network's CA, names it); plaintext only to a loopback
    address."""

    def __init__(
        self, target: str, timeout: float, security: Security, server_code: str, code: str = ""
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.server_code = server_code
        self.code = code  # this node's, for the advice in a handshake failure
        if not isinstance(security, Credentials):
            require_loopback(target, "upstream address")
        self.security = security
        self._retired: list[grpc.aio.Channel] = []  # replaced by reconnect, closing with grace
        self._channel = self._open(security)
        self._stub = pb_grpc.RelayStub(self._channel)  # type: ignore[no-untyped-call]

    def _open(self, security: Security) -> grpc.aio.Channel:
        if isinstance(security, Credentials):
            options = CHANNEL_OPTIONS + channel_options(self.server_code)
            return grpc.aio.secure_channel(self.target, security.channel_credentials(), options=options)
        return grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS)

    async def reconnect(self, security: Credentials, grace: float) -> None:
        """Dial with renewed credentials from now on; calls under way on the old connection
        get ``grace`` seconds to finish."""
        old, self.security = self._channel, security
        self._channel = self._open(security)
        self._stub = pb_grpc.RelayStub(self._channel)  # type: ignore[no-untyped-call]
        self._retired.append(old)
        await old.close(grace)
        self._retired.remove(old)

    def _error(self, exc: grpc.aio.AioRpcError) -> RelayError:
        """The relay's error for a failed call; a failed handshake says why, where it can."""
        if exc.code() == grpc.StatusCode.UNAVAILABLE and isinstance(self.security, Credentials):
            try:
                reason = explain(
                    exc.details() or "", self.security.cert, self.security.ca, self.code, self.server_code
                )
            except Exception:  # an unreadable certificate, say: report the failure as it came
                reason = None
            if reason is not None:
                return CertificateRefused(f"{self.target}: {reason}")
        return from_rpc_error(exc, self.target)

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
            raise self._error(exc) from exc
        rejected = tuple(Rejected(r.seq, r.event_id, r.reason) for r in ack.rejections)
        return PushResult(ack.applied_upto, rejected, ack.duplicates, ack.audit_upto)

    async def pull(self, node: str, after: int, after_event_id: str, limit: int, wait_ms: int) -> PullResult:
        request = pb.PullRequest(
            node=node, after=after, after_event_id=after_event_id, limit=limit, wait_ms=wait_ms
        )
        try:
            reply = await self._stub.Pull(request, timeout=self.timeout + wait_ms / 1000)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from exc
        events = tuple((e.position, from_wire(e.event)) for e in reply.events)
        return PullResult(events, reply.head, reply.reset)

    async def heartbeat(self, beat: Heartbeat) -> int:
        try:
            reply = await self._stub.Heartbeat(heartbeat_to_wire(beat), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from exc
        return micros(reply.server_time)

    async def fetch_catalog(self, node: str, have_version: str) -> Published:
        request = pb.CatalogRequest(node=node, have_version=have_version)
        try:
            reply = await self._stub.FetchCatalog(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from exc
        return Published(reply.version, reply.document, micros(reply.published_at))

    async def fetch_calendar(self, node: str, have_version: str) -> Published:
        request = pb.CalendarRequest(node=node, have_version=have_version)
        try:
            reply = await self._stub.FetchCalendar(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:  # an upstream not yet upgraded
                return Published("", b"", 0)
            raise self._error(exc) from exc
        return Published(reply.version, reply.document, micros(reply.published_at))

    async def fetch_revocations(self, node: str, after: int) -> list[Revocation]:
        request = pb.RevocationsRequest(node=node, after=after)
        try:
            reply = await self._stub.FetchRevocations(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:  # an upstream not yet upgraded
                return []
            raise self._error(exc) from exc
        return [Revocation(r.code, micros(r.revoked_at), r.reason) for r in reply.revocations]

    async def certify(self, node: str, subject: str, csr: bytes, standing: Standing = OWN) -> Certified:
        request = pb.CertifyRequest(
            node=node, subject=subject, csr=csr, subject_certificate=standing.certificate
        )
        if standing.token_made_at:
            set_micros(request.token_made_at, standing.token_made_at)
        try:
            reply = await self._stub.Certify(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from exc
        return Certified(reply.certificate, reply.ca_certificate, reply.name, reply.upstream_name)

    async def close(self) -> None:
        for channel in [*self._retired, self._channel]:
            await channel.close()


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

    async def fetch_revocations(self, node: str, after: int) -> list[Revocation]:
        self._check()
        return await self.service.fetch_revocations(node, after)

    async def certify(self, node: str, subject: str, csr: bytes, standing: Standing = OWN) -> Certified:
        self._check()
        return await self.service.certify(node, subject, csr, standing)

    async def close(self) -> None:
        return None
