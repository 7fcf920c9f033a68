"""Staff actions on cases this node owns (township and district windows)."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from casework import CaseworkError, IllegalTransition
from relay.node import Node
from relay.schema import cases


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one case of a staff command: done, or why not."""

    case_id: str
    ok: bool
    status: str = ""
    error: str = ""


async def act(node: Node, case_ids: list[str], event_type: str, payload: dict[str, Any]) -> list[Outcome]:
    """Apply one staff action to each case on its own: each commits or fails alone."""
    return [await _act_one(node, case_id, event_type, payload) for case_id in case_ids]


async def _act_one(node: Node, case_id: str, event_type: str, payload: dict[str, Any]) -> Outcome:
    try:
        async with node.engine.begin() as conn:
            row = (await conn.execute(select(cases).where(cases.c.case_id == case_id))).first()
            if row is None:
                raise IllegalTransition(f"no case {case_id} here")
            if row.owner != node.config.code:
                raise IllegalTransition(f"case {case_id} is owned by {row.owner}, not this node")
            await node.ledger.record(conn, case_id, event_type, payload, row.village_code, row.township_code)
            status = (await conn.execute(select(cases.c.status).where(cases.c.case_id == case_id))).scalar()
    except CaseworkError as exc:
        return Outcome(case_id, False, error=str(exc))
    return Outcome(case_id, True, status=status or "")
