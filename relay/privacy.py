"""A village keeps personal data sealed, and only as long as it needs it.

``village_vault`` opens a village's data key when the node opens (making one at the first
open: ``init``, or the first open after an upgrade from a release that kept rows in clear,
which then seals those rows and rewrites the file so no clear copy is left in it).
``forget_settled`` blanks the applicant and every event payload of a case once it is
delivered or withdrawn and every event the village made for it is acknowledged upstream:
the laptop keeps the case number, item and status, not the person.
"""

from pathlib import Path

import structlog
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casework import InvalidInput
from relay.counters import read_text, read_value, write_value
from relay.db import serialize_writers
from relay.keyfile import KEY_FILE, create_key, load_key
from relay.schema import cases, events, outbox
from relay.vault import SEALED, SealedVault

CLOSED = ("delivered", "withdrawn")  # nothing more is handed to the applicant
BLANK = b"{}"  # what an event payload becomes once its case is forgotten
_KEY_STATE = "data_key"  # the state row naming the key that sealed this database

log = structlog.get_logger()


async def village_vault(home: Path, engine: AsyncEngine) -> SealedVault:
    """The village's data key, checked against the one its database was sealed with."""
    async with engine.connect() as conn:
        sealed_by = await read_text(conn, _KEY_STATE)
    path = home / KEY_FILE
    if not sealed_by:
        return await _first_seal(home, engine)
    if not path.exists():
        raise InvalidInput(
            f"{path} is missing: restore it from the backup "
            "(without it this village's personal data cannot be read)"
        )
    vault = SealedVault(load_key(home))
    if vault.key_id != sealed_by:
        raise InvalidInput(
            f"{path} is not the key this database was sealed with: restore the one kept with it"
        )
    return vault


async def _first_seal(home: Path, engine: AsyncEngine) -> SealedVault:
    """Make (or take) the key and seal whatever the database holds in clear, under the write
    lock: a server and a command opening the node at once do not both do it."""
    async with engine.begin() as conn:
        await serialize_writers(conn)
        sealed_by = await read_text(conn, _KEY_STATE)
        key = load_key(home) if (home / KEY_FILE).exists() else create_key(home)
        vault = SealedVault(key)
        if sealed_by and sealed_by != vault.key_id:
            raise InvalidInput(f"{home / KEY_FILE} is not the key this database was sealed with")
        sealed = 0 if sealed_by else await _seal_clear_rows(conn, vault)
        await write_value(conn, _KEY_STATE, 1, vault.key_id)
    if sealed:
        await _rewrite(engine)
        log.info("village.sealed", rows=sealed)
    return vault


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
    if engine.dialect.name != "sqlite":
        return
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None, "an open connection has its driver connection"
        await driver.execute("VACUUM")
        await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def forget_settled(conn: AsyncConnection) -> int:
    """Blank the personal data of closed cases whose village events are all acknowledged;
    returns how many applicants were forgotten. Idempotent: run it after every sync step."""
    acked = await read_value(conn, "acked_upto")
    unsettled = (
        select(events.c.case_id)
        .join(outbox, outbox.c.event_id == events.c.event_id)
        .where(outbox.c.seq > acked)
    )
    settled = select(cases.c.case_id).where(cases.c.status.in_(CLOSED), cases.c.case_id.not_in(unsettled))
    forgotten = await conn.execute(
        update(cases)
        .where(cases.c.case_id.in_(settled), cases.c.applicant_sealed.is_not(None))
        .values(applicant_sealed=None, applicant_name="", applicant_id="", phone="")
    )
    await conn.execute(
        update(events).where(events.c.case_id.in_(settled), events.c.payload != BLANK).values(payload=BLANK)
    )
    if forgotten.rowcount:
        log.info("village.forgotten", cases=forgotten.rowcount)
    return int(forgotten.rowcount)
