"""Staff actions on cases (township and district windows), each recorded against the staff
member who acted, their window and their role.

A service center keeps a roster (AB岗): every window has an A and a B staff member and either
may act on the window's items; a department's chief representative (首席代表) acts on that
department's items and may decide a request on the spot (当场办结: accept and decide at once).
A supervisor (督查) reads every window's queue and cases and follows up complaints and bad
reviews (records complaints and rectifications), but takes no step of the casework itself:
who checks the windows' work does not do it.
With an empty roster nobody is checked (demos and tests); the name given is still recorded.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from casework import CaseState, CaseworkError, IllegalTransition, InvalidInput, Item
from casework.lifecycle import (
    ACCEPTED,
    ANSWERS,
    CMD_COMPLAIN,
    COMMANDS,
    DECIDED,
    DEPARTMENT_DECIDED,
    RECTIFIED,
)
from relay.bell import pullers_of
from relay.counters import read_value, write_value
from relay.db import serialize_writers
from relay.ledger import case_state
from relay.node import Node
from relay.schema import cases, rectifications, staff, window_complaints, windows

SUPERVISOR = "supervisor"
ROLES = ("A", "B", "chief", SUPERVISOR)
# What a supervisor records on a case: complaints and the outcome of rectification records.
_SUPERVISED = frozenset({RECTIFIED, CMD_COMPLAIN})
ROSTER_KEPT = "roster_kept"  # set once a roster exists: staff are checked from then on
_DECISIONS = (DECIDED, DEPARTMENT_DECIDED)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one case of a staff command: done, or why not."""

    case_id: str
    ok: bool
    status: str = ""
    error: str = ""  # in English, for logs and the command lines
    code: str = ""  # the refusal's code, for words in the user's language (CaseworkError.code)
    fields: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a roster entry, or only a name where the node keeps no roster."""

    name: str
    window: str = ""
    role: str = ""
    department: str = ""
    items: tuple[str, ...] = ()  # the items the window serves; empty: every item

    def stamp(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload | {"staff": self.name, "window": self.window, "role": self.role}

    @property
    def sees_all(self) -> bool:
        """A chief representative and a supervisor see every window's cases."""
        return self.role in ("chief", SUPERVISOR)

    def on_the_spot(self, state: CaseState) -> bool:
        """A chief representative decides a request not yet accepted on the spot (当场办结)."""
        return self.role == "chief" and state.status == "submitted"

    def check(self, item: Item | None, event_type: str, payload: dict[str, Any]) -> None:
        """Refuse what this staff member may not do to a case of ``item``."""
        if self.role == SUPERVISOR:
            if event_type not in _SUPERVISED:
                raise IllegalTransition(
                    f"{self.name} is a supervisor: supervisors follow up complaints and rectifications"
                    ", they do not handle cases",
                    "supervisor",
                )
            return
        if not self.role or item is None:
            return
        if event_type == DEPARTMENT_DECIDED and payload.get("department") != self.department:
            # A joint item's departments each decide through their own staff.
            department = payload.get("department")
            raise IllegalTransition(
                f"{self.name} does not decide for {department}", "not_department", department=department
            )
        if self.role == "chief":
            own = self.department == item.department
            if not own and not (
                event_type == DEPARTMENT_DECIDED and self.department in item.joint_departments
            ):
                raise IllegalTransition(
                    f"{self.name} is chief representative of {self.department}, not of {item.department}",
                    "other_department",
                    own=self.department,
                    department=item.department,
                )
        elif self.items and item.code not in self.items:
            raise IllegalTransition(
                f"window {self.window} does not serve item {item.code}: ask the window that does",
                "not_served",
                window=self.window,
                item=item.code,
            )


async def act(
    node: Node, case_ids: list[str], event_type: str, payload: dict[str, Any], staff_name: str = ""
) -> list[Outcome]:
    """Apply one staff action to each case on its own: each commits or fails alone. The
    action is recorded against ``staff_name`` (default: the node's operator)."""
    name = staff_name or node.config.operator
    return [await _act_one(node, case_id, event_type, payload, name) for case_id in case_ids]


async def _act_one(node: Node, case_id: str, event_type: str, payload: dict[str, Any], name: str) -> Outcome:
    try:
        async with node.engine.begin() as conn:
            actor = await identify(conn, name)
            row = (await conn.execute(select(cases).where(cases.c.case_id == case_id))).first()
            if row is None:
                raise IllegalTransition(f"no case {case_id} here", "no_case")
            catalog = node.ledger.catalogs.get(row.catalog_version, node.ledger.catalog)
            item = catalog.items.get(row.item_code)
            actor.check(item, event_type, payload)
            changes = await _changes(node, conn, row, actor, event_type, payload)
            await node.ledger.record_many(
                conn,
                [
                    (case_id, kind, actor.stamp(body), row.village_code, row.township_code)
                    for kind, body in changes
                ],
            )
            status = (await conn.execute(select(cases.c.status).where(cases.c.case_id == case_id))).scalar()
    except CaseworkError as exc:
        return Outcome(case_id, False, error=str(exc), code=exc.code, fields=exc.fields)
    node.ledger.bell.ring(pullers_of([row.village_code]))  # a server in this process wakes them
    return Outcome(case_id, True, status=status or "")


