"""What the intake app reads from the village's database: the link's state for the status
bar, the cases with what each still waits for here. Through the relay's own queries where
there is one (relay.queries), so the app does not depend on how cases are stored."""

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from casework.lifecycle import ANSWERS, COMMAND_REFUSED, COMMANDS, RATED
from relay.clock import now_us
from relay.counters import read_value
from relay.node import Node
from relay.queries import list_cases, show_case
from relay.schema import events, outbox
from relay.sync import backlog

ONLINE_SECONDS = 60  # a pull is answered at least every PULL_WAIT_MS while the link is up


@dataclass(frozen=True, slots=True)
class Link:
    online: bool
    queued: int  # events waiting in the outbox
    last_sync: int | None  # microseconds: the upstream's last answer


@dataclass(slots=True)
class Followed:
    """What a case's events say beyond its status: commands recorded here and not yet
    answered by the case's owner, and whether the applicant's rating is in."""

    waiting: set[str] = field(default_factory=set)
    rated: bool = False


async def link(node: Node) -> Link:
    async with node.engine.connect() as conn:
        last = max(await read_value(conn, "last_push"), await read_value(conn, "last_pull"))
        queued = await backlog(conn)
    online = bool(last) and now_us() - last < ONLINE_SECONDS * 1_000_000
    return Link(online, queued, last or None)


async def case_rows(node: Node) -> list[dict[str, Any]]:
    """Every case of the village, the newest first, each with its Followed under "followed"
    and whether some of it still waits in the outbox under "queued"."""
    followed, queued, rows = await _followed(node), await _queued(node), await list_cases(node)
    return [
        row | {"followed": followed.get(row["case_id"], Followed()), "queued": row["case_id"] in queued}
        for row in rows[::-1]
    ]


async def case(node: Node, case_id: str) -> dict[str, Any] | None:
    """One case with its events and its Followed, or None."""
    found = await show_case(node, case_id)
    if found is None:
        return None
    return found | {"followed": _follow([(e["event_id"], e["type"], e["payload"]) for e in found["events"]])}


async def _followed(node: Node) -> dict[str, Followed]:
    """Commands and their answers of every case here (a village's database holds its own only)."""
    kinds = [*COMMANDS, *ANSWERS.values(), COMMAND_REFUSED]
    query = (
        select(events.c.case_id, events.c.event_id, events.c.type, events.c.payload)
        .where(events.c.type.in_(kinds))
        .order_by(events.c.position)
    )
    grouped: dict[str, list[tuple[str, str, dict[str, Any]]]] = defaultdict(list)
    async with node.engine.connect() as conn:
        for row in await conn.execute(query):
            payload = node.ledger.vault.open_payload(row.case_id, row.event_id, row.payload)
            grouped[row.case_id].append((row.event_id, row.type, json.loads(payload)))
    return {case_id: _follow(history) for case_id, history in grouped.items()}


async def _queued(node: Node) -> set[str]:
    """The cases with an event not yet acknowledged by the upstream."""
    async with node.engine.connect() as conn:
        acked = await read_value(conn, "acked_upto")
        query = (
            select(events.c.case_id)
            .join(outbox, outbox.c.event_id == events.c.event_id)
            .where(outbox.c.seq > acked)
            .distinct()
        )
        return {row.case_id for row in await conn.execute(query)}


def _follow(history: list[tuple[str, str, dict[str, Any]]]) -> Followed:
    commands = {event_id: kind for event_id, kind, _ in history if kind in COMMANDS}
    answered = {payload.get("command_event_id") for _, kind, payload in history if kind not in COMMANDS}
    return Followed(
        {kind for event_id, kind in commands.items() if event_id not in answered},
        any(kind == RATED for _, kind, _ in history),
    )
