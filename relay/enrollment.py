"""Enrolling a village through its township with a one-time token, without a trip to the district.

``township-node enroll-token --village CODE`` makes a token ``ID-SECRET`` for one village of its
own, good once and for a short time. The new village makes its key and sends a signing request
with the token to the township's enrollment address (``serve --enroll-listen``); the township
checks the token and asks the district, over its own mutual-TLS link, for the village's
certificate (relay.certify: the CA key stays at the district, which logs every certificate),
then answers with the village's bundle, less the key, which never left the village.

The new village has no certificate yet, so this exchange runs without TLS. Nothing in it is
secret (a signing request, certificates, names) and both messages carry an HMAC-SHA256 proof
keyed by the token's secret, which never travels: only the township that made the token can
answer, and only the holder of the token can ask.
"""

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass, replace
from typing import NoReturn

import grpc
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casework import InvalidInput
from protos.v1 import relay_pb2 as pb
from protos.v1 import relay_pb2_grpc as pb_grpc
from relay.bundle import Bundle
from relay.certify import Certifier, Standing
from relay.clock import iso, now_us
from relay.config import NodeConfig
from relay.errors import PermanentError, RelayError, TransientError
from relay.pki import Identity, holds_key, identity_of, make_request
from relay.schema import enroll_tokens

log = structlog.get_logger()
TOKEN_MINUTES = 60
MAX_TOKEN_MINUTES = 7 * 24 * 60
ENROLL_TIMEOUT = 30.0
_REQUEST, _REPLY = b"enroll-request", b"enroll-reply"
_AGAIN = "ask the township for a new one ('township-node enroll-token')"


class TokenRefused(PermanentError):
    """A token this township did not make, or a proof that does not match it."""


class TokenSpent(PermanentError):
    """A token used already, or expired."""


@dataclass(frozen=True, slots=True)
class Token:
    token_id: str
    secret: str
    village: str
    expires_at: int  # microseconds
    made_at: int  # microseconds: the district refuses a token made before a revocation

    @property
    def text(self) -> str:
        return f"{self.token_id}-{self.secret}"


def proof(secret: str, label: bytes, data: bytes) -> bytes:
    return hmac.new(secret.encode(), label + data, hashlib.sha256).digest()


def parse_token(text: str) -> tuple[str, str]:
    """(id, secret) of a token as typed; InvalidInput if it is not one."""
    token_id, _, secret = text.strip().upper().partition("-")
    if len(token_id) != 8 or len(secret) != 24 or not (token_id + secret).isalnum():
        raise InvalidInput(
            "that is not an enrollment token (8 letters, a dash, 24 letters): copy it whole", "not_a_token"
        )
    return token_id, secret


async def make_token(conn: AsyncConnection, config: NodeConfig, village: str, minutes: int) -> Token:
    """A new one-time token for a village of this township, kept until used or expired."""
    if not (len(village) == 12 and village.isdigit() and village.startswith(config.code)):
        raise InvalidInput(
            f"{village[:16]} is not a village of township {config.code}: tokens are for its own",
            "not_own_village",
            village=village[:16],
            township=config.code,
        )
    if not 1 <= minutes <= MAX_TOKEN_MINUTES:
        raise InvalidInput(
            f"a token lasts 1 to {MAX_TOKEN_MINUTES} minutes, not {minutes}",
            "token_minutes",
            most=MAX_TOKEN_MINUTES,
            minutes=minutes,
        )
    now = now_us()
    token = Token(_random(5), _random(15), village, now + minutes * 60_000_000, now)
    await conn.execute(
        enroll_tokens.update()
        .where(enroll_tokens.c.expires_at <= now, enroll_tokens.c.secret != "")
        .values(secret="")  # the secrets of tokens expired meanwhile are of no more use
    )
    await conn.execute(enroll_tokens.insert().values(**_row(token), used_at=None))
    return token


async def redeem(conn: AsyncConnection, token_id: str, csr: bytes, given: bytes) -> Token:
    """The token a request names, marked used; TokenRefused or TokenSpent with the reason."""
    if len(token_id) != 8 or not (token_id.isascii() and token_id.isalnum()):  # nor a NUL for PostgreSQL
        raise TokenRefused(f"that is not an enrollment token's id (8 letters and digits): {_AGAIN}")
    row = (await conn.execute(select(enroll_tokens).where(enroll_tokens.c.token_id == token_id))).first()
    if row is None:
        raise TokenRefused(f"this township issued no enrollment token {token_id[:8]}: check it, or {_AGAIN}")
    token = Token(row.token_id, row.secret, row.village, row.expires_at, row.made_at)
    if row.used_at is not None:  # (its secret is gone: the proof cannot be checked)
        raise TokenSpent(f"this enrollment token was used already, on {iso(row.used_at)[:19]}: {_AGAIN}")
    if row.expires_at <= now_us():
        raise TokenSpent(f"this enrollment token expired at {iso(row.expires_at)[:19]}: {_AGAIN}")
    if not token.secret or not hmac.compare_digest(proof(token.secret, _REQUEST, csr), given):
        raise TokenRefused("the enrollment token does not match: check it was copied whole")
    taken = await conn.execute(
        enroll_tokens.update()
        .where(enroll_tokens.c.token_id == token_id, enroll_tokens.c.used_at.is_(None))
        .values(used_at=now_us())
    )
    if taken.rowcount != 1:
        raise TokenSpent(f"this enrollment token was used already: {_AGAIN}")
    return token


