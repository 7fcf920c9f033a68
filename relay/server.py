"""Serving the relay over gRPC: the servicer, health, reflection, and a clean shutdown.

Under mutual TLS the caller is the node its verified certificate names: every request's
sender/node field must name that node too, or the call is refused (PERMISSION_DENIED, logged
as ``security.refused``) before anything is read or applied; a certificate the district revoked
is refused the same way (UNAUTHENTICATED, saying so). Only with insecure_loopback (tests) is
the field taken at its word."""

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, NoReturn, TypeVar

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from casework import InvalidInput
from protos.v1 import relay_pb2 as pb
from protos.v1 import relay_pb2_grpc as pb_grpc
from relay import metrics
from relay._budget import CallBudget
from relay.certify import Standing
from relay.errors import CertificateRefused, InvalidBatch, NotPermitted, RelayError, TransientError
from relay.pki import identity_of, validity_of
from relay.service import MAX_BATCH, RelayService
from relay.tls import Credentials, Security, peer_certificate, reloading_server_credentials, require_loopback
from relay.wire import from_wire, heartbeat_from_wire, links_from_wire, micros, pull_reply, set_micros

# Room for a full batch of large events; anything bigger is refused by gRPC itself.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Clients' keepalive and flow-control pings must never get a connection closed with
    # GOAWAY too_many_pings (seen with 419 villages in bench district): no strike limit.
    ("grpc.http2.max_ping_strikes", 0),
    # A port in use is refused: by default gRPC binds it beside the server already there
    # (SO_REUSEPORT) and the two share its connections, each a different node.
    ("grpc.so_reuseport", 0),
]

log = structlog.get_logger()
T = TypeVar("T")


