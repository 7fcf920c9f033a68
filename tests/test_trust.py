"""Revocation, expiry, renewal and enrollment by token: real certificates, real gRPC servers
on loopback, real SQLite files; the district signs with a CA kept in its home as `init` keeps it.

Each node of the ``net`` fixture gets its key and certificates as files in its home, as
enrollment leaves them, so renewal replaces real files that the servers read again.
"""

import asyncio
import datetime
import os
import socket
import ssl
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from sqlalchemy import select, update
from structlog.testing import capture_logs
from typer.testing import CliRunner

from casework import InvalidInput, level_of_code
from messages import t
from relay import revocations
from relay.certify import Certifier, DistrictCertifier, UpstreamCertifier
from relay.clock import now_us
from relay.enrollment import EnrollmentServicer, enroll_with_token, make_token, start_enrollment
from relay.errors import CertificateRefused, NotPermitted, PermanentError, TransientError
from relay.handshake import explain
from relay.node import Node
from relay.pki import (
    NODE_DAYS,
    Authority,
    finish_pair,
    holds_key,
    identity_of,
    make_request,
    validity_of,
    write_pair,
    write_public,
)
from relay.renewal import Renewer
from relay.schema import enroll_tokens, nodes
from relay.server import start_server
from relay.service import RelayService
from relay.sync import Syncer
from relay.tls import Credentials
from relay.upstream import GrpcUpstream
from tests.conftest import DISTRICT, OTHER_TOWNSHIP, OTHER_VILLAGE, PG_URL, TOWNSHIP, VILLAGE, fresh_postgres
from tests.netkit import DIVISIONS, Network, free_port
from tests.test_hostile_input import village_events
from village_agent.cli import app as village_app

TIMEOUT = 10.0
NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


@pytest.fixture
def district_db(request: pytest.FixtureRequest) -> str:
    """SQLite, unless a test asks for PostgreSQL too (where the district's own tables matter)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return ""
    return asyncio.run(fresh_postgres(PG_URL))


BOTH_DATABASES = pytest.mark.parametrize("district_db", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority.create(DISTRICT, NOW)


def enroll(
    node: Node, authority: Authority, issued: datetime.datetime = NOW, days: int = NODE_DAYS
) -> Credentials:
    """Give ``node`` a key and certificate (issued at ``issued``) in its home, as `init` keeps them."""
    code = node.config.code
    made = authority.issue(code, level_of_code(code), issued, days)
    tls = node.config.tls
    write_public(node.home / tls.ca_file, authority.cert_pem)
    write_pair(node.home / tls.key_file, node.home / tls.cert_file, made.key_pem, made.cert_pem)
    return tls.credentials(node.home)


@dataclass
class Link:
    """A node's gRPC client of its upstream and its syncer."""

    upstream: GrpcUpstream
    syncer: Syncer


@asynccontextmanager
async def link(node: Node, target: str, creds: Credentials) -> AsyncIterator[Link]:
    config = node.config
    upstream = GrpcUpstream(target, TIMEOUT, creds, config.upstream_code, config.code, node.engine)
    try:
        yield Link(upstream, Syncer(node.engine, node.ledger, upstream))
    finally:
        await upstream.close()


@asynccontextmanager
async def serving(node: Node, certifier: Certifier | None = None) -> AsyncIterator[str]:
    """The node's Relay on a loopback port, with the key and certificate its home holds now
    (read again at each connection, as `serve` does); yields HOST:PORT."""
    service = RelayService(node.engine, node.ledger, certifier)
    reload = lambda: node.config.tls.credentials(node.home)  # noqa: E731
    server, port = await start_server(service, "127.0.0.1:0", reload(), reload)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


def district_certifier(node: Node, authority: Authority) -> DistrictCertifier:
    authority.save(node.home)
    return DistrictCertifier(node.home, DIVISIONS, node.engine)


async def revoke(node: Node, code: str) -> None:
    async with node.engine.begin() as conn:
        await revocations.revoke(conn, code, "lost laptop", now_us())


# --- revocation ---------------------------------------------------------------------------------


