"""How a node's gRPC links are secured: mutual TLS with its enrollment certificate, or —
for tests only, asked for explicitly — plaintext on the loopback interface.

Servers require a client certificate signed by the network's CA; clients check the server's
certificate against the CA and against the name its upstream's code gives it
(``relay.pki.server_name``). Who a caller is comes from its verified certificate only
(``peer_certificate``), never from a field of its message.
"""

import asyncio
import enum
import ipaddress
import ssl
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from casework import InvalidInput
from relay.pki import (
    CA_CERT_FILE,
    NODE_CERT_FILE,
    NODE_KEY_FILE,
    holds_key,
    server_name,
)


class Plaintext(enum.Enum):
    """No TLS: allowed only where every address is a loopback address (tests)."""

    LOOPBACK = "insecure-loopback"


INSECURE_LOOPBACK = Plaintext.LOOPBACK


@dataclass(frozen=True, slots=True)
class Credentials:
    """A node's key, its certificate and the CA certificate (PEM)."""

    key: bytes
    cert: bytes
    ca: bytes

    @classmethod
    def load(
        cls, home: Path, key: str = NODE_KEY_FILE, cert: str = NODE_CERT_FILE, ca: str = CA_CERT_FILE
    ) -> "Credentials":
        """Read them from files in (or, if absolute, outside) the node's home."""
        try:
            return cls(*((home / name).read_bytes() for name in (key, cert, ca)))
        except FileNotFoundError as exc:
            said = (
                f"no TLS key or certificate at {exc.filename}: this node has no enrollment "
                "certificate; set it up from a bundle made by 'district-node enroll'"
            )
            raise InvalidInput(said, "no_certificate", path=str(exc.filename)) from exc
        except OSError as exc:
            said = f"cannot read {exc.filename}: {exc.strerror}"
            raise InvalidInput(said, "tls_unreadable", path=str(exc.filename), reason=exc.strerror) from exc

    def server_credentials(self) -> grpc.ServerCredentials:
        """Serve with this node's certificate; callers must show one signed by the CA."""
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True
        )

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(self.key, self.cert)], root_certificates=self.ca)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Dial with this node's certificate; trust only servers signed by the CA."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


Security = Credentials | Plaintext


def reloading_server_credentials(load: Callable[[], Credentials]) -> grpc.ServerCredentials:
    """Serve with what ``load`` reads (the node's files), read again at each new connection: a
    renewed key and certificate are served from the next connection on, without a restart.
    A pair caught half-replaced, or unreadable, leaves the current one in use."""
    served = [load()]

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        try:
            fresh = load()
            if fresh == served[0] or not holds_key(fresh.key, fresh.cert):
                return None
        except (InvalidInput, ValueError):
            return None
        served[0] = fresh
        return fresh._configuration()

    return grpc.dynamic_ssl_server_credentials(
        served[0]._configuration(), fetch, require_client_authentication=True
    )


def channel_options(server_code: str) -> list[tuple[str, str]]:
    """Check the server's certificate against the name of the node we mean to reach, whatever
    address (IP, proxy, NAT) we reach it by."""
    return [("grpc.ssl_target_name_override", server_name(server_code))]


def peer_certificate(auth_context: Mapping[str, Iterable[bytes]]) -> bytes:
    """The caller's verified certificate (PEM) from ``context.auth_context()`` of a mutual-TLS
    server; InvalidInput if the connection carries none."""
    pem = next(iter(auth_context.get("x509_pem_cert", ())), None)
    if pem is None:
        raise InvalidInput("the caller presented no certificate")
    return pem


async def served_certificate(
    target: str, credentials: Credentials, server_code: str, seconds: float
) -> bytes:
    """The certificate (PEM) the server at HOST:PORT presents to a new connection, checked as
    the gRPC channel checks it: signed by the CA, naming ``server_code``. gRPC shows a client
    nothing of the server's certificate, so this is a handshake of its own, closed at once.
    ssl.SSLError, OSError or TimeoutError if it fails."""
    host, _, port = target.removeprefix("ipv4:").removeprefix("ipv6:").rpartition(":")
    opening = asyncio.open_connection(
        host.strip("[]"),
        int(port),
        ssl=_client_context(credentials),
        server_hostname=server_name(server_code),
    )
    async with asyncio.timeout(seconds):
        _, writer = await opening
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return ssl.DER_cert_to_PEM_cert(der).encode()


def _client_context(credentials: Credentials) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=credentials.ca.decode())
    context.set_alpn_protocols(["h2"])
    with tempfile.TemporaryDirectory() as folder:  # ssl reads a key from files only (mode 0700)
        key, cert = Path(folder) / "node.key", Path(folder) / "node.crt"
        key.write_bytes(credentials.key)
        cert.write_bytes(credentials.cert)
        context.load_cert_chain(cert, key)
    return context


def is_loopback(address: str) -> bool:
    """Whether HOST:PORT names this machine's loopback interface (127.0.0.0/8, ::1, localhost)."""
    host = address.rpartition(":")[0] if ":" in address else address
    host = host.removeprefix("ipv4:").removeprefix("ipv6:").strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_loopback(address: str, what: str) -> None:
    """Refuse plaintext on any address but a loopback one."""
    if not is_loopback(address):
        raise InvalidInput(
            f"insecure_loopback is set but the {what} {address} is not a loopback address: "
            "plaintext is only for tests on one machine; remove insecure_loopback to use mutual TLS"
        )
