"""Who signs a node's new certificate: the district, with the CA key that never leaves it.

A township has no CA key: it passes its villages' requests on to the district (renewal, and
enrollment by one-time token), so a stolen township server cannot mint certificates offline,
the district logs every certificate it issues, and revocation stays in one place.
"""

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casework import Divisions
from relay.clock import now_us
from relay.pki import NODE_DAYS, Authority, requested_key
from relay.schema import nodes

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Certified:
    certificate: bytes  # PEM
    ca_certificate: bytes  # PEM
    name: str  # the subject's division name
    upstream_name: str


class Certifier(Protocol):
    async def certify(self, subject: str, csr: bytes) -> Certified: ...


class CertifiesFor(Protocol):
    """An upstream that certifies (relay.upstream.Upstream)."""

    async def certify(self, node: str, subject: str, csr: bytes) -> Certified: ...


class DistrictCertifier:
    """The district signs with its CA, naming the subject from its divisions file, and
    records the node as enrolled (coverage counts it)."""

    def __init__(self, home: Path, divisions: Path, engine: AsyncEngine) -> None:
        self.home = home
        self.divisions = divisions
        self.engine = engine

    async def certify(self, subject: str, csr: bytes) -> Certified:
        public = requested_key(csr)
        known = Divisions.from_csv(self.divisions)
        division = known.require(subject, "township", "village")
        parent = known.require(division.parent_code) if division.level == "village" else known.district
        authority = Authority.load(self.home)
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

    async def certify(self, subject: str, csr: bytes) -> Certified:
        requested_key(csr)  # refuse a bad request here rather than at the district
        return await self.upstream.certify(self.code, subject, csr)


async def record_enrolled(conn: AsyncConnection, code: str, role: str, name: str) -> None:
    """Note in ``nodes`` that ``code`` holds a certificate issued now."""
    values = {"role": role, "name": name, "enrolled_at": now_us()}
    exists = (await conn.execute(select(nodes.c.code).where(nodes.c.code == code))).scalar()
    if exists:
        await conn.execute(nodes.update().where(nodes.c.code == code).values(**values))
    else:
        await conn.execute(nodes.insert().values(code=code, **values))