async def test_revoked_village_is_refused_by_its_township_after_one_sync_with_the_district_away(
    net, authority
):
    """The district revokes a village; one township sync later the township refuses it with a
    reason (UNAUTHENTICATED, logged as security.refused), from its own copy of the list, though
    the district is gone by then."""
    district_creds = enroll(net.district, authority)
    township_creds, village_creds = enroll(net.township, authority), enroll(net.village, authority)
    await village_events(net.village, 1)
    async with (
        serving(net.township) as township_target,
        link(net.village, township_target, village_creds) as v,
    ):
        assert (await v.syncer.sync(10)).backlog == 0
        async with (
            serving(net.district) as district_target,
            link(net.township, district_target, township_creds) as t,
        ):
            assert district_creds.cert  # the district served with its own certificate
            await revoke(net.district, VILLAGE)
            await t.syncer.sync(10)
        await village_events(net.village, 1)
        with (
            capture_logs() as logs,
            pytest.raises(CertificateRefused, match=f"certificate of {VILLAGE} was revoked"),
        ):
            await v.syncer.sync(10)
    refusals = [e for e in logs if e["event"] == "security.refused"]
    assert refusals and refusals[0]["peer"] == VILLAGE and "revoked" in refusals[0]["reason"]
    async with net.township.engine.connect() as conn:
        kept = await revocations.find(conn, VILLAGE)
    assert kept is not None and kept.reason == ""  # the reason stays at the district


async def test_a_village_refuses_to_push_to_a_township_its_list_revokes_until_it_is_enrolled_again(
    net, authority
):
    """A village whose own list revokes its township (a stolen server still serving with the
    old certificate) refuses to talk to it, saying so in one line and logging a security
    event: nothing of the village reaches the township. The township enrolled again later, on
    a new certificate, gets the village's events."""
    enroll(net.township, authority)
    village_creds = enroll(net.village, authority)
    await village_events(net.village, 2)
    await revoke(net.village, TOWNSHIP)
    async with serving(net.township) as target, link(net.village, target, village_creds) as v:
        with (
            capture_logs() as logs,
            pytest.raises(CertificateRefused, match=f"upstream {TOWNSHIP} at {target} serves .* revoked"),
        ):
            await v.syncer.sync(10)
        async with net.township.engine.connect() as conn:
            assert (await conn.execute(select(nodes))).all() == []  # not even a heartbeat
    [event] = [e for e in logs if e["event"] == "security.upstream_revoked"]
    assert event["upstream"] == TOWNSHIP and "init --township" in event["reason"]
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
    enroll(net.township, authority, issued=later)
    async with serving(net.township) as target, link(net.village, target, village_creds) as v:
        assert (await v.syncer.sync(10)).backlog == 0


@BOTH_DATABASES
async def test_revoked_township_is_refused_by_the_district_at_once_and_enrolled_again_later(net, authority):
    """A revoked township's next sync is refused by the district, saying so; a certificate the
    district issues it afterwards (a new server) is good."""
    enroll(net.district, authority)
    old = enroll(net.township, authority)
    async with serving(net.district) as target:
        async with link(net.township, target, old) as t:
            await t.syncer.sync(10)
            await revoke(net.district, TOWNSHIP)
            with pytest.raises(CertificateRefused, match="revoked by the district"):
                await t.syncer.sync(10)
        new = enroll(
            net.township,
            authority,
            issued=datetime.datetime.now(datetime.UTC) + 2 * datetime.timedelta(seconds=1),
        )
        async with link(net.township, target, new) as t:
            assert (await t.syncer.sync(10)).backlog == 0


