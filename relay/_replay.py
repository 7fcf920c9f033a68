"""``audit verify``'s check of the case projection: each case's events replayed in the order
they were applied through casework's lifecycle, compared with the case's row in ``cases``.
The chain vouches for the events; this vouches for the rows built from them.

Cases are read a page at a time, by case number, each page's events with one query: two
queries per page, whatever the number of cases. A case a village has forgotten (relay.privacy)
lost payload fields the lifecycle checks: only that its row exists is checked.
"""

import json
from collections.abc import Iterable
from dataclasses import fields
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from casework.errors import IllegalTransition
from casework.lifecycle import SUBMITTED, CaseState, evolve, submit
from relay.ledger import case_state
from relay.privacy import FORGOTTEN
from relay.schema import cases, events
from relay.vault import Vault

__all__ = ["check_cases"]

PAGE = 5000
_STATE = [cases.c[f.name] for f in fields(CaseState)]
_EVENT = (events.c.case_id, events.c.event_id, events.c.type, events.c.payload, events.c.origin_node)
_EDITED = "the row was edited"


class _Applied(NamedTuple):
    event_id: str
    type: str
    payload: dict[str, Any] | None  # None: forgotten (relay.privacy)
    origin: str


async def check_cases(conn: AsyncConnection, vault: Vault) -> str:
    """The first case whose row does not follow from its events, in one line ("" if none)."""
    after = ""
    while True:
        query = select(*_STATE).where(cases.c.case_id > after).order_by(cases.c.case_id)
        page = (await conn.execute(query.limit(PAGE))).all()
        upto = page[-1].case_id if len(page) == PAGE else None
        found = await _events(conn, after, upto, vault)
        for row in page:
            problem = _compare(row._asdict(), found.pop(row.case_id, None))
            if problem:
                return problem
        if found:  # events of a case this page should have held: its row was removed
            return f"case {min(found)}: it has events but no row in cases: {_EDITED} out"
        if upto is None:
            return ""
        after = upto


async def _events(
    conn: AsyncConnection, after: str, upto: str | None, vault: Vault
) -> dict[str, list[_Applied]]:
    """The events of the cases numbered after ``after`` up to ``upto`` (None: the last), each
    case's in the order they were applied, their payloads opened."""
    query = select(*_EVENT).where(events.c.case_id > after)
    if upto is not None:
        query = query.where(events.c.case_id <= upto)
    found: dict[str, list[_Applied]] = {}
    for row in (await conn.execute(query.order_by(events.c.position))).all():
        payload = _payload(vault.open_payload(row.case_id, row.event_id, row.payload))
        found.setdefault(row.case_id, []).append(_Applied(row.event_id, row.type, payload, row.origin_node))
    return found


def _compare(row: dict[str, Any], applied: list[_Applied] | None) -> str:
    where = f"case {row['case_id']}"
    if not applied:
        return f"{where}: it has a row in cases but no events: the row was inserted"
    try:
        kept = case_state(row)
    except (TypeError, ValueError):  # departments no longer JSON pairs
        return f"{where}: its row's departments are not a list of verdicts: {_EDITED}"
    replayed = _replay(row["case_id"], applied)
    if replayed is None:  # forgotten
        return ""
    if isinstance(replayed, str):
        return f"{where}: {replayed}"
    for name in CaseState.__slots__:
        said, done = getattr(kept, name), getattr(replayed, name)
        if said != done:
            return f"{where}: its row says {name} {_shown(said)}, its events say {_shown(done)}: {_EDITED}"
    return ""


def _replay(case_id: str, applied: Iterable[_Applied]) -> CaseState | str | None:
    """The state a case's events lead to; a line saying why they do not; None if forgotten."""
    state: CaseState | None = None
    for event in applied:
        if event.payload is None:
            return None
        try:
            if event.type == SUBMITTED:
                state = submit(case_id, event.payload)
            elif state is None:
                return f"its first event {event.event_id} is not its submission"
            else:
                state = evolve(state, event.type, event.payload, event.origin)
        except IllegalTransition as exc:
            return f"its events do not replay at event {event.event_id}: {exc}"
    return state


def _payload(payload: bytes) -> dict[str, Any] | None:
    """An event's payload as a dict; None if a village forgot it (relay.privacy). The chain,
    checked before, vouches that it is the payload applied."""
    opened = json.loads(payload)
    return None if opened.get(FORGOTTEN) is True else opened


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(f"{name} {verdict}" for name, verdict in value) or "none"
    return str(value) or '""'
