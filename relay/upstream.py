"""The one interface a node uses to talk to its upstream, with a gRPC and an in-process
implementation (the latter for unit tests: no network, same service code)."""

import ssl
import time
from collections.abc import Sequence
from typing import Any, Protocol

import grpc
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from protos.v1 import relay_pb2 as pb
from protos.v1 import relay_pb2_grpc as pb_grpc
from relay import revocations
from relay._chain import Links
from relay.catalogs import Published
from relay.certify import OWN, Certified, Standing
from relay.errors import CertificateRefused, RelayError, TransientError, from_rpc_error
from relay.handshake import explain
from relay.pki import identity_of, validity_of
from relay.records import EventRecord, Heartbeat, PullResult, PushResult, Rejected
from relay.revocations import Revocation
from relay.server import MAX_MESSAGE_BYTES
from relay.service import RelayService
from relay.tls import Credentials, Security, channel_options, require_loopback, served_certificate
from relay.wire import from_wire, heartbeat_to_wire, micros, push_request, set_micros

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect within a second once the link is back, rather than after gRPC's long default
    # backoff: the relay's own retry wait (up to backoff_max_seconds) comes on top of it, and
    # with 5 s here a township's hour-long cut drained 8.6-9.1 s after the link returned.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]
# How long a check of the upstream's certificate against the revocation list holds.
VOUCH_SECONDS = 60.0
log = structlog.get_logger()


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
    address. Given the node's database (``engine``), the certificate the upstream serves is
    checked against the revocation list kept there before the first call, and again every
    VOUCH_SECONDS: a node does not talk to a revoked (stolen) upstream."""

    def __init__(
        self,
        target: str,
        timeout: float,
        security: Security,
        server_code: str,
        code: str = "",
        engine: AsyncEngine | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.server_code = server_code
        self.code = code  # this node's, for the advice in a handshake failure
        self.engine = engine
        self._vouched_at: float | None = None  # when the upstream's certificate was last found good
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
        self._vouched_at = None
        await old.close(grace)
        self._retired.remove(old)

    async def _vouch(self) -> None:
        """Refuse (CertificateRefused, logged as a security event) an upstream whose certificate
        the revocation list kept here covers; checked again once VOUCH_SECONDS have passed."""
        if self.engine is None or not isinstance(self.security, Credentials):
            return
        now = time.monotonic()
        if self._vouched_at is not None and now - self._vouched_at < VOUCH_SECONDS:
            return
        try:
            pem = await served_certificate(self.target, self.security, self.server_code, self.timeout)
        except ssl.SSLError as exc:
            raise self._handshake_error(exc) from exc
        except (OSError, TimeoutError) as exc:
            raise TransientError(f"{self.target}: UNAVAILABLE: {type(exc).__name__}") from exc
        code = identity_of(pem).code
        revoked = await revocations.covering(self.engine, code, validity_of(pem).issued_us)
        if revoked is not None:
            reason = revoked.upstream_refusal(self.target)
            log.warning("security.upstream_revoked", upstream=code, target=self.target, reason=reason)
            raise CertificateRefused(reason)
        self._vouched_at = now

    def _handshake_error(self, exc: ssl.SSLError) -> RelayError:
        """A failed check of the upstream's certificate, told as a failed gRPC handshake is."""
        details = str(exc)
        if isinstance(exc, ssl.SSLCertVerificationError):
            said = exc.verify_message or ""
            hostname = "Hostname mismatch" in said
            details = "Hostname Verification" if hostname else f"CERTIFICATE_VERIFY_FAILED: {said}"
        return self._explained(details) or TransientError(f"{self.target}: UNAVAILABLE: {details}")

    def _explained(self, details: str) -> CertificateRefused | None:
        assert isinstance(self.security, Credentials)
        try:
            reason = explain(details, self.security.cert, self.security.ca, self.code, self.server_code)
        except Exception:  # an unreadable certificate, say: report the failure as it came
            return None
        return None if reason is None else CertificateRefused(f"{self.target}: {reason}")

    def _error(self, exc: grpc.aio.AioRpcError) -> RelayError:
        """The relay's error for a failed call; a failed handshake says why, where it can."""
        if exc.code() == grpc.StatusCode.UNAVAILABLE and isinstance(self.security, Credentials):
            refused = self._explained(exc.details() or "")
            if refused is not None:
                return refused
        return from_rpc_error(exc, self.target)

    async def _call(
        self, method: Any, request: Any, deadline: float | None = None, missing_ok: bool = False
    ) -> Any:
        """One call of the upstream once it is vouched for (``deadline``: seconds, default the
        link's), its errors translated (relay.errors); with ``missing_ok``, None from an
        upstream not yet upgraded to have the call."""
        await self._vouch()
        try:
            return await method(request, timeout=deadline or self.timeout)
        except grpc.aio.AioRpcError as exc:
            if missing_ok and exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return None
            raise self._error(exc) from exc

    async def push(
        self,
        sender: str,
        stream: int,
        envelopes: Sequence[tuple[int, EventRecord]],
        chain: Links | None = None,
    ) -> PushResult:
        ack = await self._call(self._stub.Push, push_request(sender, stream, envelopes, chain))
        rejected = tuple(Rejected(r.seq, r.event_id, r.reason) for r in ack.rejections)
        return PushResult(ack.applied_upto, rejected, ack.duplicates, ack.audit_upto)

    async def pull(self, node: str, after: int, after_event_id: str, limit: int, wait_ms: int) -> PullResult:
        request = pb.PullRequest(
            node=node, after=after, after_event_id=after_event_id, limit=limit, wait_ms=wait_ms
        )
        reply = await self._call(self._stub.Pull, request, self.timeout + wait_ms / 1000)
        events = tuple((e.position, from_wire(e.event)) for e in reply.events)
        return PullResult(events, reply.head, reply.reset)

    async def heartbeat(self, beat: Heartbeat) -> int:
        reply = await self._call(self._stub.Heartbeat, heartbeat_to_wire(beat))
        return micros(reply.server_time)

    async def fetch_catalog(self, node: str, have_version: str) -> Published:
        request = pb.CatalogRequest(node=node, have_version=have_version)
        reply = await self._call(self._stub.FetchCatalog, request)
        return Published(reply.version, reply.document, micros(reply.published_at))

    async def fetch_calendar(self, node: str, have_version: str) -> Published:
        request = pb.CalendarRequest(node=node, have_version=have_version)
        reply = await self._call(self._stub.FetchCalendar, request, missing_ok=True)
        if reply is None:
            return Published("", b"", 0)
        return Published(reply.version, reply.document, micros(reply.published_at))

    async def fetch_revocations(self, node: str, after: int) -> list[Revocation]:
        request = pb.RevocationsRequest(node=node, after=after)
        reply = await self._call(self._stub.FetchRevocations, request, missing_ok=True)
        if reply is None:
            return []
        return [Revocation(r.code, micros(r.revoked_at), r.reason) for r in reply.revocations]

    async def certify(self, node: str, subject: str, csr: bytes, standing: Standing = OWN) -> Certified:
        request = pb.CertifyRequest(
            node=node, subject=subject, csr=csr, subject_certificate=standing.certificate
        )
        if standing.token_made_at:
            set_micros(request.token_made_at, standing.token_made_at)
        reply = await self._call(self._stub.Certify, request)
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