async def test_a_revoked_village_gets_no_certificate_through_a_township_that_has_not_heard(net, authority):
    """The district refuses a renewal the township passes on for a village it revoked, though
    the township's copy of the list is stale; an enrollment token made before the revocation
    is refused too, one made after it gets the village back. The township's heartbeat brings
    the list down without a pull."""
    enroll(net.district, authority)
    certifier = district_certifier(net.district, authority)
    village_creds = enroll(net.village, authority)
    async with (
        serving(net.district, certifier) as district_target,
        link(net.township, district_target, enroll(net.township, authority)) as t,
        serving(net.township, UpstreamCertifier(t.upstream, TOWNSHIP)) as township_target,
        link(net.village, township_target, village_creds) as v,
    ):
        async with net.township.engine.begin() as conn:
            before = await make_token(conn, net.township.config, VILLAGE, 10)
        await revoke(net.district, VILLAGE)
        _, csr = make_request(VILLAGE)
        with pytest.raises(PermanentError, match=f"certificate of {VILLAGE} was revoked"):
            await v.upstream.certify(VILLAGE, VILLAGE, csr)
        servicer = EnrollmentServicer(
            net.township.engine, net.township.config, UpstreamCertifier(t.upstream, TOWNSHIP)
        )
        server, port = await start_enrollment(servicer, "127.0.0.1:0")
        try:
            with pytest.raises(InvalidInput, match=f"token for {VILLAGE} was made before"):
                await enroll_with_token(f"127.0.0.1:{port}", before.text)
            async with net.township.engine.begin() as conn:
                after = await make_token(conn, net.township.config, VILLAGE, 10)
            assert (await enroll_with_token(f"127.0.0.1:{port}", after.text)).code == VILLAGE
        finally:
            await server.stop(None)
        beating = asyncio.create_task(t.syncer.heartbeat_forever(every=0.05))
        try:
            for _ in range(100):
                async with net.township.engine.connect() as conn:
                    if await revocations.find(conn, VILLAGE):
                        break
                await asyncio.sleep(0.05)
        finally:
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)
        async with net.township.engine.connect() as conn:
            assert await revocations.find(conn, VILLAGE) is not None


# --- expiry and clear handshake failures --------------------------------------------------------


async def test_expired_or_foreign_certificates_are_refused_and_the_client_says_which(net, authority):
    """The handshake refuses an expired or foreign client certificate, and a server whose
    certificate expired; the dialing node is told which, not 'unreachable'."""
    [record] = await village_events(net.village, 1)
    expired = authority.issue(VILLAGE, "village", NOW - 400 * DAY, days=365)
    stranger = Authority.create(DISTRICT, NOW).issue(VILLAGE, "village", NOW)
    cases = [
        (
            Credentials(expired.key_pem, expired.cert_pem, authority.cert_pem),
            "this node's certificate: it expired on",
        ),
        (
            Credentials(stranger.key_pem, stranger.cert_pem, authority.cert_pem),
            "not signed by this network's CA",
        ),
    ]
    enroll(net.township, authority)
    async with serving(net.township) as target:
        for creds, reason in cases:
            async with link(net.village, target, creds) as v:
                with pytest.raises(CertificateRefused, match=reason):
                    await v.upstream.push(VILLAGE, 7, [(1, record)])
    enroll(net.township, authority, issued=NOW - 400 * DAY, days=365)
    async with (
        serving(net.township) as target,
        link(net.village, target, enroll(net.village, authority)) as v,
    ):
        with pytest.raises(
            CertificateRefused, match=f"the certificate of the upstream {TOWNSHIP} has expired"
        ):
            await v.upstream.push(VILLAGE, 7, [(1, record)])


# --- renewal ------------------------------------------------------------------------------------


def renewed_pem(node: Node) -> bytes:
    return (node.home / node.config.tls.cert_file).read_bytes()


def served_serial(target: str, creds: Credentials, folder: Path) -> int:
    """The serial number of the certificate a server presents to a new connection."""
    (folder / "c.key").write_bytes(creds.key)
    (folder / "c.crt").write_bytes(creds.cert)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.load_verify_locations(cadata=creds.ca.decode())
    context.load_cert_chain(folder / "c.crt", folder / "c.key")
    context.set_alpn_protocols(["h2"])
    host, port = target.rsplit(":", 1)
    with socket.create_connection((host, int(port))) as raw, context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@BOTH_DATABASES