async def _changes(
    node: Node,
    conn: AsyncConnection,
    row: Any,
    actor: Actor,
    event_type: str,
    payload: dict[str, Any],
) -> list[tuple[str, dict[str, Any]]]:
    """The events a staff action makes here: one as a rule; a command where the case's owner
    is the upstream; accept-and-decide for a chief representative deciding on the spot."""
    own = row.owner == node.config.code
    if event_type in COMMANDS:  # handed in at the window: delivery, rating, complaint
        if own:
            return [(ANSWERS[event_type], payload)]
        if row.owner != node.config.upstream_code:
            raise IllegalTransition(
                f"case {row.case_id} is owned by {row.owner}: it is handled there",
                "owned_by",
                owner=row.owner,
            )
        return [(event_type, payload)]  # travels up to the owner, who answers it
    if not own:
        raise IllegalTransition(
            f"case {row.case_id} is owned by {row.owner}, not this node", "owned_by", owner=row.owner
        )
    if event_type == RECTIFIED:
        return [(event_type, payload | {"of": await _open_record(conn, row.case_id, payload.get("of"))})]
    if event_type in _DECISIONS and actor.on_the_spot(case_state(dict(row._mapping))):
        return [(ACCEPTED, {}), (event_type, payload)]  # 当场办结
    return [(event_type, payload)]


async def identify(conn: AsyncConnection, name: str) -> Actor:
    """The staff member acting; refused if the node keeps a roster without them."""
    if (await conn.execute(select(staff.c.name).limit(1))).first() is None:
        if await read_value(conn, ROSTER_KEPT):
            raise IllegalTransition(
                "this center's staff roster is empty: add staff with 'staff add'", "roster_empty"
            )
        return Actor(name)
    member = (await conn.execute(select(staff).where(staff.c.name == name))).first()
    if member is None:
        raise IllegalTransition(
            f"{name!r} is not on this center's staff roster: see 'staff list'", "not_on_roster"
        )
    window = windows.c.window == member.window
    served = (await conn.execute(select(windows.c.item_codes).where(window))).scalar()
    items = tuple(json.loads(served or "[]"))
    return Actor(member.name, member.window, member.role, member.department, items)


