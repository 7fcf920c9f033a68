"""What the staff console reads: who the signed-in staff member is on the roster, their queue
with each case's light today, and one case with what they may do to it. Read-only; actions go
through relay.staff.act."""

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, case, or_, select

from casework import CaseworkError, Item, mask_resident_id
from relay import actions
from relay.ledger import case_state
from relay.node import Node
from relay.queries import case_dict, case_history, with_applicant
from relay.schema import cases
from relay.staff import Actor, identify
from relay.staff import open_records as open_records_of
from relay.supervision import light_today

OPEN = ("submitted", "accepted", "correction_requested", "escalated")
QUEUE_LIMIT = 500
# The queue's order: the most urgent first, then requests still to accept, then the rest.
_URGENCY = {"overdue": 0, "red": 1, "yellow": 2, "not_accepted": 3}


@dataclass(frozen=True, slots=True)
class CaseView:
    case: dict[str, Any]  # as relay.queries.show_case gives it, with its events
    applicant: str
    id_number: str  # masked
    light: str
    item: Item | None
    allowed: list[str]  # relay.actions.allowed
    records: list[dict[str, Any]]  # its open rectification records (relay.staff.open_records)


async def member(node: Node, name: str) -> Actor | None:
    """The signed-in staff member as the roster has them now; None if they are not on it."""
    async with node.engine.connect() as conn:
        try:
            actor = await identify(conn, name)
        except CaseworkError:
            return None
    return actor if actor.role else None  # no roster: nobody is known to act here


async def queue(node: Node, actor: Actor, today: date) -> list[dict[str, Any]]:
    """The open cases this node owns that are ``actor``'s window's (a chief representative's
    and a supervisor's: every window's), the most urgent first, each with its light today."""
    running = light_today(today)
    light = running.label("light")
    query = select(cases, light).where(cases.c.owner == node.config.code, cases.c.status.in_(OPEN))
    if (theirs := _windows_cases(node, actor)) is not None:
        query = query.where(theirs)
    urgency = case(_URGENCY, value=running, else_=len(_URGENCY))
    query = query.order_by(urgency, cases.c.deadline, cases.c.created_at).limit(QUEUE_LIMIT)
    async with node.engine.connect() as conn:
        return [case_dict(row) | {"light": row.light} for row in await conn.execute(query)]


async def case_view(node: Node, case_id: str, actor: Actor, today: date) -> CaseView | None:
    """One case with its history, its applicant (ID number masked), its light today and the
    actions ``actor`` may take on it; None if this node does not know it, or (at the district)
    if it is another department's."""
    light = light_today(today).label("light")
    query = select(cases, light).where(cases.c.case_id == case_id)
    # A township center's windows may look up any of its cases (to answer an applicant at the
    # counter) and act on their own; the district's departments are separate offices, and
    # the applicant's personal data is for the department handling the case only.
    if node.config.role == "district" and (theirs := _windows_cases(node, actor)) is not None:
        query = query.where(theirs)
    async with node.engine.connect() as conn:
        history = await case_history(node, conn, case_id)
        row = (await conn.execute(query)).first()
        if row is None:
            return None
        records = [r for r in await open_records_of(conn, [case_id]) if r["outcome"] is None]
    found = with_applicant(node, row) | {"events": history}
    catalog = node.ledger.catalogs.get(row.catalog_version, node.ledger.catalog)
    item = catalog.items.get(row.item_code)
    named = [r["record"] for r in records]
    allowed = actions.allowed(case_state(dict(row._mapping)), item, actor, node.config.code, named)
    applicant, id_number = row.applicant_name, mask_resident_id(row.applicant_id)
    return CaseView(found, applicant, id_number, row.light, item, allowed, records)


def _windows_cases(node: Node, actor: Actor) -> ColumnElement[bool] | None:
    """The cases of ``actor``'s window: those of the items it serves, and those it handled;
    None where they see every case (a chief representative, a supervisor, a window serving
    every item)."""
    if actor.sees_all or not actor.items:
        return None
    handled = cases.c.window == f"{node.config.code}:{actor.window[:19]}"
    return or_(cases.c.item_code.in_(actor.items), handled)


async def open_records(node: Node, today: date) -> list[dict[str, Any]]:
    """The open rectification records of this center, the earliest due first, each saying
    whether it is overdue ``today``."""
    async with node.engine.connect() as conn:
        found = [r for r in await open_records_of(conn) if r["outcome"] is None]
    day = today.isoformat()
    return sorted((r | {"overdue": r["rectify_by"] < day} for r in found), key=lambda r: r["rectify_by"])