async def spend(conn: AsyncConnection, token_id: str) -> None:
    """Forget a used token's secret: the village has its bundle."""
    await conn.execute(enroll_tokens.update().where(enroll_tokens.c.token_id == token_id).values(secret=""))


async def release(conn: AsyncConnection, token_id: str) -> None:
    """Make a token usable again: the district could not be asked on its behalf."""
    await conn.execute(
        enroll_tokens.update().where(enroll_tokens.c.token_id == token_id).values(used_at=None)
    )


class EnrollmentServicer(pb_grpc.EnrollmentServicer):
    """The township's side: check the token, have the district certify the village's key."""

    def __init__(self, engine: AsyncEngine, config: NodeConfig, certifier: Certifier) -> None:
        self.engine = engine
        self.config = config
        self.certifier = certifier

    async def Enroll(self, request: pb.EnrollRequest, context: grpc.aio.ServicerContext) -> pb.EnrollReply:
        try:
            async with self.engine.begin() as conn:
                token = await redeem(conn, request.token_id, request.csr, request.proof)
        except (TokenRefused, TokenSpent) as exc:
            log.warning("security.enroll.refused", token=request.token_id[:8], reason=str(exc))
            status = grpc.StatusCode.UNAUTHENTICATED if isinstance(exc, TokenRefused) else None
            await _abort(context, status or grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        try:
            certified = await self.certifier.certify(
                token.village, request.csr, Standing(token_made_at=token.made_at)
            )
        except (RelayError, InvalidInput) as exc:
            async with self.engine.begin() as conn:
                await release(conn, token.token_id)
            log.warning("relay.enroll.failed", village=token.village, error=str(exc))
            transient = isinstance(exc, TransientError)
            status = grpc.StatusCode.UNAVAILABLE if transient else grpc.StatusCode.FAILED_PRECONDITION
            advice = "; the token stays good: try again later" if transient else ""
            await _abort(context, status, f"the district did not certify the village: {exc}{advice}")
        bundle = Bundle(
            token.village,
            "village",
            certified.name,
            self.config.district_code,
            self.config.code,
            self.config.name,
            certificate=certified.certificate.decode(),
            ca_certificate=certified.ca_certificate.decode(),
        ).to_json()
        async with self.engine.begin() as conn:
            await spend(conn, token.token_id)
        log.info("security.enrolled", village=token.village, token=token.token_id)
        return pb.EnrollReply(bundle=bundle, proof=proof(token.secret, _REPLY, bundle))


async def _abort(context: grpc.aio.ServicerContext, status: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(status, message)
    raise AssertionError("abort returned")  # context.abort always raises


async def enroll_with_token(address: str, token_text: str) -> Bundle:
    """The village's side: a new key, its signing request sent with the token to the
    township's enrollment address; the bundle that comes back, with the key put in."""
    token_id, secret = parse_token(token_text)
    key_pem, csr = make_request("new village")
    request = pb.EnrollRequest(token_id=token_id, csr=csr, proof=proof(secret, _REQUEST, csr))
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.EnrollmentStub(channel)  # type: ignore[no-untyped-call]
        try:
            reply = await stub.Enroll(request, timeout=ENROLL_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                said = f"cannot enroll through {address}: {exc.details()}"
                raise TransientError(
                    said, "enroll_unreachable", address=address, detail=exc.details()
                ) from exc
            said = f"the township refused the enrollment: {exc.details()}"
            raise InvalidInput(said, "enroll_refused", detail=exc.details()) from exc
    if not hmac.compare_digest(proof(secret, _REPLY, reply.bundle), reply.proof):
        raise InvalidInput(
            f"the answer from {address} is not from the township that made the token (its proof does "
            "not match): check the --enroll address",
            "enroll_not_township",
            address=address,
        )
    bundle = Bundle.parse(reply.bundle, f"the answer from {address}", "village")
    certificate = bundle.certificate.encode()
    if identity_of(certificate) != Identity(bundle.code, "village") or not holds_key(key_pem, certificate):
        raise InvalidInput(
            f"the certificate from {address} is not for this village's new key",
            "enroll_not_key",
            address=address,
        )
    return replace(bundle, key=key_pem.decode())


def _row(token: Token) -> dict[str, object]:
    return {
        "token_id": token.token_id,
        "secret": token.secret,
        "village": token.village,
        "expires_at": token.expires_at,
        "made_at": token.made_at,
    }


def _random(size: int) -> str:
    return base64.b32encode(os.urandom(size)).decode().rstrip("=")


async def start_enrollment(servicer: EnrollmentServicer, listen: str) -> tuple[grpc.aio.Server, int]:
    """The township's enrollment address: the Enrollment service alone, without TLS (see the
    module's docstring), on its own port; a port in use is refused (relay.server)."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_EnrollmentServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError as exc:
        raise InvalidInput(
            f"cannot listen on {listen}: give a free HOST:PORT of this machine",
            "cannot_listen",
            listen=listen,
        ) from exc
    await server.start()
    return server, port
