"""Every server offers the standard gRPC health and reflection services beside the relay."""

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from casework import InvalidInput
from relay.server import start_server
from relay.service import RelayService
from relay.tls import INSECURE_LOOPBACK


async def test_health_and_reflection_are_served(net) -> None:
    """Health answers SERVING for the relay; reflection lists the relay, health and itself."""
    service = RelayService(net.township.engine, net.township.ledger)
    server, port = await start_server(service, "127.0.0.1:0", INSECURE_LOOPBACK)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service="servicenet.v1.Relay"))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            async for answer in stub.ServerReflectionInfo(iter([request])):
                names = {s.name for s in answer.list_services_response.service}
                break
        assert {
            "servicenet.v1.Relay",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        } <= names
    finally:
        await server.stop(None)


async def test_a_port_in_use_is_refused(net) -> None:
    """A second node started on a port another one serves is refused in one line, instead of
    sharing the port's connections with it (gRPC's default)."""
    township = RelayService(net.township.engine, net.township.ledger)
    server, port = await start_server(township, "127.0.0.1:0", INSECURE_LOOPBACK)
    try:
        district = RelayService(net.district.engine, net.district.ledger)
        with pytest.raises(InvalidInput, match=f"cannot listen on 127.0.0.1:{port}"):
            await start_server(district, f"127.0.0.1:{port}", INSECURE_LOOPBACK)
    finally:
        await server.stop(None)
