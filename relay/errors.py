"""The relay's errors: one root, split by what the caller should do about them."""

import grpc

from casework import CaseworkError


class RelayError(CaseworkError):
    """Root of the relay's errors; the message is one line for the user."""


class TransientError(RelayError):
    """Worth retrying later: the upstream is down, slow or busy."""


class PermanentError(RelayError):
    """Retrying will not help: the request itself is wrong or not allowed."""


class InvalidBatch(PermanentError):
    """A push that breaks the protocol (not consecutive, too large, no sender)."""


class NotPermitted(PermanentError):
    """A peer acting outside its jurisdiction."""


class CertificateRefused(PermanentError):
    """A certificate that is revoked, expired or not of this network: retrying will not help,
    a new bundle or a renewal will."""


class SchemaError(PermanentError):
    """A node's database this software cannot bring up to date (relay/migrations)."""


_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
}


def from_rpc_error(exc: grpc.aio.AioRpcError, target: str) -> RelayError:
    """Translate a gRPC failure into the relay's hierarchy (call as ``raise ... from exc``)."""
    code = exc.code()
    text = f"{target}: {code.name}: {exc.details() or 'no details'}"
    if code in _TRANSIENT:
        return TransientError(text)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return NotPermitted(text)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return CertificateRefused(text)
    return PermanentError(text)
