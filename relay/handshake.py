"""What a failed TLS handshake means, told to the operator of the node that dialed.

gRPC reports a refused handshake as an unreachable server. Where the cause can be seen — this
node's own certificate, or what the client's TLS said of the server's — it is named, with what
to do; otherwise the failure stays a transient one (the network may really be down).
"""

import datetime

from relay.pki import signed_by, validity_of
from relay.revocations import REENROLL


def explain(details: str, own_cert: bytes, own_ca: bytes, code: str, upstream_code: str) -> str | None:
    """One line saying why the upstream and this node could not shake hands, or None."""
    mine = _own_problem(own_cert, own_ca, datetime.datetime.now(datetime.UTC))
    if mine is not None:
        return f"the upstream refuses this node's certificate: {mine}; " + REENROLL.format(code=code)
    if "Hostname Verification" in details:
        return (
            f"the server dialed is not {upstream_code}: its certificate names another node; "
            "check the upstream address in node.toml"
        )
    if "CERTIFICATE_VERIFY_FAILED" in details:
        after = details.partition("CERTIFICATE_VERIFY_FAILED")[2].lstrip(": ")
        cause = after.partition(":")[0].strip() or "no reason given"
        if "expired" in cause:
            return f"the certificate of the upstream {upstream_code} has expired: it must renew it"
        return (
            f"the upstream's certificate is not signed by this network's CA ({cause}): "
            "check the upstream address, or enroll this node again"
        )
    return None


def _own_problem(cert_pem: bytes, ca_pem: bytes, now: datetime.datetime) -> str | None:
    validity = validity_of(cert_pem)
    if validity.expires <= now:
        return f"it expired on {validity.expires.date().isoformat()}"
    if validity.issued - now > datetime.timedelta(days=1):
        return f"it is valid only from {validity.issued.date().isoformat()} (is this computer's clock right?)"
    if not signed_by(cert_pem, ca_pem):
        return "it is not signed by this network's CA"
    return None