class RelayServicer(pb_grpc.RelayServicer):
    def __init__(self, service: RelayService, authenticated: bool) -> None:
        self.service = service
        self.authenticated = authenticated  # mutual TLS: callers are who their certificate says
        policy = service.ledger.config.relay
        self.budget = CallBudget(policy.peer_calls_per_second, policy.peer_call_burst)

    async def _caller(self, context: grpc.aio.ServicerContext, claimed: str, rpc: str) -> str:
        """The calling node's code: its certificate's, which the message must name as well;
        a node calling faster than its budget allows is told to slow down."""
        caller = await self._identify(context, claimed, rpc)
        if not self.budget.allow(caller[:16]):
            metrics.THROTTLED.inc(rpc=rpc)
            who, rate = caller[:16] or "this caller", self.budget.rate
            reason = f"{who} calls more than {rate:g} times a second: slow down and retry"
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, reason)
        return caller

    async def _identify(self, context: grpc.aio.ServicerContext, claimed: str, rpc: str) -> str:
        if not self.authenticated or not claimed:  # no name at all: the service refuses it
            return claimed
        try:
            certificate = peer_certificate(context.auth_context())
            identity = identity_of(certificate)
        except InvalidInput as exc:
            await _refuse(context, rpc, "", claimed, str(exc))
        if identity.code != claimed:
            reason = f"the caller's certificate is {identity.code}'s: it may not act as {claimed[:16]}"
            await _refuse(context, rpc, identity.code, claimed, reason)
        # The revocation list unreadable (a database outage) is answered as any call's failure.
        refusal = await _guard(context, self._refusal(identity.code, validity_of(certificate).issued_us))
        if refusal:
            await _refuse(context, rpc, identity.code, claimed, refusal, grpc.StatusCode.UNAUTHENTICATED)
        return identity.code

    async def _refusal(self, code: str, issued_us: int) -> str:
        """Why the district revoked the caller's certificate; empty if it did not."""
        try:
            await self.service.check_certificate(code, issued_us)
        except CertificateRefused as exc:
            return str(exc)
        return ""

    async def Push(self, request: pb.PushRequest, context: grpc.aio.ServicerContext) -> pb.PushAck:
        sender = await self._caller(context, request.sender, "Push")
        if len(request.envelopes) > MAX_BATCH:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"batch of {len(request.envelopes)} events exceeds the limit of {MAX_BATCH}",
            )
        envelopes = [(e.seq, from_wire(e.event)) for e in request.envelopes]
        chain = links_from_wire(request)
        result = await _guard(
            context, self.service.to_the_end(self.service.push(sender, request.stream, envelopes, chain))
        )
        return pb.PushAck(
            applied_upto=result.applied_upto,
            duplicates=result.duplicates,
            audit_upto=result.audit_upto,
            rejections=[
                pb.Rejection(seq=r.seq, event_id=r.event_id, reason=r.reason) for r in result.rejected
            ],
        )

    async def Pull(self, request: pb.PullRequest, context: grpc.aio.ServicerContext) -> pb.PullReply:
        puller = await self._caller(context, request.node, "Pull")
        result = await _guard(
            context,
            self.service.pull(puller, request.after, request.after_event_id, request.limit, request.wait_ms),
        )
        return pull_reply(result.head, result.reset, result.events)

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> pb.HeartbeatReply:
        await self._caller(context, request.node, "Heartbeat")
        now = await _guard(
            context, self.service.to_the_end(self.service.heartbeat(heartbeat_from_wire(request)))
        )
        reply = pb.HeartbeatReply()
        set_micros(reply.server_time, now)
        return reply

    async def FetchCatalog(
        self, request: pb.CatalogRequest, context: grpc.aio.ServicerContext
    ) -> pb.CatalogReply:
        puller = await self._caller(context, request.node, "FetchCatalog")
        found = await _guard(context, self.service.fetch_catalog(puller, request.have_version))
        reply = pb.CatalogReply(version=found.version, document=found.document)
        set_micros(reply.published_at, found.published_at)
        return reply

    async def FetchCalendar(
        self, request: pb.CalendarRequest, context: grpc.aio.ServicerContext
    ) -> pb.CalendarReply:
        puller = await self._caller(context, request.node, "FetchCalendar")
        found = await _guard(context, self.service.fetch_calendar(puller, request.have_version))
        reply = pb.CalendarReply(version=found.version, document=found.document)
        set_micros(reply.published_at, found.published_at)
        return reply

    async def FetchRevocations(
        self, request: pb.RevocationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RevocationsReply:
        puller = await self._caller(context, request.node, "FetchRevocations")
        found = await _guard(context, self.service.fetch_revocations(puller, request.after))
        reply = pb.RevocationsReply()
        for revocation in found:
            entry = reply.revocations.add(code=revocation.code, reason=revocation.reason)
            set_micros(entry.revoked_at, revocation.revoked_at)
        return reply

    async def Certify(self, request: pb.CertifyRequest, context: grpc.aio.ServicerContext) -> pb.CertifyReply:
        caller = await self._caller(context, request.node, "Certify")
        if request.subject == caller:  # its own: the certificate it shows on this link
            presented = peer_certificate(context.auth_context()) if self.authenticated else b""
            standing = Standing(certificate=presented)
        else:
            standing = Standing(request.subject_certificate, micros(request.token_made_at))
        certified = self.service.certify(caller, request.subject, request.csr, standing)
        found = await _guard(context, self.service.to_the_end(certified))
        return pb.CertifyReply(
            certificate=found.certificate,
            ca_certificate=found.ca_certificate,
            name=found.name,
            upstream_name=found.upstream_name,
        )


async def _refuse(
    context: grpc.aio.ServicerContext,
    rpc: str,
    peer: str,
    claimed: str,
    reason: str,
    status: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED,
) -> NoReturn:
    """A caller acting as another node, or with a revoked certificate: refused, and logged as
    a security event (division codes only, no personal data)."""
    log.warning("security.refused", rpc=rpc, peer=peer or None, claimed=claimed[:16], reason=reason)
    await context.abort(status, reason)
    raise AssertionError("abort returned")  # context.abort always raises


async def _guard(context: grpc.aio.ServicerContext, call: Awaitable[T]) -> T:
    """Answer the relay's own refusals with the matching status; anything unexpected is
    UNAVAILABLE (the sender retries) and logged without the request's content."""
    try:
        return await call
    except InvalidBatch as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except NotPermitted as exc:
        log.warning("security.refused", reason=str(exc))
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
    except InvalidInput as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except TransientError as exc:  # the district, asked on the caller's behalf, is away
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    except RelayError as exc:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    except Exception as exc:  # a database error, a full disk: nothing was committed
        log.error("relay.call.failed", error=type(exc).__name__)
        reason = f"node cannot apply now ({type(exc).__name__}); retry later"
        await context.abort(grpc.StatusCode.UNAVAILABLE, reason)
    raise AssertionError("abort returned")  # context.abort always raises


async def start_server(
    service: RelayService,
    listen: str,
    security: Security,
    reload: Callable[[], Credentials] | None = None,
) -> tuple[grpc.aio.Server, int]:
    """A started server with the relay, health and reflection services; returns its port.
    With credentials every caller must show a certificate signed by the network's CA; with
    ``reload`` too, the node's key and certificate are read again at each new connection (a
    renewal takes effect without a restart). Plaintext (INSECURE_LOOPBACK) is refused on any
    but a loopback address."""
    authenticated = isinstance(security, Credentials)
    if not authenticated:
        require_loopback(listen, "listen address")
    server = grpc.aio.server(options=SERVER_OPTIONS)
    servicer = RelayServicer(service, authenticated)
    pb_grpc.add_RelayServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (pb.DESCRIPTOR.services_by_name["Relay"].full_name, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    try:
        if isinstance(security, Credentials):
            credentials = reloading_server_credentials(reload) if reload else security.server_credentials()
            port = server.add_secure_port(listen, credentials)
        else:
            port = server.add_insecure_port(listen)
    except RuntimeError as exc:
        said = f"cannot listen on {listen}: give a free HOST:PORT of this machine"
        raise InvalidInput(said, "cannot_listen", listen=listen) from exc
    await server.start()
    for name in ("", names[0]):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port


async def run_until_stopped(
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]],
    server: grpc.aio.Server | None = None,
    service: RelayService | None = None,
    grace: float = 5.0,
) -> None:
    """Run until SIGTERM or SIGINT (Ctrl+C), then let in-flight calls finish and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, AttributeError, ValueError):  # Windows: Ctrl+C raises instead
            pass
    tasks = [asyncio.create_task(job()) for job in background]
    try:
        await stop.wait()
    finally:
        log.info("node.stopping")
        if service is not None:
            service.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.stop(grace)
        if service is not None:
            await service.settle()
        log.info("node.stopped")