async def test_renewal_while_serving_keeps_every_link_working(net, authority, tmp_path):
    """A township and its village, both near the end of their certificates, renew over their
    links while serving: the township's server presents the new certificate to the next
    connection without a restart, the connection already open keeps working, and the
    village's renewal goes through the township to the district."""
    near_end = NOW - 300 * DAY  # 65 of 365 days left: due
    enroll(net.district, authority)
    certifier = district_certifier(net.district, authority)
    township_creds = enroll(net.township, authority, issued=near_end)
    village_creds = enroll(net.village, authority, issued=near_end)
    async with (
        serving(net.district, certifier) as district_target,
        link(net.township, district_target, township_creds) as t,
        serving(net.township, UpstreamCertifier(t.upstream, TOWNSHIP)) as township_target,
        link(net.village, township_target, village_creds) as v,
    ):
        await village_events(net.village, 1)
        assert (await v.syncer.sync(10)).backlog == 0
        township = Renewer(net.township.home, net.township.config, t.upstream)
        assert township.due()
        with capture_logs() as logs:
            renewed = await township.renew()
        assert not township.due() and renewed.expires > NOW + 360 * DAY
        assert any(e["event"] == "security.certificate.issued" and e["code"] == TOWNSHIP for e in logs)
        await township.adopt()
        assert (await t.syncer.sync(10)).backlog == 0  # the township dials with its new certificate
        new_serial = x509.load_pem_x509_certificate(renewed_pem(net.township)).serial_number
        await village_events(net.village, 1)
        assert (await v.syncer.sync(10)).backlog == 0  # the village's open connection still works
        assert await asyncio.to_thread(served_serial, township_target, village_creds, tmp_path) == new_serial
        village = Renewer(net.village.home, net.village.config, v.upstream)
        running = asyncio.create_task(village.renew_forever(every=0.05))  # as `run` does
        try:
            for _ in range(100):
                if v.upstream.security != village_creds:
                    break
                await asyncio.sleep(0.05)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        assert not village.due() and v.upstream.security == net.village.config.tls.credentials(
            net.village.home
        )
        await village_events(net.village, 1)
        assert (await v.syncer.sync(10)).backlog == 0
        assert (await t.syncer.sync(10)).backlog == 0
    async with net.district.engine.connect() as conn:
        enrolled = (
            await conn.execute(select(nodes.c.code).where(nodes.c.enrolled_at.is_not(None)))
        ).scalars()
        assert set(enrolled) == {TOWNSHIP, VILLAGE}
    assert identity_of((net.village.home / "node.crt").read_bytes()).code == VILLAGE


# --- enrollment through the township with a one-time token -------------------------------------


async def test_enrollment_by_token_once_for_its_own_village_until_it_expires(net, authority):
    """A token gets its village a bundle (certified by the district, the key made at the
    village) once; used again, expired, unknown here (another township's) or for another
    township's village, it is refused with a one-line reason."""
    enroll(net.district, authority)
    certifier = district_certifier(net.district, authority)
    async with (
        serving(net.district, certifier) as district_target,
        link(net.township, district_target, enroll(net.township, authority)) as t,
    ):
        servicer = EnrollmentServicer(
            net.township.engine, net.township.config, UpstreamCertifier(t.upstream, TOWNSHIP)
        )
        server, port = await start_enrollment(servicer, "127.0.0.1:0")
        address = f"127.0.0.1:{port}"
        try:
            async with net.township.engine.begin() as conn:
                token = await make_token(conn, net.township.config, VILLAGE, 10)
                stale = await make_token(conn, net.township.config, VILLAGE, 10)
                unused = await make_token(conn, net.township.config, VILLAGE, 10)
                await conn.execute(
                    update(enroll_tokens)
                    .where(enroll_tokens.c.token_id == stale.token_id)
                    .values(expires_at=1)
                )
            bundle = await enroll_with_token(address, token.text)
            assert (bundle.code, bundle.upstream_code, bundle.district_code) == (VILLAGE, TOWNSHIP, DISTRICT)
            assert identity_of(bundle.certificate.encode()).code == VILLAGE and bundle.key
            assert validity_of(bundle.certificate.encode()).expires > NOW + 360 * DAY
            async with net.township.engine.connect() as conn:
                secrets = dict(
                    (await conn.execute(select(enroll_tokens.c.token_id, enroll_tokens.c.secret))).all()
                )
            assert secrets[token.token_id] == "" and secrets[unused.token_id]  # used: its secret is gone
            refusals = {
                token.text: "used already",
                stale.text: "expired at",
                "ABCDEFGH-" + "A" * 24: "this township issued no enrollment token ABCDEFGH",
                unused.token_id + "-" + "B" * 24: "does not match",
            }
            for text, reason in refusals.items():
                with pytest.raises(InvalidInput, match=reason) as refused:
                    await enroll_with_token(address, text)
                assert "\n" not in str(refused.value)
        finally:
            await server.stop(None)
        async with net.township.engine.begin() as conn:
            with pytest.raises(
                InvalidInput, match=f"{OTHER_VILLAGE} is not a village of township {TOWNSHIP}"
            ):
                await make_token(conn, net.township.config, OTHER_VILLAGE, 10)
        _, csr = make_request(OTHER_VILLAGE)
        with pytest.raises(NotPermitted, match=f"may not ask for a certificate of {OTHER_VILLAGE}"):
            await t.upstream.certify(TOWNSHIP, OTHER_VILLAGE, csr)
        with pytest.raises(NotPermitted):
            await t.upstream.certify(TOWNSHIP, OTHER_TOWNSHIP, csr)


