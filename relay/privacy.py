"""A village keeps personal data sealed, and only as long as it needs it.

``village_vault`` opens a village's data key when the node opens (making one at the first
open: ``init``, or the first open after an upgrade from a release that kept rows in clear,
which then seals those rows and rewrites the file so no clear copy is left in it).
``forget_settled`` forgets a case's personal data once it is delivered or withdrawn, every
event the village made for it is acknowledged upstream, and ``forget_after_days`` ([relay],
7 by default) have passed since: the laptop keeps the case number, item, status and what staff
wrote (a correction notice's missing materials, a decision's reason), not the person. What is
forgotten: the applicant (name, ID number, phone) and, in event payloads, what was typed for
the applicant (the request's form fields and mandate, a withdrawal's reason, a rating's
comment, a complaint's text) and the SHA-256 and size of materials handed in (their names
stay). The grace period lets a township restored from a backup up to that old be sent the
events again whole; an event forgotten before it had to be sent again goes marked
``forgotten``, and the upstream refuses it saying the district holds the case.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import ColumnElement, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casework import InvalidInput
from casework.lifecycle import (
    CMD_COMPLAIN,
    CMD_RATE,
    CMD_SUPPLEMENT,
    CMD_WITHDRAW,
    COMPLAINT_FILED,
    RATED,
    SUBMITTED,
    SUPPLEMENTED,
    WITHDRAWN,
)
from relay.clock import now_us
from relay.counters import read_text, read_value, write_value
from relay.db import serialize_writers
from relay.keyfile import KEY_FILE, create_key, load_key
from relay.records import encode_payload
from relay.schema import cases, events, outbox
from relay.vault import SEALED, SealedVault, Vault

CLOSED = ("delivered", "withdrawn")  # nothing more is handed to the applicant
FORGOTTEN = "forgotten"  # the key marking an event payload whose personal data was forgotten
_KEY_STATE = "data_key"  # the state row naming the key that sealed this database
_REWRITE_STATE = "rewrite_pending"  # 1 from sealing clear rows until the file is rewritten
# What an event payload keeps once forgotten: a submission, these fields; others, all but these.
_SUBMISSION_KEPT = (
    "item_code",
    "decide_level",
    "materials",
    "missing_materials",
    "joint_departments",
    "village_code",
    "township_code",
)
_TYPED: dict[str, tuple[str, ...]] = {
    CMD_WITHDRAW: ("reason",),
    WITHDRAWN: ("reason",),
    CMD_RATE: ("comment",),
    RATED: ("comment",),
    CMD_COMPLAIN: ("text",),
    COMPLAINT_FILED: ("text",),
}
_MATERIALS = (SUBMITTED, CMD_SUPPLEMENT, SUPPLEMENTED)

log = structlog.get_logger()


async def village_vault(home: Path, engine: AsyncEngine) -> SealedVault:
    """The village's data key, checked against the one its database was sealed with."""
    async with engine.connect() as conn:
        sealed_by = await read_text(conn, _KEY_STATE)
        rewrite_pending = await read_value(conn, _REWRITE_STATE)
    path = home / KEY_FILE
    if not sealed_by:
        return await _first_seal(home, engine)
    if not path.exists():
        said = (
            f"{path} is missing: restore it from the backup (without it this village's data cannot be read)"
        )
        raise InvalidInput(said, "key_missing", path=str(path))
    vault = SealedVault(load_key(home), home)
    _check_key(path, vault, sealed_by)
    if rewrite_pending:  # the first seal was cut short before the file was rewritten
        await _rewrite(engine)
    return vault


async def _first_seal(home: Path, engine: AsyncEngine) -> SealedVault:
    """Make (or take) the key, then seal whatever the database holds in clear under the write
    lock: a server and a command opening the node at once do not both do it. The passphrase
    is asked, and scrypt run, before the lock is taken."""
    path = home / KEY_FILE
    vault = SealedVault(load_key(home) if path.exists() else create_key(home), home)
    async with engine.begin() as conn:
        await serialize_writers(conn)
        sealed_by = await read_text(conn, _KEY_STATE)
        if sealed_by:  # another process sealed it meanwhile
            _check_key(path, vault, sealed_by)
            return vault
        sealed = await _seal_clear_rows(conn, vault)
        await write_value(conn, _KEY_STATE, 1, vault.key_id)
        await write_value(conn, _REWRITE_STATE, 1 if sealed else 0)
    if sealed:
        await _rewrite(engine)
        log.info("village.sealed", rows=sealed)
    return vault


def _check_key(path: Path, vault: SealedVault, sealed_by: str) -> None:
    if vault.key_id != sealed_by:
        said = f"{path} is not the key this database was sealed with: restore the one kept with it"
        raise InvalidInput(said, "key_mismatch", path=str(path))


