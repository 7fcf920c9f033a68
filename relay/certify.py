"""Who signs a node's new certificate: the district, with the CA key that never leaves it.

A township has no CA key: it passes its villages' requests on to the district (renewal, and
enrollment by one-time token), so a stolen township server cannot mint certificates offline,
the district logs every certificate it issues, and revocation stays in one place.

Every request shows what entitles its subject (``Standing``): its current certificate (a
renewal: the caller's own on its mutual-TLS link, or a village's as the village presented it
to its township), or when the one-time token it enrolls with was made. The district refuses
a certificate its revocation list covers, and a token made before the subject's revocation:
a revoked village gets back only with a token made for it afterwards, whatever its township's
copy of the list says.
"""

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casework import Divisions, InvalidInput
from relay import revocations
from relay.clock import iso, now_us
from relay.db import put_row
from relay.errors import CertificateRefused
from relay.pki import NODE_DAYS, Authority, Identity, identity_of, requested_key, signed_by, validity_of
from relay.schema import nodes

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Certified:
    certificate: bytes  # PEM
    ca_certificate: bytes  # PEM
    name: str  # the subject's division name
    upstream_name: str


@dataclass(frozen=True, slots=True)
class Standing:
    """What entitles a request for ``subject``'s new certificate: its current one (PEM), or
    the moment its one-time enrollment token was made (microseconds)."""

    certificate: bytes = b""
    token_made_at: int = 0


OWN = Standing()  # a node asking for its own: the certificate it shows on the link is its standing


class Certifier(Protocol):
    async def certify(self, subject: str, csr: bytes, standing: Standing) -> Certified: ...


class CertifiesFor(Protocol):
    """An upstream that certifies (relay.upstream.Upstream)."""

    async def certify(self, node: str, subject: str, csr: bytes, standing: Standing = OWN) -> Certified: ...


class DistrictCertifier:
    """The district signs with its CA, naming the subject from its divisions file, and
    records the node as enrolled (coverage counts it)."""

    def __init__(self, home: Path, divisions: Path, engine: AsyncEngine) -> None:
        self.home = home
        self.divisions = divisions
        self.engine = engine

    async def certify(self, subject: str, csr: bytes, standing: Standing) -> Certified:
        public = requested_key(csr)
        known = Divisions.from_csv(self.divisions)
        division = known.require(subject, "township", "village")
        parent = known.require(division.parent_code) if division.level == "village" else known.district
        authority = Authority.load(self.home)
        async with self.engine.connect() as conn:
            revoked = await revocations.find(conn, subject)
        _check_standing(subject, division.level, standing, revoked, authority.cert_pem)
        now = datetime.datetime.now(datetime.UTC)
        cert = authority.certify(subject, division.level, public, now, NODE_DAYS)
        async with self.engine.begin() as conn:
            await record_enrolled(conn, subject, division.level, division.name)
        log.info("security.certificate.issued", code=subject, days=NODE_DAYS)
        return Certified(cert, authority.cert_pem, division.name, parent.name)


class UpstreamCertifier:
    """A township: asks the district, as itself, for a certificate of ``subject``."""

    def __init__(self, upstream: CertifiesFor, code: str) -> None:
        self.upstream = upstream
        self.code = code

    async def certify(self, subject: str, csr: bytes, standing: Standing) -> Certified:
        requested_key(csr)  # refuse a bad request here rather than at the district
        return await self.upstream.certify(self.code, subject, csr, standing)


def _check_standing(
    subject: str, role: str, standing: Standing, revoked: revocations.Revocation | None, ca_pem: bytes
) -> None:
    """Refuse a request whose standing does not entitle ``subject`` to a new certificate."""
    if standing.certificate:
        shown = standing.certificate
        if not signed_by(shown, ca_pem) or identity_of(shown) != Identity(subject, role):
            raise CertificateRefused(f"the certificate shown for {subject} is not one this district issued")
        if revoked is not None and revoked.refuses(validity_of(shown).issued_us):
            raise CertificateRefused(revoked.refusal())
    elif standing.token_made_at:
        if revoked is not None and standing.token_made_at <= revoked.revoked_at:
            raise CertificateRefused(
                f"the enrollment token for {subject} was made before the district revoked its "
                f"certificates ({iso(revoked.revoked_at)[:19]}): ask the township for a new token"
            )
    else:
        raise InvalidInput(
            f"a request for {subject}'s certificate must show its current certificate (over mutual "
            "TLS) or an enrollment token: a township passing it on may need a newer release"
        )


async def record_enrolled(conn: AsyncConnection, code: str, role: str, name: str) -> None:
    """Note in ``nodes`` that ``code`` holds a certificate issued now."""
    await put_row(conn, nodes, "code", code, {"role": role, "name": name, "enrolled_at": now_us()})
