"""Reading cases as staff and agents see them (JSON-ready dicts)."""

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from casework import mask_foreign_ids, shown_resident_id
from relay.clock import iso
from relay.node import Node
from relay.schema import cases, events


async def list_cases(node: Node, status: str | None = None) -> list[dict[str, Any]]:
    query = select(cases).order_by(cases.c.created_at)
    if status:
        query = query.where(cases.c.status == status)
    async with node.engine.connect() as conn:
        return [with_applicant(node, row) for row in (await conn.execute(query)).all()]


async def show_case(node: Node, case_id: str) -> dict[str, Any] | None:
    """The case with its full event history, or None if this node does not know it."""
    async with node.engine.connect() as conn:
        history = await case_history(node, conn, case_id)
        row = (await conn.execute(select(cases).where(cases.c.case_id == case_id))).first()
    return None if row is None else with_applicant(node, row) | {"events": history}


async def case_history(node: Node, conn: AsyncConnection, case_id: str) -> list[dict[str, Any]]:
    """A case's events, the oldest first. Read before the case's row on the same connection,
    the row is at least as new as its history (PostgreSQL reads each statement's last commit):
    a page never offers forms for a status older than the events it lists."""
    query = select(events).where(events.c.case_id == case_id).order_by(events.c.position)
    district = node.config.district_code
    return [
        {
            "event_id": e.event_id,
            "type": e.type,
            "origin_node": e.origin_node,
            "recorded_at": iso(e.recorded_at),
            "payload": _public_payload(e.payload, district),
        }
        for e in node.ledger.stored((await conn.execute(query)).all())
    ]


def with_applicant(node: Node, row: Any) -> dict[str, Any]:
    """The case as command output shows it: the applicant's name, and their ID number whole
    only for a resident of this node's district (masked otherwise; empty once forgotten)."""
    applicant = node.ledger.vault.applicant(row)
    id_number = (
        shown_resident_id(applicant.id_number, node.config.district_code) if applicant.id_number else ""
    )
    return case_dict(row) | {"applicant_name": applicant.name, "applicant_id": id_number}


def case_dict(row: Any) -> dict[str, Any]:
    return {
        "case_id": row.case_id,
        "item_code": row.item_code,
        "status": row.status,
        "owner": row.owner,
        "village_code": row.village_code,
        "township_code": row.township_code,
        "applicant_name": row.applicant_name,
        "missing_materials": json.loads(row.missing_materials),
        "reason": row.reason,
        "departments": dict(json.loads(row.departments)),
        "catalog_version": row.catalog_version,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "deadline": row.deadline,
        "statutory_deadline": row.statutory_deadline,
        "paused_on": row.paused_on,
        "paused_step": row.paused_step or None,
        "decided_on": row.decided_on,
        "window": row.window or None,
    }


def _public_payload(raw: bytes, district_code: str) -> dict[str, Any]:
    """The payload without the applicant's identity (shown once, on the case itself), and with
    any other ID number (a form field's) masked unless it is of a resident of the district."""
    payload: dict[str, Any] = json.loads(raw)
    payload.pop("applicant", None)
    shown: dict[str, Any] = json.loads(
        mask_foreign_ids(json.dumps(payload, ensure_ascii=False), district_code)
    )
    return shown
