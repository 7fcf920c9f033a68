"""Mutual TLS and jurisdiction by certificate: real certificates, real gRPC servers on loopback.

The township (or district) of the ``net`` fixture serves its Relay with a certificate from a
CA made here, as ``district-node init`` and ``enroll`` make them; clients dial with their own.
Who a caller is comes from its certificate: naming another node in a message is refused.
"""

import dataclasses
import datetime
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from structlog.testing import capture_logs

from casework import InvalidInput, level_of_code
from casework.lifecycle import ACCEPTED, CMD_COMPLAIN, CMD_WITHDRAW
from protos.v1 import relay_pb2 as pb
from protos.v1 import relay_pb2_grpc as pb_grpc
from relay.bundle import Bundle
from relay.errors import CertificateRefused
from relay.joining import config_from_bundle
from relay.node import Node
from relay.pki import Authority, identity_of, server_name
from relay.records import EventRecord
from relay.schema import cases, dead_letters, events, inbox_peers, nodes
from relay.server import start_server
from relay.service import RelayService
from relay.staff import act
from relay.sync import Syncer
from relay.tls import INSECURE_LOOPBACK, Credentials, channel_options, is_loopback
from relay.upstream import GrpcUpstream
from relay.wire import to_wire
from tests.conftest import DISTRICT, OTHER_TOWNSHIP, OTHER_VILLAGE, TOWNSHIP, VILLAGE
from tests.netkit import DIVISIONS, Network, free_port, wait_serving
from tests.test_hostile_input import village_events
from tests.test_relay_units import as_village, forged

ID = "11010519491231002X"
NAME = "张三"
SIBLING_VILLAGE = "500117001006"  # another village of the same township
TIMEOUT = 10.0
NOW = datetime.datetime.now(datetime.UTC)
Code = grpc.StatusCode


@pytest.fixture
def district_db() -> str:
    """SQLite only: certificates, not the district's database, are under test here."""
    return ""


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority.create(DISTRICT, NOW)


def credentials(authority: Authority, code: str, trust: Authority | None = None) -> Credentials:
    """Node ``code``'s key and certificate from ``authority``, trusting ``trust`` (default: the same CA)."""
    issued = authority.issue(code, level_of_code(code), NOW)
    return Credentials(issued.key_pem, issued.cert_pem, (trust or authority).cert_pem)


@asynccontextmanager
async def serving(node: Node, creds: Credentials) -> AsyncIterator[str]:
    """The node's Relay on a real loopback port with mutual TLS; yields HOST:PORT."""
    server, port = await start_server(RelayService(node.engine, node.ledger), "127.0.0.1:0", creds)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@asynccontextmanager
async def dial(target: str, creds: Credentials, server_code: str) -> AsyncIterator[pb_grpc.RelayStub]:
    """A raw Relay stub over mutual TLS, expecting the server to be ``server_code``."""
    channel = grpc.aio.secure_channel(
        target, creds.channel_credentials(), options=channel_options(server_code)
    )
    try:
        yield pb_grpc.RelayStub(channel)  # type: ignore[no-untyped-call]
    finally:
        await channel.close()


def push_request(records: Sequence[EventRecord], sender: str) -> pb.PushRequest:
    envelopes = [pb.Envelope(seq=1 + i, event=to_wire(r)) for i, r in enumerate(records)]
    return pb.PushRequest(sender=sender, stream=7, envelopes=envelopes)


async def footprint(node: Node) -> dict[str, int]:
    """How many rows each table a push or pull could write holds."""
    async with node.engine.connect() as conn:
        return {
            table.name: (await conn.execute(select(func.count()).select_from(table))).scalar() or 0
            for table in (events, cases, inbox_peers, dead_letters, nodes)
        }


