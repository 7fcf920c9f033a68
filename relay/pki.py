"""The network's certificate authority and the nodes' certificates (mutual TLS, R13).

The district's ``init`` makes the CA; ``enroll`` issues each township and village a key and a
certificate. Every node's certificate serves both ends of a link: as the server's certificate
towards the nodes below, as the client's towards its upstream.

Identity scheme (what servers read from a verified peer certificate):

- subject CN = the node's division code (``500117001``), subject OU = its role
  (``district``, ``township`` or ``village``); the role must match the code's length;
- one DNS name in the subject alternative names, ``<code>.servicenet`` (see ``server_name``):
  a client dials its upstream by any address and checks the server's certificate against this
  name (gRPC's ``ssl_target_name_override``), so deployments need no DNS records.

Keys are EC P-256; the CA and the district's own certificate are valid for 10 years, a node's
certificate for a year (``enroll --valid-days``). A node renews its own over its link before a
third of its validity is left (relay/renewal.py): it makes a new key and sends a signing request
(``make_request``), which the district signs (``Authority.certify``) for the node itself or, passed
on by a township, for one of its villages. Revocation (relay/revocations.py) refuses every
certificate issued to a code before a moment (``issued_us``).
"""

import datetime
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from filelock import FileLock, Timeout

from casework import InvalidInput, level_of_code

CA_KEY_FILE = "ca.key"  # the district's only: whoever holds it can enroll nodes
CA_CERT_FILE = "ca.crt"
NODE_KEY_FILE = "node.key"
NODE_CERT_FILE = "node.crt"
CA_YEARS = 10
NODE_DAYS = 365  # a township's or village's certificate, unless enroll says otherwise
NAME_SUFFIX = ".servicenet"
# A laptop whose clock runs a little behind must still accept a certificate issued today.
BACKDATE = datetime.timedelta(days=1)
_YEAR = datetime.timedelta(days=365)
LOCK_SECONDS = 30.0  # longest wait for another process replacing the key and certificate
_NEXT = ".next"  # a renewed key or certificate written beside the current one (write_pair)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a certificate says its holder is."""

    code: str
    role: str


@dataclass(frozen=True, slots=True)
class Issued:
    """A node's private key and certificate, and the CA's certificate, as PEM."""

    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes


@dataclass(frozen=True, slots=True)
class Authority:
    """The network's CA: its key signs every node's certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def create(cls, district_code: str, now: datetime.datetime) -> "Authority":
        """A new CA for the district's network."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"servicenet {district_code}"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"servicenet CA {district_code}"),
            ]
        )
        public = key.public_key()
        cert = (
            _validity(x509.CertificateBuilder(), now, CA_YEARS * _YEAR)
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue(self, code: str, role: str, now: datetime.datetime, days: int = NODE_DAYS) -> Issued:
        """A new key and a certificate for the node ``code`` of ``role``, signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert_pem = self.certify(code, role, key.public_key(), now, days)
        return Issued(_key_pem(key), cert_pem, self.cert_pem)

    def certify(
        self, code: str, role: str, public: ec.EllipticCurvePublicKey, now: datetime.datetime, days: int
    ) -> bytes:
        """A certificate (PEM) naming node ``code`` of ``role`` for the key ``public``, valid
        for ``days`` from ``now``."""
        if level_of_code(code) != role:
            raise InvalidInput(f"{code} is not a {role}'s code")
        if not 1 <= days <= CA_YEARS * 365:
            said = f"a certificate lasts 1 to {CA_YEARS * 365} days, not {days}"
            raise InvalidInput(said, "certificate_days", most=CA_YEARS * 365, days=days)
        organization = self.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        subject = x509.Name(
            [
                *organization,
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                x509.NameAttribute(NameOID.COMMON_NAME, code),
            ]
        )
        ca_key_id = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        cert = (
            _validity(x509.CertificateBuilder(), now, datetime.timedelta(days=days))
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(server_name(code))]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def save(self, home: Path) -> None:
        """Write the CA's key (mode 0600) and certificate into the district's home."""
        write_secret(home / CA_KEY_FILE, _key_pem(self.key))
        write_public(home / CA_CERT_FILE, self.cert_pem)

    @classmethod
    def load(cls, home: Path) -> "Authority":
        try:
            key = serialization.load_pem_private_key((home / CA_KEY_FILE).read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate((home / CA_CERT_FILE).read_bytes())
        except FileNotFoundError as exc:
            said = (
                f"no certificate authority in {home} ({exc.filename}): enroll nodes from the "
                "district's home made by 'district-node init'"
            )
            raise InvalidInput(said, "no_authority", home=str(home), path=str(exc.filename)) from exc
        except ValueError as exc:
            said = f"the certificate authority in {home} is damaged: {exc}"
            raise InvalidInput(said, "authority_damaged", home=str(home), reason=str(exc)) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            said = f"{home / CA_KEY_FILE} is not an EC private key"
            raise InvalidInput(said, "authority_damaged", home=str(home), reason=said)
        return cls(key, cert)


def server_name(code: str) -> str:
    """The DNS name in node ``code``'s certificate that its clients check it by."""
    return code + NAME_SUFFIX


@lru_cache(maxsize=4096)
def identity_of(cert_pem: bytes) -> Identity:
    """The identity in a (verified) node certificate; InvalidInput if it carries none."""
    try:
        subject = x509.load_pem_x509_certificate(cert_pem).subject
    except ValueError as exc:
        raise InvalidInput("the peer's certificate cannot be read") from exc
    codes = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    roles = subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if len(codes) != 1 or len(roles) != 1:
        raise InvalidInput("the peer's certificate names no single division code and role")
    code, role = str(codes[0].value), str(roles[0].value)
    try:
        level = level_of_code(code)
    except InvalidInput as exc:
        raise InvalidInput("the peer's certificate names no division code") from exc
    if level != role:
        raise InvalidInput(f"the peer's certificate names {code} as a {role[:16]}, but it is a {level}")
    return Identity(code, role)


@dataclass(frozen=True, slots=True)
class Validity:
    """When a certificate was issued (its start less the backdating) and until when it holds."""

    issued: datetime.datetime
    expires: datetime.datetime

    @property
    def issued_us(self) -> int:
        return int(self.issued.timestamp() * 1_000_000)

    def renewal_due(self, now: datetime.datetime) -> bool:
        """Less than a third of its validity left: time to renew."""
        return self.expires - now < (self.expires - self.issued) / 3


@lru_cache(maxsize=4096)
def validity_of(cert_pem: bytes) -> Validity:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return Validity(cert.not_valid_before_utc + BACKDATE, cert.not_valid_after_utc)


def make_request(code: str) -> tuple[bytes, bytes]:
    """A new key for node ``code`` and a signing request for it (both PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, code)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return _key_pem(key), request.public_bytes(serialization.Encoding.PEM)


def requested_key(csr_pem: bytes) -> ec.EllipticCurvePublicKey:
    """The EC P-256 key a signing request proves its sender holds; InvalidInput otherwise."""
    try:
        request = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise InvalidInput("the certificate signing request cannot be read (PEM PKCS#10)") from exc
    public = request.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise InvalidInput("the certificate signing request is not for an EC P-256 key")
    if not request.is_signature_valid:
        raise InvalidInput("the certificate signing request's signature does not match its key")
    return public


def signed_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """Whether the certificate was issued by this CA (unreadable counts as not)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def holds_key(key_pem: bytes, cert_pem: bytes) -> bool:
    """Whether the certificate is for this private key."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    cert_key = x509.load_pem_x509_certificate(cert_pem).public_key()
    return key.public_key() == cert_key


def write_pair(
    key_path: Path, cert_path: Path, key_pem: bytes, cert_pem: bytes, replacing: bytes | None = None
) -> bool:
    """Replace a key and its certificate so that a crash leaves the old pair or the new one:
    both are written whole beside the current files first, then moved in (see finish_pair),
    one process at a time (a lock file beside the key). With ``replacing``, only while the
    certificate is still that one: another process that renewed meanwhile keeps its pair.
    Returns whether the pair was written."""
    with _pair_lock(key_path):
        _finish_pair(key_path, cert_path)
        if replacing is not None and cert_path.read_bytes() != replacing:
            return False
        write_secret(key_path.with_name(key_path.name + _NEXT), key_pem)
        write_public(cert_path.with_name(cert_path.name + _NEXT), cert_pem)
        _finish_pair(key_path, cert_path)
    return True


def finish_pair(key_path: Path, cert_path: Path) -> None:
    """Complete a replacement write_pair began (a crash cut it short), under its lock."""
    with _pair_lock(key_path):
        _finish_pair(key_path, cert_path)


def _finish_pair(key_path: Path, cert_path: Path) -> None:
    """Once the new certificate is written, move the new files in; a new key without its
    certificate (a crash while writing) is dropped."""
    next_key, next_cert = (path.with_name(path.name + _NEXT) for path in (key_path, cert_path))
    if not next_cert.exists():
        next_key.unlink(missing_ok=True)
        return
    if next_key.exists():
        os.replace(next_key, key_path)
    os.replace(next_cert, cert_path)
    sync_folder(cert_path.parent)


@contextmanager
def _pair_lock(key_path: Path) -> Iterator[None]:
    """Held while a node's key and certificate are replaced: `run` renewing while `sync` does."""
    lock = FileLock(key_path.with_name(f".{key_path.name}.lock"), timeout=LOCK_SECONDS, thread_local=False)
    try:
        with lock:
            yield
    except Timeout as exc:
        said = f"another process has been replacing {key_path} for {LOCK_SECONDS:.0f} s: try again"
        raise InvalidInput(said, "key_busy", path=str(key_path), seconds=round(LOCK_SECONDS)) from exc


def write_secret(path: Path, data: bytes, replace: bool = True) -> None:
    """Write a file only its owner may read (0600), replacing any old one whole; without
    ``replace``, FileExistsError if there is one (two processes making it at once)."""
    _write(path, data, 0o600, replace)


def write_public(path: Path, data: bytes) -> None:
    _write(path, data, 0o644)


def _write(path: Path, data: bytes, mode: int, replace: bool = True) -> None:
    """Write ``data`` whole to a temporary file of its own beside ``path``, on disk (fsync)
    before it is moved in, and the move itself on disk (the folder's fsync) before returning."""
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        os.chmod(temporary, mode)  # mkstemp made it 0600
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if the file exists
    finally:
        temporary.unlink(missing_ok=True)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Put a folder's entries (a file moved in, one removed) on disk. (Windows opens no
    folder as a file; NTFS journals the move itself.)"""
    if os.name == "nt":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _validity(
    builder: x509.CertificateBuilder, now: datetime.datetime, length: datetime.timedelta
) -> x509.CertificateBuilder:
    return (
        builder.serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + length)
    )


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