async def _seal_clear_rows(conn: AsyncConnection, vault: SealedVault) -> int:
    """Seal the applicants and event payloads a release before sealing kept in clear."""
    people = (
        await conn.execute(
            select(cases.c.case_id, cases.c.applicant_name, cases.c.applicant_id, cases.c.phone).where(
                cases.c.applicant_sealed.is_(None),
                (cases.c.applicant_name != "") | (cases.c.applicant_id != "") | (cases.c.phone != ""),
            )
        )
    ).all()
    if people:
        columns = ("applicant_sealed", "applicant_name", "applicant_id", "phone")
        await conn.execute(
            update(cases)
            .where(cases.c.case_id == bindparam("_id"))
            .values({c: bindparam(c) for c in columns}),
            [vault.sealed_applicant(dict(row._mapping)) | {"_id": row.case_id} for row in people],
        )
    clear = (
        await conn.execute(
            select(events.c.event_id, events.c.case_id, events.c.payload).where(
                func.substr(events.c.payload, 1, 1) != SEALED
            )
        )
    ).all()
    if clear:
        await conn.execute(
            update(events).where(events.c.event_id == bindparam("_id")).values(payload=bindparam("payload")),
            [
                {"_id": e.event_id, "payload": vault.seal_payload(e.case_id, e.event_id, e.payload)}
                for e in clear
            ],
        )
    return len(people) + len(clear)


async def _rewrite(engine: AsyncEngine) -> None:
    """Rebuild the SQLite file and empty its write-ahead log, so that no page keeps a clear
    copy of what was just sealed."""
    if engine.dialect.name == "sqlite":
        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None, "an open connection has its driver connection"
            await driver.execute("VACUUM")
            await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    async with engine.begin() as conn:
        await write_value(conn, _REWRITE_STATE, 0)


@dataclass(frozen=True, slots=True)
class Forgotten:
    cases: int
    scans: frozenset[str]  # SHA-256 of kept scans no case still here names: to delete


async def forget_settled(conn: AsyncConnection, vault: Vault, after_days: float) -> Forgotten:
    """Forget the personal data of closed cases settled upstream ``after_days`` ago or more;
    returns how many were forgotten, and the scans to delete once that is committed.
    Idempotent: run it after every sync step."""
    now = now_us()
    acked = await read_value(conn, "acked_upto")
    unsettled = (
        select(events.c.case_id)
        .join(outbox, outbox.c.event_id == events.c.event_id)
        .where(outbox.c.seq > acked)
    )
    # Sent again (an upstream restored from a backup) or a new command (a rating): not settled.
    await conn.execute(
        update(cases)
        .where(cases.c.settled_at.is_not(None), cases.c.case_id.in_(unsettled))
        .values(settled_at=None)
    )
    await conn.execute(
        update(cases)
        .where(cases.c.status.in_(CLOSED), cases.c.settled_at.is_(None), cases.c.case_id.not_in(unsettled))
        .values(settled_at=now)
    )
    horizon = now - int(after_days * 86_400 * 1_000_000)
    due = select(cases.c.case_id).where(cases.c.settled_at > 0, cases.c.settled_at <= horizon)
    found = list((await conn.execute(due)).scalars())
    if not found:
        return Forgotten(0, frozenset())
    await conn.execute(
        update(cases)
        .where(cases.c.case_id.in_(found))
        .values(applicant_sealed=None, applicant_name="", applicant_id="", phone="", settled_at=0)
    )
    kept = await _opened_events(conn, vault, events.c.case_id.in_(found))
    await conn.execute(
        update(events).where(events.c.event_id == bindparam("_id")).values(payload=bindparam("payload")),
        [{"_id": event_id, "payload": forgotten_payload(kind, payload)} for event_id, kind, payload in kept],
    )
    remaining = await _opened_events(
        conn,
        vault,
        events.c.type.in_(_MATERIALS),
        events.c.case_id.not_in(select(cases.c.case_id).where(cases.c.settled_at == 0)),
    )
    log.info("village.forgotten", cases=len(found))
    return Forgotten(len(found), frozenset(_scans_named(kept) - _scans_named(remaining)))


async def _opened_events(
    conn: AsyncConnection, vault: Vault, *where: ColumnElement[bool]
) -> list[tuple[str, str, bytes]]:
    """(event id, type, opened payload) of the events ``where`` selects."""
    query = select(events.c.event_id, events.c.case_id, events.c.type, events.c.payload).where(*where)
    return [
        (e.event_id, e.type, vault.open_payload(e.case_id, e.event_id, e.payload))
        for e in await conn.execute(query)
    ]


def _scans_named(opened: list[tuple[str, str, bytes]]) -> set[str]:
    """The SHA-256 of every material the events name (submissions, supplements)."""
    named = set()
    for _, kind, payload in opened:
        if kind in _MATERIALS:
            materials = json.loads(payload).get("materials") or []
            named |= {str(m["sha256"]) for m in materials if isinstance(m, dict) and "sha256" in m}
    return named


def forgotten_payload(event_type: str, payload: bytes) -> bytes:
    """An event payload without what was typed for the applicant, marked FORGOTTEN."""
    given: dict[str, Any] = json.loads(payload)
    if event_type == SUBMITTED:
        kept = {name: given[name] for name in _SUBMISSION_KEPT if name in given}
    else:
        kept = {name: value for name, value in given.items() if name not in _TYPED.get(event_type, ())}
    if event_type in _MATERIALS and isinstance(kept.get("materials"), list):
        kept["materials"] = [{"name": m.get("name", "")} for m in kept["materials"] if isinstance(m, dict)]
    return encode_payload(kept | {FORGOTTEN: True})


def forgotten_refusal(case_id: str) -> str:
    """Why an upstream refuses an event sent again after its village forgot it."""
    return (
        f"case {case_id}: its village forgot this event's personal data after the case was settled "
        "(forget_after_days) and cannot send it whole again; the district holds the case"
    )
