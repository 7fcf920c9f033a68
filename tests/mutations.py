"""Hostile PushRequests by the thousand, the same on every run (a seeded generator): a valid
request's bytes damaged, or its fields set to what a broken or hostile peer might send."""

import random
from collections.abc import Callable, Iterator

from protos.v1 import relay_pb2 as pb

EDGE_INTS = (0, 1, 2, 3, 2**31, 2**32 - 1, 2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64 - 1)
CODES = ("", "500117", "500117001", "500117001005", "500117001001", "500117002001", "5001170010050", "x" * 70)
TYPES = ("case.submitted", "case.accepted", "cmd.withdraw", "cmd.rate", "case.decided", "nope", "")
PAYLOADS = (
    b"{}",
    b"[]",
    b"null",
    b'{"score": 99}',
    b'{"applicant": "x"}',
    b'{"staff": 5, "window": [1]}',
    b"\xff\xfe",
    b'{"a": ' * 200 + b"1" + b"}" * 200,  # deep nesting
    b"{" + b'"k": 1, ' * 500 + b'"z": 0}',
)


def hostile_requests(valid: pb.PushRequest, count: int, seed: int = 7) -> Iterator[bytes]:
    """``count`` requests made from ``valid``: about a third byte-level damage, the rest one to
    three fields set to hostile values."""
    rng = random.Random(seed)
    raw = valid.SerializeToString()
    for _ in range(count):
        if rng.random() < 0.35:
            yield _damaged(raw, rng)
        else:
            request = pb.PushRequest()
            request.CopyFrom(valid)
            for _ in range(rng.randint(1, 3)):
                rng.choice(_FIELD_MUTATIONS)(request, rng)
            yield request.SerializeToString()


def _damaged(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(max(len(data), 1))
        kind = rng.choice(("flip", "set", "insert", "delete", "truncate", "random"))
        if kind == "random":
            return rng.randbytes(rng.randint(0, 256))
        if kind == "flip" and data:
            data[at] ^= 1 << rng.randrange(8)
        elif kind == "set" and data:
            data[at] = rng.randrange(256)
        elif kind == "insert":
            data[at:at] = rng.randbytes(rng.randint(1, 12))
        elif kind == "delete":
            del data[at : at + rng.randint(1, 8)]
        else:
            del data[at:]
    return bytes(data)


def _sender(request: pb.PushRequest, rng: random.Random) -> None:
    request.sender = rng.choice(CODES)


def _numbers(request: pb.PushRequest, rng: random.Random) -> None:
    first = rng.choice(EDGE_INTS)
    request.stream = rng.choice(EDGE_INTS)
    for i, envelope in enumerate(request.envelopes):
        envelope.seq = min(first + i, 2**64 - 1)


def _event(request: pb.PushRequest, rng: random.Random) -> None:
    if not request.envelopes:
        return
    event = rng.choice(request.envelopes).event
    field = rng.choice(("type", "case", "codes", "payload", "time", "ids", "version"))
    if field == "type":
        event.type = rng.choice(TYPES)
    elif field == "case":
        event.case_id = rng.choice(("", "x" * 37, event.case_id[:-1] + "0", "\u0000" * 5))
    elif field == "codes":
        event.village_code, event.township_code = rng.choice(CODES), rng.choice(CODES)[:12]
    elif field == "payload":
        event.payload = rng.choice(PAYLOADS)
    elif field == "time":
        event.recorded_at.seconds = rng.choice((-1, 0, 2**40, 2**62))
    elif field == "ids":
        event.origin_seq = rng.choice(EDGE_INTS)
        event.event_id = f"{event.origin_node}:{event.origin_seq}"
    else:
        event.catalog_version = rng.choice(("", "9" * 40, "2026.1", "\u0000"))


def _envelopes(request: pb.PushRequest, rng: random.Random) -> None:
    kind = rng.choice(("none", "twice", "many"))
    if kind == "none":
        del request.envelopes[:]
    elif kind == "twice" and request.envelopes:
        request.envelopes.append(request.envelopes[0])
    else:
        request.envelopes.extend(
            list(request.envelopes) * rng.randint(1, 1200 // len(request.envelopes or [0]))
        )


def _audit(request: pb.PushRequest, rng: random.Random) -> None:
    chain = request.audit
    kind = rng.choice(("first", "hash", "staff", "drop", "lie"))
    if kind == "first":
        chain.first_seq = rng.choice(EDGE_INTS)
    elif kind == "hash" and chain.links:
        chain.links[0].event_hash = rng.randbytes(rng.choice((0, 31, 32, 33)))
    elif kind == "staff" and chain.links:
        chain.links[0].staff = rng.choice(("", "赵一", "x" * 65))
    elif kind == "drop":
        request.ClearField("audit")
    else:
        chain.head_hash = rng.randbytes(32)


_FIELD_MUTATIONS: tuple[Callable[[pb.PushRequest, random.Random], None], ...] = (
    _sender,
    _numbers,
    _event,
    _event,
    _envelopes,
    _audit,
)
