"""A node's ledger: its events, the cases projected from them, and what it relays upward.

This is the one module of the relay that speaks the domain (casework): it decides whether an
event can be applied, applies it to the case it belongs to, and — where this node owns the
case — answers commands. Every method works inside a transaction its caller owns, and touches
the database a fixed number of times per batch, whatever the batch's size.
"""

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from casework import (
    CaseState,
    CaseworkError,
    Catalog,
    IllegalTransition,
    Mandate,
    Request,
    WorkCalendar,
    answer_command,
    check_request,
    default_calendar,
    evolve,
    submit,
)
from casework.clockfacts import CaseDates, follow, opens_rectification, stamp
from casework.lifecycle import (
    ACCEPTED,
    COMMAND_REFUSED,
    COMMANDS,
    CORRECTION_REQUESTED,
    DECIDED,
    DEPARTMENT_DECIDED,
    ESCALATED,
    EVENT_TYPES,
    PAUSED,
    RATED,
    RECTIFIED,
    REFUSED,
    RESUMED,
    RETURNED,
    SUBMITTED,
    SUPPLEMENTED,
    WITHDRAWN,
)
from relay import audit
from relay._chain import staff_of
from relay.bell import Bell, announce, pullers_of
from relay.catalogs import load_all
from relay.clock import now_us, today_in_china
from relay.config import NodeConfig
from relay.counters import read_value, take_range, write_value
from relay.db import among, insert_many, serialize_writers
from relay.privacy import FORGOTTEN, forgotten_refusal
from relay.records import EVENT_FIELDS, EventRecord, encode_payload
from relay.schema import (
    TOWNSHIP_FEEDABLE,
    VILLAGE_FEEDABLE,
    cases,
    dead_letters,
    events,
    outbox,
    rectifications,
)
from relay.tallies import Tally
from relay.vault import Vault

MAX_CASE_ID = 36
MAX_INT64 = 2**63
MAX_VERSION = 32
MAX_EVENT_BYTES = 64 * 1024  # an event's payload, as received: larger ones are refused


@dataclass(frozen=True, slots=True)
class Refusal:
    """An event of a batch that will never be applied, and why (one line, for staff)."""

    index: int
    reason: str
    breach: bool = False  # the sender reached outside its jurisdiction: a security event


class OutOfReach(ValueError):
    """An event of a village the sending node does not serve."""


class _LookUpAll(Exception):
    """A batch taken without looking up its new cases refused an event: judge it again."""


class _Batch:
    """What one batch changes, gathered in memory and written in a few statements."""

    def __init__(self, known: dict[str, dict[str, Any]], next_seq: int) -> None:
        self.known = known  # case_id -> case row, as it stands after the events seen so far
        self.before = {case_id: dict(row) for case_id, row in known.items()}  # as they were
        self.new_cases: dict[str, dict[str, Any]] = {}
        self.changed: set[str] = set()
        self.event_rows: list[dict[str, Any]] = []
        self.relay_ids: list[str] = []
        self.opened: list[dict[str, Any]] = []  # rectification records opened
        self.closed: list[dict[str, Any]] = []  # and closed, with their outcome
        self.audited: list[tuple[EventRecord, str]] = []  # each event applied, and who acted
        self.next_seq = next_seq
        self.first_seq = next_seq


