"""Joining the network: a township or village node created from its enrollment bundle."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from casework import InvalidInput
from relay.bundle import Bundle
from relay.config import NodeConfig, TLSConfig, default_db_url
from relay.pki import (
    CA_CERT_FILE,
    CA_YEARS,
    NODE_DAYS,
    Authority,
    Identity,
    Issued,
    identity_of,
    write_pair,
    write_public,
)
from relay.tls import require_loopback


def config_from_bundle(
    home: Path,
    bundle: Bundle,
    upstream: str,
    db: str | None,
    operator: str,
    insecure_loopback: bool = False,
) -> NodeConfig:
    """The node's config; refuses (InvalidInput) a bundle without a certificate, and plaintext
    to an upstream that is not on this machine's loopback interface."""
    if insecure_loopback:
        require_loopback(upstream, "upstream address")
    elif not bundle.has_credentials:
        said = (
            f"the bundle for {bundle.code} holds no certificate (made before mutual TLS): "
            "enroll the node again with 'district-node enroll'"
        )
        raise InvalidInput(said, "bundle_uncertified")
    if bundle.has_credentials:
        _check_certificate(bundle)
    return NodeConfig(
        code=bundle.code,
        role=bundle.role,
        name=bundle.name,
        district_code=bundle.district_code,
        db_url=db or default_db_url(home),
        operator=operator,
        upstream=upstream,
        upstream_code=bundle.upstream_code,
        tls=replace(TLSConfig(), insecure_loopback=insecure_loopback),
    )


def install_credentials(home: Path, bundle: Bundle, tls: TLSConfig) -> None:
    """Keep the bundle's key (mode 0600) and certificates in the node's home, where ``tls``
    says; a bundle without them (format 1) installs nothing."""
    if not bundle.has_credentials:
        return
    write_public(home / tls.ca_file, bundle.ca_certificate.encode())
    write_pair(home / tls.key_file, home / tls.cert_file, bundle.key.encode(), bundle.certificate.encode())


def reinstall_credentials(home: Path, config: NodeConfig, bundle: Bundle) -> None:
    """A node's ``renew --bundle``: the key and certificate of a new bundle for the same node
    (an expired or revoked certificate, enrolled again at the district) replace its own."""
    if (bundle.code, bundle.role) != (config.code, config.role):
        theirs, mine = f"{bundle.role} {bundle.code}", f"{config.role} {config.code}"
        raise InvalidInput(
            f"the bundle enrolls {theirs}, not this {mine}", "bundle_other", theirs=theirs, mine=mine
        )
    if not bundle.has_credentials:
        said = "the bundle holds no certificate: enroll the node again at the district"
        raise InvalidInput(said, "bundle_uncertified")
    _check_certificate(bundle)
    install_credentials(home, bundle, config.tls)


def _check_certificate(bundle: Bundle) -> None:
    if identity_of(bundle.certificate.encode()) != Identity(bundle.code, bundle.role):
        said = f"the bundle's certificate is not {bundle.role} {bundle.code}'s: enroll it again"
        raise InvalidInput(said, "bundle_certificate", node=bundle.code)


def found_network(home: Path, district_code: str, tls: TLSConfig) -> None:
    """The district's ``init``: the network's certificate authority (its key stays in the
    district's home, mode 0600) and the district's own key and certificate, which it serves
    the townships with (valid as long as the CA: the district has no upstream to renew with)."""
    now = datetime.now(UTC)
    authority = Authority.create(district_code, now)
    authority.save(home)
    own = authority.issue(district_code, "district", now, days=CA_YEARS * 365)
    write_pair(home / tls.key_file, home / tls.cert_file, own.key_pem, own.cert_pem)
    if (home / tls.ca_file) != (home / CA_CERT_FILE):
        write_public(home / tls.ca_file, authority.cert_pem)


def issue_for(home: Path, code: str, role: str, days: int = NODE_DAYS) -> Issued:
    """A key and certificate for a township or village, from the CA in the district's home."""
    return Authority.load(home).issue(code, role, datetime.now(UTC), days)