async def test_a_token_stays_good_while_the_district_cannot_be_reached(net, authority):
    """The township cannot ask the district: the village is told to try again later, and the
    token, not used up, works once the district is back."""
    enroll(net.district, authority)
    certifier = district_certifier(net.district, authority)
    township_creds = enroll(net.township, authority)
    async with net.township.engine.begin() as conn:
        token = await make_token(conn, net.township.config, VILLAGE, 10)
    for target in (f"127.0.0.1:{free_port()}", None):
        async with serving(net.district, certifier) as district_target:
            async with link(net.township, target or district_target, township_creds) as t:
                servicer = EnrollmentServicer(
                    net.township.engine, net.township.config, UpstreamCertifier(t.upstream, TOWNSHIP)
                )
                server, port = await start_enrollment(servicer, "127.0.0.1:0")
                try:
                    if target is None:
                        assert (await enroll_with_token(f"127.0.0.1:{port}", token.text)).code == VILLAGE
                    else:
                        with pytest.raises(TransientError, match="the token stays good: try again later"):
                            await enroll_with_token(f"127.0.0.1:{port}", token.text)
                finally:
                    await server.stop(None)


@pytest.mark.e2e
def test_token_enrollment_renewal_and_revocation_through_the_command_lines(tmp_path):
    """township-node enroll-token, village-agent init --token, renew and district-node revoke,
    with real servers: the token works once; after the township's next sync the revoked
    village's sync fails with one line saying so."""
    net = Network(tmp_path)
    net.add(TOWNSHIP)
    enrollment = f"127.0.0.1:{free_port()}"
    net.start(DISTRICT)
    net.start(TOWNSHIP, "--enroll-listen", enrollment)
    try:
        made = net.node(TOWNSHIP, "enroll-token", "--village", VILLAGE, "--json")
        init = ["init", "--township", net.address(TOWNSHIP), "--enroll", enrollment, "--token", made["token"]]
        net.role[VILLAGE] = "village"
        net.node(VILLAGE, *init)
        again = net.cli("village", "again", *init, check=False)
        assert again.returncode == 2 and not net.home("again").exists()
        assert b"used already" in again.stderr and again.stderr.decode().count("\n") == 1
        assert net.sync(VILLAGE)["backlog"] == 0
        renewed = net.node(VILLAGE, "renew", "--json")["certificate_expires"]
        assert datetime.datetime.fromisoformat(renewed) > datetime.datetime.now(datetime.UTC) + 364 * DAY
        net.node(DISTRICT, "revoke", "--code", VILLAGE, "--reason", "lost laptop", "--json")
        net.sync(TOWNSHIP)
        refused = net.node(VILLAGE, "sync", "--timeout", "5", check=False)
        assert refused.returncode == 2 and b"was revoked by the district" in refused.stderr
        assert refused.stderr.decode().count("\n") == 1
    finally:
        net.stop_all()
    assert '"event": "security.refused"' in net.log_text()