class Ledger:
    def __init__(
        self,
        config: NodeConfig,
        catalog: Catalog,
        calendar: WorkCalendar | None = None,
        today: Callable[[], date] = today_in_china,
        vault: Vault | None = None,
    ) -> None:
        self.config = config
        self.vault = vault or Vault()  # how personal data is kept here (sealed on a village)
        self.catalog = catalog  # the newest version: requests are taken under it
        self.catalogs = {catalog.version: catalog}  # every version this node has seen
        self.calendar = calendar or default_calendar()
        self.calendar_version = ""  # the newest published calendar taken ("": the shipped one)
        self.today = today  # the owner's clock for deadlines (injectable)
        self.has_upstream = bool(config.upstream_code)
        self.bell = Bell()  # rung by whoever commits events it wrote: waiting pulls wake
        # Events that may go to a feed pulled from here: those made here (via None) and those
        # pulled from above; events from below go back to no one below.
        self._feeding = {None, config.upstream_code} if config.upstream_code else {None}

    async def record(
        self,
        conn: AsyncConnection,
        case_id: str,
        event_type: str,
        payload: dict[str, Any],
        village_code: str,
        township_code: str,
    ) -> EventRecord:
        """Make an event here (intake, staff action, command) and apply it; IllegalTransition
        if the case's state does not allow it — nothing is written then."""
        [made] = await self.record_many(conn, [(case_id, event_type, payload, village_code, township_code)])
        return made

    async def record_many(
        self, conn: AsyncConnection, changes: Sequence[tuple[str, str, dict[str, Any], str, str]]
    ) -> list[EventRecord]:
        """Make several events here at once: (case_id, type, payload, village, township) each."""
        batch = await self._start(conn, [change[0] for change in changes], makes=True)
        made = []
        for case_id, event_type, payload, village_code, township_code in changes:
            payload = self._stamp(batch.known.get(case_id), event_type, payload)
            record = self._make(batch, case_id, event_type, payload, village_code, township_code)
            self._apply(batch, record, via=None)
            if event_type in COMMANDS:
                self._answer(batch, record)
            made.append(record)
        await self._write(conn, batch, {})
        return made

    async def take(
        self,
        conn: AsyncConnection,
        records: Sequence[EventRecord],
        via: str,
        from_below: bool,
        seqs: Sequence[int] | None = None,
        digests: Mapping[str, bytes] | None = None,
    ) -> tuple[list[Refusal], int]:
        """Apply events received from ``via`` (a node below, or the upstream): each exactly
        once, by event id. Events from below are relayed on where this node has an upstream.
        ``digests`` are those of some of the events, computed already (relay.audit).
        Returns the refused ones (recorded as dead letters) and how many were already known.

        A burst of new submissions is taken first without looking anything up: a case whose
        first event in the batch is its submission is taken as new, and the ids of events of
        cases not found here as never applied (an event is stored with its case's row, neither
        is ever deleted). Where that was wrong (a submission sent again, an id sent again
        naming another case) an insert breaks a unique index; where an event is refused, the
        case it names may have been here all the same. Either way the batch's savepoint undoes
        what it wrote, and the batch is judged again, every case and id looked up."""
        try:
            async with conn.begin_nested():
                return await self._take(conn, records, via, from_below, seqs, digests, look_up_all=False)
        except (IntegrityError, _LookUpAll):
            return await self._take(conn, records, via, from_below, seqs, digests, look_up_all=True)

    async def _take(
        self,
        conn: AsyncConnection,
        records: Sequence[EventRecord],
        via: str,
        from_below: bool,
        seqs: Sequence[int] | None,
        digests: Mapping[str, bytes] | None,
        look_up_all: bool,
    ) -> tuple[list[Refusal], int]:
        relay = from_below and self.has_upstream
        makes = any(r.type in COMMANDS or r.type == RETURNED for r in records)  # answers made here
        first_types: dict[str, str] = {}
        for record in records:
            first_types.setdefault(record.case_id, record.type)
        reads = [case_id for case_id, kind in first_types.items() if look_up_all or kind != SUBMITTED]
        batch = await self._start(conn, reads, makes)
        if any(r.catalog_version not in self.catalogs for r in records if r.type == SUBMITTED):
            self.catalogs.update(await load_all(conn))  # published since this process started
        ids = [r.event_id for r in records]
        maybe_applied = ids if look_up_all else [r.event_id for r in records if r.case_id in batch.known]
        seen = await _known_ids(conn, maybe_applied, ids)
        refusals, duplicates = [], 0
        for index, record in enumerate(records):
            if record.event_id in seen:
                duplicates += 1
                continue
            seen.add(record.event_id)
            try:
                self._check(record, via, from_below)
                self._apply(batch, record, via)
            except (CaseworkError, ValueError, RecursionError) as exc:
                refusals.append(Refusal(index, str(exc), isinstance(exc, OutOfReach)))
                continue
            if relay:
                batch.relay_ids.append(record.event_id)
            if record.type in COMMANDS:
                self._answer(batch, record)
            elif record.type == RETURNED and batch.known[record.case_id]["owner"] == self.config.code:
                for command in await self._unanswered_commands(conn, batch, record.case_id):
                    self._answer(batch, command)
        if refusals and not look_up_all:
            raise _LookUpAll
        await self._write(conn, batch, digests or {})
        if refusals:
            await dead_letter(
                conn,
                "in",
                via,
                [(seqs[r.index] if seqs else 0, records[r.index], r.reason) for r in refusals],
            )
        return refusals, duplicates

    async def _start(self, conn: AsyncConnection, case_ids: list[str], makes: bool) -> _Batch:
        """Read (and lock) the batch's cases; and, if it ``makes`` events here, their counter.
        On PostgreSQL the write lock waits for _write: two batches on other cases read and
        work out their changes while a third writes its events (SQLite locks it all anyway)."""
        rows: Sequence[Any] = ()
        if case_ids:  # none for a batch of new submissions
            query = select(cases).where(among(conn, cases.c.case_id, set(case_ids)))
            rows = (await conn.execute(query.order_by(cases.c.case_id).with_for_update())).all()
        # Origin sequences follow the clock where it is ahead of the counter: a node restored
        # from an older backup then never reuses an event id it gave out after that backup.
        next_seq = max(await read_value(conn, "origin_seq", lock=True) + 1, now_us()) if makes else 0
        return _Batch({row.case_id: dict(row._mapping) for row in rows}, next_seq)

    def _make(
        self,
        batch: _Batch,
        case_id: str,
        event_type: str,
        payload: dict[str, Any],
        village_code: str,
        township_code: str,
    ) -> EventRecord:
        assert batch.first_seq, "a batch that makes events here reads their counter first (_start)"
        seq = batch.next_seq
        batch.next_seq += 1
        return EventRecord(
            event_id=f"{self.config.code}:{seq}",
            case_id=case_id,
            origin_node=self.config.code,
            origin_seq=seq,
            type=event_type,
            payload=encode_payload(payload),
            recorded_at=now_us(),
            catalog_version=self.catalog.version,
            village_code=village_code,
            township_code=township_code,
        )

    def _check(self, record: EventRecord, via: str, from_below: bool) -> None:
        """Refuse what can never be applied: malformed, unknown, or outside via's reach."""
        if len(record.payload) > MAX_EVENT_BYTES:
            raise ValueError(
                f"the payload of {len(record.payload)} bytes exceeds the limit of {MAX_EVENT_BYTES}"
            )
        if record.type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {record.type[:48]!r}")
        if not record.case_id or len(record.case_id) > MAX_CASE_ID:
            raise ValueError("case_id is missing or longer than 36 characters")
        if record.event_id != f"{record.origin_node}:{record.origin_seq}":
            raise ValueError("event_id is not origin_node:origin_seq")
        if record.origin_seq >= MAX_INT64 or not 0 <= record.recorded_at < MAX_INT64:
            raise ValueError("origin_seq or recorded_at is out of range")
        if len(record.catalog_version) > MAX_VERSION or b"\\u0000" in record.payload:
            raise ValueError("catalog_version is too long or the payload holds a NUL character")
        village, origin = record.village_code, record.origin_node
        if not (_is_code(village, 12) and record.township_code == village[:9]):
            raise ValueError("village_code and township_code do not belong together")
        if not _is_code(origin, len(origin)) or len(origin) not in (6, 9, 12):
            raise ValueError("origin_node is not a division code")
        if village[:6] != self.config.district_code:
            raise ValueError(f"village {village} is not in this district")
        if from_below:
            below = origin == via or (len(origin) == 12 and origin.startswith(via))
            if not (village.startswith(via) and below):
                raise OutOfReach(f"{via} may not send events of village {village} made by {origin}")
        elif not village.startswith(self.config.code):
            raise ValueError(f"village {village} is not served by this node")

    def _apply(self, batch: _Batch, record: EventRecord, via: str | None) -> None:
        """Project one event onto its case in the batch's memory; raises before changing it."""
        payload = record.payload_dict()
        if payload.get(FORGOTTEN) is True:
            raise IllegalTransition(forgotten_refusal(record.case_id))
        row = batch.known.get(record.case_id)
        _check_case_reach(row, record)
        if record.type == SUBMITTED:
            if row is not None:
                raise IllegalTransition(f"case {record.case_id} exists already")
            row = self._new_case(record, payload)
            batch.new_cases[record.case_id] = row
        elif row is None:
            raise IllegalTransition(f"case {record.case_id} is unknown here")
        else:
            if record.type == PAUSED:
                self._check_step(row, payload.get("step"))
            after = evolve(case_state(row), record.type, payload, record.origin_node)
            missing = _missing_after(row, record.type, payload)
            dates = follow(_dates(row), record.type, payload)
            row.update(status=after.status, owner=after.owner, updated_at=record.recorded_at)
            row["missing_materials"] = missing
            row.update(_date_columns(dates))
            row["departments"] = _json_pairs(after.departments)
            row["paused_step"] = after.paused_step
            if payload.get("window") and record.type in _HANDLING:  # windows are named per center
                row["window"] = f"{record.origin_node}:{str(payload['window'])[:19]}"  # fits 32
            if record.type == RATED:
                row["rating"] = payload["score"]  # an int from 1 to 5: evolve checked it
            if opens_rectification(record.type, payload) and "rectify_by" in payload:
                kind = "bad_review" if record.type == RATED else "complaint"
                batch.opened.append(
                    {
                        "record": record.event_id,
                        "case_id": record.case_id,
                        "kind": kind,
                        "rectify_by": str(payload["rectify_by"]),
                        "outcome": None,
                    }
                )
            elif record.type == RECTIFIED:
                batch.closed.append({"_record": payload["of"], "outcome": payload["outcome"]})
            if record.type in _REASONED and "reason" in payload:
                row["reason"] = str(payload["reason"])
            if record.case_id not in batch.new_cases:
                batch.changed.add(record.case_id)
        batch.known[record.case_id] = row
        batch.event_rows.append(record.row(via))
        batch.audited.append((record, staff_of(payload)))

    def _new_case(self, record: EventRecord, payload: dict[str, Any]) -> dict[str, Any]:
        if record.origin_node != record.village_code:
            raise IllegalTransition("a case is submitted only by its village")
        if (payload.get("village_code"), payload.get("township_code")) != (
            record.village_code,
            record.township_code,
        ):
            raise IllegalTransition("the payload's village or township differs from the event's")
        start = submit(record.case_id, payload)
        applicant, missing = payload.get("applicant"), payload.get("missing_materials", [])
        if not isinstance(applicant, dict):
            raise IllegalTransition("case.submitted needs an applicant object")
        names = _names(missing)
        if self.config.role == "township":  # the first node to see a village's submission
            catalog = self.catalogs.get(record.catalog_version, self.catalog)
            self._recheck(catalog, start, applicant, payload.get("mandate"))
        return {
            "case_id": record.case_id,
            "item_code": start.item_code,
            "status": start.status,
            "owner": start.owner,
            "village_code": start.village_code,
            "township_code": start.township_code,
            "decide_level": start.decide_level,
            "applicant_name": str(applicant.get("name", "")),
            "applicant_id": str(applicant.get("id_number", "")),
            "phone": str(applicant.get("phone", "")),
            "missing_materials": _json_list(names),
            "reason": "",
            "departments": _json_pairs(start.departments),
            "catalog_version": record.catalog_version,
            "created_at": record.recorded_at,
            "updated_at": record.recorded_at,
            "deadline": None,
            "statutory_deadline": None,
            "paused_on": None,
            "decided_on": None,
            "paused_step": "",
            "window": "",
            "yellow_on": None,
            "rating": None,
        }

    def _check_step(self, row: dict[str, Any], step: Any) -> None:
        """A pause names a step the case's catalog entry keeps off the clock."""
        item = self.catalogs.get(row["catalog_version"], self.catalog).items.get(row["item_code"])
        steps = item.excluded_steps if item else ()
        if step not in steps:
            allowed = "、".join(steps) or "none"
            raise IllegalTransition(
                f"item {row['item_code']}: the steps kept off the clock are {allowed}", "steps", steps=allowed
            )

    def adopt(self, catalogs: dict[str, Catalog], newest: str) -> None:
        """Take the catalog versions this node keeps; requests are taken under the newest."""
        self.catalogs.update(catalogs)
        self.catalog = self.catalogs[newest]

    def adopt_calendar(self, calendar: WorkCalendar, version: str) -> None:
        """Count deadlines from now on by this calendar (the newest published version kept)."""
        self.calendar = calendar
        self.calendar_version = version

    def _recheck(self, catalog: Catalog, start: CaseState, applicant: dict[str, Any], mandate: Any) -> None:
        """Check a village's submission again against the catalog version it was taken under
        and this node's rules: the item, where it is decided, the applicant's details and
        their authorisation of the agent."""
        request = Request(
            start.item_code,
            str(applicant.get("name", "")),
            str(applicant.get("id_number", "")),
            str(applicant.get("phone", "")),
            mandate=Mandate.from_dict(mandate),
        )
        item = check_request(catalog, request).item
        if item.decide_level != start.decide_level:
            raise IllegalTransition(f"item {item.code} is decided at the {item.decide_level} level")
        if tuple(name for name, _ in start.departments) != item.joint_departments:
            raise IllegalTransition(f"item {item.code} is decided jointly by other departments")

    def _stamp(self, row: dict[str, Any] | None, event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Dates this node, as the case's owner, fixes on an event it makes (deadlines, by the
        limits of the catalog version the case was taken under)."""
        if row is None:
            return payload
        item = self.catalogs.get(row["catalog_version"], self.catalog).items.get(row["item_code"])
        if item is None:
            return payload
        limits = (item.committed_days, item.statutory_days)
        dates, today = _dates(row), self.today()
        return stamp(event_type, payload, dates, limits, today, self.calendar, self.config.rectify_days)

    def _answer(self, batch: _Batch, command: EventRecord) -> None:
        """The owner turns a command into a status event (or a refusal) made here."""
        row = batch.known[command.case_id]
        if row["owner"] != self.config.code:
            return  # the owner is upstream: the command travels on to it
        where = (command.village_code, command.township_code)
        try:
            event_type, payload = answer_command(case_state(row), command.type, command.payload_dict())
            payload = self._stamp(row, event_type, payload | {"command_event_id": command.event_id})
            answer = self._make(batch, command.case_id, event_type, payload, *where)
            self._apply(batch, answer, via=None)
        except (CaseworkError, ValueError, TypeError, RecursionError) as exc:
            # A command whose payload cannot be answered (too deep, wrong types) is refused; it
            # must never stop the events behind it.
            reason = f"the command cannot be answered: {str(exc)[:200] or type(exc).__name__}"
            payload = {"command": command.type, "reason": reason, "command_event_id": command.event_id}
            self._apply(batch, self._make(batch, command.case_id, COMMAND_REFUSED, payload, *where), via=None)

    async def _write(self, conn: AsyncConnection, batch: _Batch, digests: Mapping[str, bytes]) -> None:
        """The cases first, whose rows _start locked (a new case's id is held by its insert),
        then, under the write lock, what every batch shares: the events, whose feed positions
        must commit in the order they are given out, the audit chain, the counts, the outbox."""
        if batch.new_cases:
            await insert_many(conn, cases, self.vault.seal_cases(list(batch.new_cases.values())))
        if batch.changed:
            await conn.execute(
                update(cases)
                .where(cases.c.case_id == bindparam("_id"))
                .values({name: bindparam(name) for name in _CHANGING}),
                [{**_changes(batch.known[cid]), "_id": cid} for cid in batch.changed],
            )
        if batch.opened:
            await insert_many(conn, rectifications, batch.opened)
        if batch.closed:
            await conn.execute(
                update(rectifications)
                .where(rectifications.c.record == bindparam("_record"), rectifications.c.outcome.is_(None))
                .values(outcome=bindparam("outcome")),
                batch.closed,
            )
        if batch.next_seq != batch.first_seq:
            await write_value(conn, "origin_seq", batch.next_seq - 1)
        await serialize_writers(conn)
        if batch.event_rows:
            await insert_many(conn, events, self.vault.seal_events(batch.event_rows))
            await audit.append(conn, batch.audited, digests)
        await _tally(batch).write(conn)
        own = [row["event_id"] for row in batch.event_rows if row["via"] is None]
        relay_ids = (own if self.has_upstream else []) + batch.relay_ids
        if relay_ids:
            await _enqueue(conn, _in_order(batch.event_rows, set(relay_ids)))
        feeding = [row["village_code"] for row in batch.event_rows if row["via"] in self._feeding]
        if feeding:  # pulls waiting in other processes for these feeds wake at the commit
            await announce(conn, pullers_of(feeding))

    def stored(self, rows: Sequence[Any]) -> list[EventRecord]:
        """Events as this node stored them, their payloads opened (sealed on a village)."""
        return records_from_rows(rows, self.vault.open_payload if self.vault.sealing else None)

    def queued(self, rows: Sequence[Any]) -> list[tuple[int, EventRecord]]:
        """(hop sequence, event) of outbox rows read with their events."""
        return list(zip((row.seq for row in rows), self.stored(rows), strict=True))

    async def _unanswered_commands(
        self, conn: AsyncConnection, batch: _Batch, case_id: str
    ) -> list[EventRecord]:
        """Commands of a case that no owner has answered yet: those that went up to the district
        while it owned the case, before it returned the case here for rework."""
        query = select(events).where(events.c.case_id == case_id).order_by(events.c.position)
        stored = self.stored((await conn.execute(query)).all())
        fields = EVENT_FIELDS
        made = [
            EventRecord(**{name: r[name] for name in fields})
            for r in batch.event_rows
            if r["case_id"] == case_id
        ]
        records = stored + made
        answered = {r.payload_dict().get("command_event_id") for r in records if r.type not in COMMANDS}
        return [r for r in records if r.type in COMMANDS and r.event_id not in answered]


def _tally(batch: _Batch) -> Tally:
    """What the batch changes in the case counts (relay/tallies.py)."""
    tally = Tally()
    for row in batch.new_cases.values():
        tally.add(row, 1)
    for case_id in batch.changed:
        tally.add(batch.before[case_id], -1)
        tally.add(batch.known[case_id], 1)
    return tally


@lru_cache(maxsize=256)
def _json_pairs(pairs: tuple[tuple[str, str], ...]) -> str:
    """Joint departments and their verdicts as JSON; cached, as most cases share them."""
    return json.dumps(pairs, ensure_ascii=False)


@lru_cache(maxsize=256)
def _json_list(names: tuple[str, ...]) -> str:
    """A list of material names as JSON; cached, as many requests miss the same ones."""
    return json.dumps(list(names), ensure_ascii=False)


async def _known_ids(conn: AsyncConnection, maybe_applied: list[str], ids: list[str]) -> set[str]:
    """Event ids already applied here (looked up among ``maybe_applied``), or refused here
    before (among all ``ids``): neither is judged again."""
    known: set[str] = set()
    if maybe_applied:
        applied = select(events.c.event_id).where(among(conn, events.c.event_id, maybe_applied))
        known.update((await conn.execute(applied)).scalars())
    refused_any = select(dead_letters.c.id).where(dead_letters.c.direction == "in").limit(1)
    if (await conn.execute(refused_any)).first() is not None:  # rare: skip the lookup otherwise
        refused = select(dead_letters.c.event_id).where(
            dead_letters.c.direction == "in", among(conn, dead_letters.c.event_id, ids)
        )
        known.update((await conn.execute(refused)).scalars())
    return known


def case_state(row: dict[str, Any]) -> CaseState:
    """The lifecycle's state of a case from its row in ``cases``."""
    return CaseState(
        row["case_id"],
        row["item_code"],
        row["status"],
        row["owner"],
        row["village_code"],
        row["township_code"],
        row["decide_level"],
        tuple((name, verdict) for name, verdict in json.loads(row["departments"])),
        row["paused_step"],
    )


# Events by which a window handles a case: the case is then that window's (supervision).
_HANDLING = frozenset(
    {ACCEPTED, CORRECTION_REQUESTED, ESCALATED, DECIDED, DEPARTMENT_DECIDED, RETURNED, PAUSED, RESUMED}
)

# Events whose reason the case shows (decision, refusal, withdrawal, return for rework).
_REASONED = frozenset({DECIDED, DEPARTMENT_DECIDED, WITHDRAWN, RETURNED, REFUSED})

_CHANGING = (
    "status",
    "owner",
    "reason",
    "missing_materials",
    "departments",
    "paused_step",
    "window",
    "rating",
    "updated_at",
    *CaseDates.__slots__,
)


def _changes(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in _CHANGING}


def _dates(row: dict[str, Any]) -> CaseDates:
    return CaseDates(*(date.fromisoformat(row[k]) if row[k] else None for k in CaseDates.__slots__))


def _date_columns(dates: CaseDates) -> dict[str, str | None]:
    return {k: (value.isoformat() if (value := getattr(dates, k)) else None) for k in CaseDates.__slots__}


def _missing_after(row: dict[str, Any], event_type: str, payload: dict[str, Any]) -> str:
    """The materials still missing after an event: a correction notice lists them all at once;
    a supplement hands some in."""
    if event_type == CORRECTION_REQUESTED:
        return _json_list(_names(payload.get("missing")))
    if event_type == SUPPLEMENTED:
        materials = payload.get("materials")
        if not isinstance(materials, list):
            raise IllegalTransition("a supplement lists the materials handed in")
        handed_in = {str(m.get("name")) for m in materials if isinstance(m, dict)}
        still = [name for name in json.loads(row["missing_materials"]) if name not in handed_in]
        return _json_list(tuple(still))
    return str(row["missing_materials"])


def _check_case_reach(row: dict[str, Any] | None, record: EventRecord) -> None:
    """An event on a known case belongs to that case's village: one naming another case (a
    sibling village's, another township's) is outside the sender's reach, whatever it is."""
    if row is not None and (row["village_code"], row["township_code"]) != (
        record.village_code,
        record.township_code,
    ):
        raise OutOfReach(
            f"case {record.case_id} belongs to village {row['village_code']}, not {record.village_code}"
        )


def _is_code(value: str, length: int) -> bool:
    return len(value) == length and value.isascii() and value.isdigit()


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise IllegalTransition("a list of material names is expected")
    return tuple(value)


def _in_order(rows: list[dict[str, Any]], wanted: set[str]) -> list[str]:
    return [row["event_id"] for row in rows if row["event_id"] in wanted]


async def dead_letter(
    conn: AsyncConnection, direction: str, peer: str, entries: list[tuple[int, EventRecord, str]]
) -> None:
    """Record events that will never be applied, with the reason, for staff to see."""
    now = now_us()
    await conn.execute(
        dead_letters.insert(),
        [
            {
                "direction": direction,
                "peer": peer,
                "seq": seq,
                "event_id": record.event_id[:64],
                "case_id": record.case_id[:36],
                "type": record.type[:48],
                "reason": reason,
                "recorded_at": now,
            }
            for seq, record, reason in entries
        ],
    )


async def _enqueue(conn: AsyncConnection, event_ids: list[str]) -> None:
    now, first = now_us(), await take_range(conn, "hop_seq", len(event_ids))
    rows = [{"seq": first + i, "event_id": e, "created_at": now} for i, e in enumerate(event_ids)]
    await insert_many(conn, outbox, rows)


async def feed(
    conn: AsyncConnection, puller: str, after: int, limit: int, most_bytes: int
) -> tuple[list[tuple[int, EventRecord]], int]:
    """Events addressed to ``puller``'s jurisdiction after a position, and the feed's head:
    at most ``limit`` of them, and no more once their payloads reach ``most_bytes`` (one at
    least, so a feed of large events keeps moving)."""
    village = len(puller) == 12
    column = events.c.village_code if village else events.c.township_code
    rows = (
        await conn.execute(
            select(events)
            .where(column == puller, events.c.position > after)
            .where(text(f"({VILLAGE_FEEDABLE if village else TOWNSHIP_FEEDABLE})"))  # the index's words
            .order_by(events.c.position)
            .limit(limit)
        )
    ).all()
    head = (await conn.execute(select(func.max(events.c.position)))).scalar() or 0
    rows = within_bytes(rows, most_bytes)
    return list(zip((row.position for row in rows), records_from_rows(rows), strict=True)), head


def within_bytes(rows: Sequence[Any], most_bytes: int) -> Sequence[Any]:
    """The first rows, up to the one whose payload takes their total to ``most_bytes``."""
    total = 0
    for count, row in enumerate(rows, start=1):
        total += len(row.payload)
        if total >= most_bytes:
            return rows[:count]
    return rows


def records_from_rows(
    rows: Sequence[Any], opened: Callable[[str, str, bytes], bytes] | None = None
) -> list[EventRecord]:
    """The events of rows read from ``events`` (with other columns or without), their payloads
    passed through ``opened`` (case id, event id, payload as stored) if given. A row's columns
    are picked by their place, found once: read by name they took 3 ms of a township's 27 a
    1,000-event push (bench/README.md, "Cheaper batches at both ends"); each event is made
    once, its payload opened on the way (dataclasses.replace afterwards: 5 µs an event)."""
    if not rows:
        return []
    fields = rows[0]._fields
    pick = itemgetter(*(fields.index(name) for name in EVENT_FIELDS))
    if opened is None:
        return [EventRecord(*pick(row)) for row in rows]
    records = []
    for row in rows:
        values = list(pick(row))
        values[_PAYLOAD] = opened(values[_CASE_ID], values[_EVENT_ID], values[_PAYLOAD])
        records.append(EventRecord(*values))
    return records


_EVENT_ID, _CASE_ID, _PAYLOAD = (EVENT_FIELDS.index(name) for name in ("event_id", "case_id", "payload"))
