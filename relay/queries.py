"""Reading cases as staff and agents see them (JSON-ready dicts)."""

import json
from typing import Any

from sqlalchemy import select

from relay.clock import iso
from relay.node import Node
from relay.schema import cases, events


async def list_cases(node: Node, status: str | None = None) -> list[dict[str, Any]]:
    query = select(cases).order_by(cases.c.created_at)
    if status:
        query = query.where(cases.c.status == status)
    async with node.engine.connect() as conn:
        return [case_dict(row) for row in (await conn.execute(query)).all()]


async def show_case(node: Node, case_id: str) -> dict[str, Any] | None:
    """The case with its full event history, or None if this node does not know it."""
    async with node.engine.connect() as conn:
        row = (await conn.execute(select(cases).where(cases.c.case_id == case_id))).first()
        if row is None:
            return None
        history = (
            await conn.execute(select(events).where(events.c.case_id == case_id).order_by(events.c.position))
        ).all()
    found = case_dict(row)
    found["events"] = [
        {
            "event_id": e.event_id,
            "type": e.type,
            "origin_node": e.origin_node,
            "recorded_at": iso(e.recorded_at),
            "payload": _public_payload(e.payload),
        }
        for e in history
    ]
    return found


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


def _public_payload(raw: bytes) -> dict[str, Any]:
    """The payload without the applicant's identity (shown once, on the case itself)."""
    payload: dict[str, Any] = json.loads(raw)
    payload.pop("applicant", None)
    return payload