def test_a_renewal_cut_short_leaves_the_old_pair_or_the_new_one(tmp_path, authority):
    """A crash after the new key and certificate were written whole is completed at the next
    start; one before the new certificate was written drops the new key."""
    key, cert = tmp_path / "node.key", tmp_path / "node.crt"
    old, new = (authority.issue(VILLAGE, "village", NOW) for _ in range(2))
    write_pair(key, cert, old.key_pem, old.cert_pem)
    (tmp_path / "node.key.next").write_bytes(new.key_pem)  # crashed before the certificate
    finish_pair(key, cert)
    assert (key.read_bytes(), cert.read_bytes()) == (old.key_pem, old.cert_pem)
    assert not (tmp_path / "node.key.next").exists()
    (tmp_path / "node.crt.next").write_bytes(new.cert_pem)  # crashed after moving the key in
    key.write_bytes(new.key_pem)
    finish_pair(key, cert)
    assert (key.read_bytes(), cert.read_bytes()) == (new.key_pem, new.cert_pem)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == ["node.crt", "node.key"]


def test_renewals_at_once_leave_a_matching_pair_written_to_disk(tmp_path, authority, monkeypatch):
    """`run` and `sync` renewing together: each replacement is whole (the lock file), the key
    always matches the certificate, and a renewal that finds the certificate replaced meanwhile
    keeps the other's pair. Every file written is flushed to disk, and its folder too."""
    key, cert = tmp_path / "node.key", tmp_path / "node.crt"
    pairs = [authority.issue(VILLAGE, "village", NOW) for _ in range(2)]
    write_pair(key, cert, pairs[0].key_pem, pairs[0].cert_pem)

    def replace_often(made) -> None:
        for _ in range(40):
            write_pair(key, cert, made.key_pem, made.cert_pem)
            assert holds_key(key.read_bytes(), cert.read_bytes())

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(replace_often, pairs))
    assert holds_key(key.read_bytes(), cert.read_bytes())
    assert not write_pair(key, cert, pairs[1].key_pem, pairs[1].cert_pem, replacing=b"an older certificate")
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    write_pair(key, cert, pairs[1].key_pem, pairs[1].cert_pem)
    assert len(synced) >= 4  # two files, the folder after each move in and after the pair


def test_init_with_a_token_checks_the_passphrase_before_it_uses_the_token_up(tmp_path):
    """A passphrase refused (too short) stops `init --token` before the township is asked, so
    the token stays good for the next try."""
    enroll_at = f"127.0.0.1:{free_port()}"  # nothing listens: asking it would fail otherwise
    args = ["init", "--home", str(tmp_path / "v"), "--township", enroll_at, "--enroll", enroll_at]
    token, short = "A" * 8 + "-" + "B" * 24, {"SERVICENET_PASSPHRASE": "short"}
    for given, env, typed in (
        (["--token", token], {}, None),
        (["--token", "-"], {}, token + "\n"),  # kept out of the shell's history
        ([], {"SERVICENET_ENROLL_TOKEN": token}, None),
    ):
        result = CliRunner().invoke(village_app, [*args, *given], env=short | env, input=typed)
        assert result.exit_code != 0 and t("refusal.passphrase_short", n=8) in result.output, given
        assert not (tmp_path / "v").exists()  # nothing left behind


async def test_a_handshake_failure_reported_oddly_is_still_told_in_one_line(authority):
    """TLS details without the usual colons, or an unreadable certificate of this node, give a
    line or no explanation (the failure as it came), never an exception of their own."""
    made = authority.issue(VILLAGE, "village", NOW)
    said = explain("CERTIFICATE_VERIFY_FAILED", made.cert_pem, authority.cert_pem, VILLAGE, TOWNSHIP)
    assert said is not None and "(no reason given)" in said
    creds = Credentials(made.key_pem, made.cert_pem, authority.cert_pem)
    upstream = GrpcUpstream(f"127.0.0.1:{free_port()}", TIMEOUT, creds, TOWNSHIP, VILLAGE)
    upstream.security = Credentials(made.key_pem, b"not a certificate", authority.cert_pem)
    failed = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down"
    )
    assert isinstance(upstream._error(failed), TransientError)
    await upstream.close()
