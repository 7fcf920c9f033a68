"""Renewing a node's certificate before it expires, over its own mutual-TLS link.

The node makes a new key and sends a signing request to its upstream (``Certify``): the
district signs a township's, a township passes its village's on to the district. The new key
and certificate replace the old pair atomically (relay.pki.write_pair); the node's server reads
them at its next connection (relay.tls.reloading_server_credentials) and its link upward is
dialled again with them, so nothing restarts and no call is lost.
"""

import asyncio
import datetime
from pathlib import Path

import structlog

from relay.config import NodeConfig
from relay.errors import PermanentError, RelayError
from relay.pki import Identity, Validity, holds_key, identity_of, make_request, validity_of, write_pair
from relay.sync import PULL_WAIT_MS
from relay.upstream import GrpcUpstream

log = structlog.get_logger()
CHECK_SECONDS = 60.0  # how often a running node looks at its certificate (renewed by a command?)


class Renewer:
    def __init__(self, home: Path, config: NodeConfig, upstream: GrpcUpstream) -> None:
        self.home = home
        self.config = config
        self.upstream = upstream

    def validity(self) -> Validity:
        return validity_of(self.config.tls.credentials(self.home).cert)

    def due(self) -> bool:
        return self.validity().renewal_due(datetime.datetime.now(datetime.UTC))

    async def renew(self) -> Validity:
        """A new key and certificate, signed through the upstream, kept in place of the old."""
        code, tls = self.config.code, self.config.tls
        current = tls.credentials(self.home).cert
        key_pem, csr = make_request(code)
        got = await self.upstream.certify(code, code, csr)
        mine = Identity(code, self.config.role)
        if identity_of(got.certificate) != mine or not holds_key(key_pem, got.certificate):
            raise PermanentError("the upstream answered with a certificate that is not this node's new one")
        paths = self.home / tls.key_file, self.home / tls.cert_file
        if not write_pair(*paths, key_pem, got.certificate, replacing=current):
            log.info("security.certificate.renewed_elsewhere", code=code)  # `run` and `sync` at once
            return self.validity()
        validity = validity_of(got.certificate)
        log.info("security.certificate.renewed", code=code, expires=validity.expires.isoformat())
        return validity

    async def renew_if_due(self) -> None:
        """What ``sync`` does at its end, so a laptop that only ever syncs renews too: best
        effort, a failure is logged and tried again at the next sync."""
        if self.due():
            try:
                await self.renew()
            except RelayError as exc:
                log.warning("relay.renew.failed", error=str(exc))

    async def adopt(self) -> None:
        """Dial the upstream with the files' key and certificate if they changed (renewed here
        or by a command), leaving calls under way their time to finish."""
        fresh = self.config.tls.credentials(self.home)
        if fresh != self.upstream.security and holds_key(fresh.key, fresh.cert):
            grace = self.config.relay.push_timeout_seconds + PULL_WAIT_MS / 1000
            await self.upstream.reconnect(fresh, grace)

    async def renew_forever(self, every: float = CHECK_SECONDS) -> None:
        """What a running node does beside its links: renew when due, then use what is new."""
        while True:
            try:
                if self.due():
                    await self.renew()
                await self.adopt()
            except RelayError as exc:
                log.error("relay.renew.failed", error=str(exc))
            except Exception as exc:  # an unreadable file: keep the link, try again later
                log.error("relay.renew.failed", error=type(exc).__name__)
            await asyncio.sleep(every)