async def open_records(conn: AsyncConnection, case_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Rectification records (bad reviews, complaints), each with its deadline, the window
    handling its case and, once closed, its outcome; of the given cases, or all of them with
    the complaints against windows."""
    query = select(rectifications, cases.c.window).join(cases, cases.c.case_id == rectifications.c.case_id)
    if case_ids is not None:
        query = query.where(rectifications.c.case_id.in_(case_ids))
    found = [
        {
            "record": row.record,
            "case_id": row.case_id,
            "kind": row.kind,
            "rectify_by": row.rectify_by,
            "outcome": row.outcome,
            "window": row.window,
        }
        for row in await conn.execute(query.order_by(rectifications.c.rectify_by, rectifications.c.record))
    ]
    if case_ids is None:
        found += [_window_record(row) for row in (await conn.execute(select(window_complaints))).all()]
    return found


WINDOW_RECORD = "window:"  # the prefix of a window complaint's record id


def _window_record(row: Any) -> dict[str, Any]:
    return {
        "record": f"{WINDOW_RECORD}{row.id}",
        "case_id": None,
        "kind": "window_complaint",
        "window": row.window,
        "rectify_by": row.rectify_by,
        "outcome": row.outcome,
    }


async def complain_about_window(node: Node, window: str, text: str, staff_name: str = "") -> str:
    """File a complaint against one of this center's windows; returns its record id."""
    async with node.engine.begin() as conn:
        actor = await identify(conn, staff_name or node.config.operator)
        if actor.role and not await _is_window(conn, window):
            raise InvalidInput(
                f"there is no window {window!r} here: see 'staff list'", "no_window", window=window
            )
        today = node.ledger.today()
        due = node.ledger.calendar.add_working_days(today, node.config.rectify_days)
        named = f"{node.config.code}:{window[:19]}"  # as cases name the window handling them
        row = {"window": named, "text": text, "staff": actor.name, "filed_on": today.isoformat()}
        insert = window_complaints.insert().values(row | {"rectify_by": due.isoformat()})
        made = (await conn.execute(insert.returning(window_complaints.c.id))).scalar_one()
        return f"{WINDOW_RECORD}{made}"


async def rectify_window(node: Node, record: str, outcome: str, staff_name: str = "") -> None:
    """Close a window complaint's rectification record with its outcome (once)."""
    number = record.removeprefix(WINDOW_RECORD)
    if not number.isdigit():
        raise InvalidInput(
            f"{record!r} is not a window complaint's record (window:N)", "not_open", record=record
        )
    async with node.engine.begin() as conn:
        actor = await identify(conn, staff_name or node.config.operator)
        closed = await conn.execute(
            update(window_complaints)
            .where(window_complaints.c.id == int(number), window_complaints.c.outcome.is_(None))
            .values(outcome=outcome, closed_by=actor.name)
        )
        if closed.rowcount != 1:
            raise InvalidInput(
                f"{record} is not an open rectification record here", "not_open", record=record
            )


async def _is_window(conn: AsyncConnection, window: str) -> bool:
    if not window:  # a supervisor works at no window: "" is none
        return False
    staffed = select(staff.c.name).where(staff.c.window == window).limit(1)
    served = select(windows.c.window).where(windows.c.window == window)
    return (await conn.execute(staffed)).first() is not None or (
        await conn.execute(served)
    ).first() is not None


async def _open_record(conn: AsyncConnection, case_id: str, wanted: Any) -> str:
    still_open = [r["record"] for r in await open_records(conn, [case_id]) if r["outcome"] is None]
    if not still_open:
        raise IllegalTransition(f"case {case_id} has no open rectification record", "no_open_record")
    if wanted is None:
        return str(still_open[0])
    if wanted not in still_open:
        raise IllegalTransition(
            f"{wanted} is not an open rectification record of case {case_id}",
            "not_open_record",
            record=wanted,
        )
    return str(wanted)


async def add_member(node: Node, name: str, window: str, role: str, department: str) -> None:
    """Put a staff member on the roster (or change their window or role)."""
    if not name.strip():
        raise InvalidInput("a staff member needs a name", "staff_name")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", "bad_role", roles=", ".join(ROLES))
    if role != SUPERVISOR and not window.strip():
        said = f"role {role} works at a window: give --window (only a supervisor has none)"
        raise InvalidInput(said, "needs_window", role=role)
    if role == "chief" and not department.strip():
        said = "a chief representative represents a department: give --department"
        raise InvalidInput(said, "needs_department")
    async with node.engine.begin() as conn:
        await serialize_writers(conn)  # two windows' A/B checks never interleave
        await write_value(conn, ROSTER_KEPT, 1)  # from now on an empty roster lets nobody act
        if role in ("A", "B"):
            taken = (
                await conn.execute(
                    select(staff.c.name).where(
                        staff.c.window == window, staff.c.role == role, staff.c.name != name
                    )
                )
            ).scalar()
            if taken:
                said = f"window {window} has {taken} as its {role} already: remove them first"
                raise InvalidInput(said, "post_taken", window=window, taken=taken, role=role)
        await conn.execute(delete(staff).where(staff.c.name == name))
        await conn.execute(staff.insert().values(name=name, window=window, role=role, department=department))


async def remove_member(node: Node, name: str) -> None:
    async with node.engine.begin() as conn:
        if (await conn.execute(delete(staff).where(staff.c.name == name))).rowcount == 0:
            raise InvalidInput(f"{name!r} is not on the roster", "staff_unknown", name=name)


async def serve_items(node: Node, window: str, items: list[str]) -> None:
    """Say which items a window serves (none: every item)."""
    unknown = [code for code in items if code not in node.ledger.catalog.items]
    if unknown:
        said = f"unknown item(s) {', '.join(unknown)}: see the catalog"
        raise InvalidInput(said, "unknown_items", items=", ".join(unknown))
    async with node.engine.begin() as conn:
        await conn.execute(delete(windows).where(windows.c.window == window))
        await conn.execute(windows.insert().values(window=window, item_codes=json.dumps(items)))


async def names(node: Node) -> set[str]:
    """Everyone on this center's roster (only they may sign in to the staff console)."""
    async with node.engine.connect() as conn:
        return set((await conn.execute(select(staff.c.name))).scalars())


async def roster(node: Node) -> list[dict[str, Any]]:
    async with node.engine.connect() as conn:
        served = {w.window: json.loads(w.item_codes) for w in (await conn.execute(select(windows))).all()}
        members = (await conn.execute(select(staff).order_by(staff.c.window, staff.c.role))).all()
    return [
        {
            "name": m.name,
            "window": m.window,
            "role": m.role,
            "department": m.department,
            "items": served.get(m.window, []),
        }
        for m in members
    ]