async def refused(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


EMPTY = dict.fromkeys(("events", "cases", "inbox_peers", "dead_letters", "nodes"), 0)


# --- the handshake ------------------------------------------------------------------------------


async def test_enrolled_village_syncs_with_its_township_over_mutual_tls(net, authority):
    """A village with its own certificate pushes a case up and pulls its acceptance back."""
    async with serving(net.township, credentials(authority, TOWNSHIP)) as target:
        upstream = GrpcUpstream(target, TIMEOUT, credentials(authority, VILLAGE), TOWNSHIP)
        try:
            syncer = Syncer(net.village.engine, net.village.ledger, upstream)
            [record] = await village_events(net.village, 1)
            assert (await syncer.sync(10)).backlog == 0
            assert (await act(net.township, [record.case_id], ACCEPTED, {}))[0].ok
            await syncer.sync(10)
        finally:
            await upstream.close()
    async with net.village.engine.connect() as conn:
        status = (
            await conn.execute(select(cases.c.status).where(cases.c.case_id == record.case_id))
        ).scalar()
    assert status == "accepted"


async def test_client_with_a_certificate_from_another_ca_is_refused_at_the_handshake(net, authority):
    """A client whose certificate another CA signed never reaches the service; nothing is written."""
    stranger = credentials(Authority.create(DISTRICT, NOW), VILLAGE, trust=authority)
    records = await village_events(net.village, 1)
    async with (
        serving(net.township, credentials(authority, TOWNSHIP)) as target,
        dial(target, stranger, TOWNSHIP) as stub,
    ):
        error = await refused(stub.Push(push_request(records, VILLAGE), timeout=TIMEOUT))
        assert error.code() == Code.UNAVAILABLE
        error = await refused(stub.Pull(pb.PullRequest(node=VILLAGE, limit=10), timeout=TIMEOUT))
        assert error.code() == Code.UNAVAILABLE
    assert await footprint(net.township) == EMPTY


async def test_a_caller_checked_while_the_revocation_list_cannot_be_read_is_told_to_retry(net, authority):
    """The certificate check reads the node's database: when it cannot (an outage), the call is
    answered UNAVAILABLE (the caller retries) and logged as a failed call, as one failing later
    would be, not an unexplained UNKNOWN; nothing is written."""
    records = await village_events(net.village, 1)
    async with net.township.engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE revocations RENAME TO revocations_away")
    async with (
        serving(net.township, credentials(authority, TOWNSHIP)) as target,
        dial(target, credentials(authority, VILLAGE), TOWNSHIP) as stub,
    ):
        with capture_logs() as logs:
            error = await refused(stub.Push(push_request(records, VILLAGE), timeout=TIMEOUT))
    assert error.code() == Code.UNAVAILABLE and "retry later" in (error.details() or "")
    assert [e["error"] for e in logs if e["event"] == "relay.call.failed"] == ["OperationalError"]
    assert await footprint(net.township) == EMPTY


async def test_plaintext_client_to_a_tls_server_fails(net, authority):
    """A plaintext client gets no answer from a mutual-TLS server, not even its health check."""
    records = await village_events(net.village, 1)
    async with (
        serving(net.township, credentials(authority, TOWNSHIP)) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        stub = pb_grpc.RelayStub(channel)  # type: ignore[no-untyped-call]
        error = await refused(stub.Push(push_request(records, VILLAGE), timeout=TIMEOUT))
        assert error.code() == Code.UNAVAILABLE
    assert await footprint(net.township) == EMPTY


async def test_client_refuses_a_server_that_is_not_its_upstream(net, authority):
    """A village dialing its township refuses a server whose certificate names another
    township, though the same CA signed it, and says so: nothing leaves the village."""
    [record] = await village_events(net.village, 1)
    async with serving(net.township, credentials(authority, OTHER_TOWNSHIP)) as target:
        upstream = GrpcUpstream(target, TIMEOUT, credentials(authority, VILLAGE), TOWNSHIP)
        try:
            with pytest.raises(CertificateRefused, match=f"the server dialed is not {TOWNSHIP}"):
                await upstream.push(VILLAGE, 7, [(1, record)])
        finally:
            await upstream.close()
    assert await footprint(net.township) == EMPTY


# --- identity comes from the certificate --------------------------------------------------------


@pytest.mark.parametrize("victim", [SIBLING_VILLAGE, OTHER_VILLAGE, TOWNSHIP])
async def test_village_cannot_act_as_another_node(net, authority, victim):
    """A village naming another node in Push, Pull, Heartbeat or FetchCatalog is
    PERMISSION_DENIED, logged as security.refused without personal data, and nothing is written."""
    records = await village_events(net.village, 2)
    async with (
        serving(net.township, credentials(authority, TOWNSHIP)) as target,
        dial(target, credentials(authority, VILLAGE), TOWNSHIP) as stub,
    ):
        with capture_logs() as logs:
            calls = [
                stub.Push(push_request(records, victim), timeout=TIMEOUT),
                stub.Pull(pb.PullRequest(node=victim, limit=10), timeout=TIMEOUT),
                stub.Heartbeat(pb.HeartbeatRequest(node=victim, role=level_of_code(victim)), timeout=TIMEOUT),
                stub.FetchCatalog(pb.CatalogRequest(node=victim), timeout=TIMEOUT),
                stub.FetchCalendar(pb.CalendarRequest(node=victim), timeout=TIMEOUT),
            ]
            for call in calls:
                error = await refused(call)
                assert error.code() == Code.PERMISSION_DENIED
                assert VILLAGE in (error.details() or "")
    refusals = [entry for entry in logs if entry["event"] == "security.refused"]
    assert [(e["peer"], e["claimed"]) for e in refusals] == [(VILLAGE, victim)] * 5
    assert NAME not in repr(logs) and ID not in repr(logs)
    assert await footprint(net.township) == EMPTY


async def test_village_with_its_own_certificate_may_use_its_own_name(net, authority):
    """The same village, naming itself, pushes, pulls and heartbeats as usual."""
    records = await village_events(net.village, 2)
    async with (
        serving(net.township, credentials(authority, TOWNSHIP)) as target,
        dial(target, credentials(authority, VILLAGE), TOWNSHIP) as stub,
    ):
        assert (await stub.Push(push_request(records, VILLAGE), timeout=TIMEOUT)).applied_upto == 2
        await stub.Pull(pb.PullRequest(node=VILLAGE, limit=10), timeout=TIMEOUT)
        await stub.Heartbeat(pb.HeartbeatRequest(node=VILLAGE, role="village"), timeout=TIMEOUT)
    assert (await footprint(net.township))["cases"] == 2


async def test_enrolled_node_outside_the_jurisdiction_is_refused_under_its_own_name(net, authority):
    """A village of another township, with its own valid certificate, is PERMISSION_DENIED here."""
    records = await village_events(net.village, 1)
    async with (
        serving(net.township, credentials(authority, TOWNSHIP)) as target,
        dial(target, credentials(authority, OTHER_VILLAGE), TOWNSHIP) as stub,
    ):
        with capture_logs() as logs:
            error = await refused(stub.Push(push_request(records, OTHER_VILLAGE), timeout=TIMEOUT))
            assert error.code() == Code.PERMISSION_DENIED
            error = await refused(stub.Pull(pb.PullRequest(node=OTHER_VILLAGE), timeout=TIMEOUT))
            assert error.code() == Code.PERMISSION_DENIED
    assert [e["event"] for e in logs].count("security.refused") == 2
    assert await footprint(net.township) == EMPTY


def forged_role_certificate(authority: Authority, code: str, role: str) -> Credentials:
    """A certificate the CA signed whose role does not match its code's level."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, code),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name(code))]), critical=False)
        .sign(authority.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Credentials(key_pem, cert.public_bytes(serialization.Encoding.PEM), authority.cert_pem)


async def test_certificate_whose_role_does_not_match_its_code_is_refused(net, authority):
    """A certificate naming a village's code with the role 'township' is PERMISSION_DENIED."""
    forged = forged_role_certificate(authority, VILLAGE, "township")
    with pytest.raises(InvalidInput, match="as a township, but it is a village"):
        identity_of(forged.cert)
    records = await village_events(net.village, 1)
    async with (
        serving(net.township, credentials(authority, TOWNSHIP)) as target,
        dial(target, forged, TOWNSHIP) as stub,
    ):
        error = await refused(stub.Push(push_request(records, VILLAGE), timeout=TIMEOUT))
        assert error.code() == Code.PERMISSION_DENIED
    assert await footprint(net.township) == EMPTY


async def test_township_pushing_events_of_a_village_it_does_not_serve_is_refused(net, authority):
    """A township relaying events of another township's village has them rejected, dead-lettered
    and logged as security.refused, never applied; acting as that other township is PERMISSION_DENIED."""
    made = await village_events(net.village, 2)
    forged = [dataclasses.replace(r, village_code=OTHER_VILLAGE, township_code=OTHER_TOWNSHIP) for r in made]
    async with (
        serving(net.district, credentials(authority, DISTRICT)) as target,
        dial(target, credentials(authority, TOWNSHIP), DISTRICT) as stub,
    ):
        error = await refused(stub.Push(push_request(forged, OTHER_TOWNSHIP), timeout=TIMEOUT))
        assert error.code() == Code.PERMISSION_DENIED
        with capture_logs() as logs:
            ack = await stub.Push(push_request(forged, TOWNSHIP), timeout=TIMEOUT)
    assert ack.applied_upto == 2 and [r.seq for r in ack.rejections] == [1, 2]
    assert all("may not send events of village" in r.reason for r in ack.rejections)
    assert any(e["event"] == "security.refused" and e["sender"] == TOWNSHIP for e in logs)
    after = await footprint(net.district)
    assert (after["events"], after["cases"], after["dead_letters"]) == (0, 0, 2)


async def test_a_village_withdrawing_its_siblings_case_over_mutual_tls_is_refused(net, authority):
    """A village with its own certificate pushing a withdrawal of a sibling village's case, or a
    complaint over the size limit, has it rejected (the withdrawal logged as security.refused),
    never applied; the sibling's case stays as it was."""
    [made] = await village_events(net.village, 1)
    theirs = as_village(made, SIBLING_VILLAGE, "sibling-case")
    withdraw = forged(made, 1, type=CMD_WITHDRAW, case_id=theirs.case_id, payload=b'{"reason": "x"}')
    huge = forged(made, 2, type=CMD_COMPLAIN, payload=b'{"text": "%s"}' % (b"x" * 1_000_000))
    async with serving(net.township, credentials(authority, TOWNSHIP)) as target:
        async with dial(target, credentials(authority, SIBLING_VILLAGE), TOWNSHIP) as sibling:
            assert not (
                await sibling.Push(push_request([theirs], SIBLING_VILLAGE), timeout=TIMEOUT)
            ).rejections
        async with dial(target, credentials(authority, VILLAGE), TOWNSHIP) as stub:
            with capture_logs() as logs:
                ack = await stub.Push(push_request([withdraw, made, huge], VILLAGE), timeout=TIMEOUT)
    assert ack.applied_upto == 3 and [r.seq for r in ack.rejections] == [1, 3]
    assert "belongs to village" in ack.rejections[0].reason and "exceeds" in ack.rejections[1].reason
    assert any(e["event"] == "security.refused" and e["sender"] == VILLAGE for e in logs)
    async with net.township.engine.connect() as conn:
        status = (
            await conn.execute(select(cases.c.status).where(cases.c.case_id == theirs.case_id))
        ).scalar()
        stored = set((await conn.execute(select(events.c.event_id))).scalars())
    assert status == "submitted" and stored == {theirs.event_id, made.event_id}


# --- plaintext only on loopback -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.8.9.1:1", True),
        ("[::1]:50051", True),
        ("localhost:50051", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        ("10.0.0.5:50051", False),
        ("district.example.gov.cn:50051", False),
        ("localhost.example.com:1", False),
    ],
)
def test_loopback_addresses(address, loopback):
    """Only 127.0.0.0/8, ::1 and localhost count as loopback."""
    assert is_loopback(address) is loopback


async def test_plaintext_server_or_client_on_a_non_loopback_address_is_refused(net):
    """INSECURE_LOOPBACK refuses to listen on, or dial, anything but a loopback address."""
    service = RelayService(net.township.engine, net.township.ledger)
    with pytest.raises(InvalidInput, match=r"0\.0\.0\.0:0 is not a loopback address"):
        await start_server(service, "0.0.0.0:0", INSECURE_LOOPBACK)
    with pytest.raises(InvalidInput, match="not a loopback address"):
        GrpcUpstream("10.0.0.5:50061", TIMEOUT, INSECURE_LOOPBACK, TOWNSHIP)


def test_bundle_without_a_certificate_is_refused_unless_plaintext(tmp_path):
    """A format-1 bundle (no key) makes no node, except for a test's plaintext loopback node."""
    old = Bundle(VILLAGE, "village", "v", DISTRICT, TOWNSHIP, "t")
    with pytest.raises(InvalidInput, match="holds no certificate"):
        config_from_bundle(tmp_path, old, "127.0.0.1:1", None, "agent")
    config = config_from_bundle(tmp_path, old, "127.0.0.1:1", None, "agent", insecure_loopback=True)
    assert config.tls.insecure_loopback


# --- through the command lines ------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.e2e
@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_enrollment_files_are_owner_only_and_carry_the_identity(tmp_path):
    """init and enroll keep the CA key, every node key and every bundle at mode 0600, and the
    bundle's certificate names the node's code and role."""
    net = Network(tmp_path)
    net.add(TOWNSHIP)
    net.add(VILLAGE)
    district, township, village_home = net.home(DISTRICT), net.home(TOWNSHIP), net.home(VILLAGE)
    secrets = [district / "ca.key", district / "node.key", township / "node.key", village_home / "node.key"]
    secrets += [tmp_path / f"{TOWNSHIP}.bundle", tmp_path / f"{VILLAGE}.bundle"]
    assert {path.name: mode(path) for path in secrets} == {path.name: 0o600 for path in secrets}
    bundle = Bundle.read(tmp_path / f"{VILLAGE}.bundle", "village")
    assert identity_of(bundle.certificate.encode()) == identity_of((village_home / "node.crt").read_bytes())
    assert (identity_of(bundle.certificate.encode()).code, bundle.upstream_code) == (VILLAGE, TOWNSHIP)
    assert not (township / "ca.key").exists() and not (village_home / "ca.key").exists()
    assert "insecure_loopback = false" in (township / "node.toml").read_text(encoding="utf-8")


@pytest.mark.e2e
def test_insecure_loopback_with_a_non_loopback_address_is_refused_in_one_line(tmp_path):
    """init --insecure-loopback towards a remote upstream, and serve of such a node on a
    public address, each fail with one line on stderr and leave nothing running."""
    net = Network(tmp_path)
    bundle = tmp_path / "t.bundle"
    net.cli("district", DISTRICT, "enroll", "--code", TOWNSHIP, "--out", str(bundle))
    done = net.cli(
        "township", TOWNSHIP, "init", "--bundle", str(bundle), "--district", "10.0.0.5:50051",
        "--insecure-loopback", check=False,
    )  # fmt: skip
    assert done.returncode == 2 and not net.home(TOWNSHIP).exists()
    assert done.stderr.decode().count("\n") == 1 and b"not a loopback address" in done.stderr
    plain = tmp_path / "plain"
    command = [sys.executable, "-m", "district_node", "init", "--home", str(plain), "--code", DISTRICT]
    subprocess.run([*command, "--divisions", str(DIVISIONS), "--insecure-loopback"], check=True)
    serve = [sys.executable, "-m", "district_node", "serve", "--home", str(plain)]
    done = subprocess.run([*serve, "--listen", f"0.0.0.0:{free_port()}"], capture_output=True, timeout=60)
    assert done.returncode == 2 and b"not a loopback address" in done.stderr
    assert b"Traceback" not in done.stderr and done.stderr.decode().strip().count("\n") == 0


@pytest.mark.e2e
def test_the_e2e_network_runs_mutual_tls(tmp_path):
    """The test network's servers speak only mutual TLS: a plaintext health check gets no
    answer, while a township syncs through its certificate."""
    net = Network(tmp_path)
    net.add(TOWNSHIP)
    net.start(DISTRICT)
    try:
        with pytest.raises(TimeoutError):
            wait_serving(net.address(DISTRICT), timeout=1.0)  # plaintext: no home, no certificate
        assert net.sync(TOWNSHIP)["backlog"] == 0
        status = net.node(TOWNSHIP, "status", "--json")
        assert status["last_push"] is not None
    finally:
        net.stop_all()
    assert '"tls": "mutual-tls"' in net.log_text()
