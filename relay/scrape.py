"""What a scrape of ``/metrics`` reads from the node's database, beside the relay's in-memory
counters (relay.metrics): backlog, cursors, sync ages, cases by status, dead letters, and the
heartbeats of the nodes below."""

import math
import time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from casework.lifecycle import STATUSES
from relay.counters import read_value
from relay.metrics import IN_MEMORY, STARTED, Family
from relay.node import Node
from relay.schema import cases, dead_letters, events, nodes
from relay.sync import SOFTWARE_VERSION, backlog


async def collect(node: Node, now: float | None = None) -> list[Family]:
    """Everything /metrics shows for this node, read now."""
    now = time.time() if now is None else now
    async with node.engine.connect() as conn:
        families = [
            _info(node),
            *await _relay(conn, node, now),
            *await _cases(conn),
            *await _nodes(conn, now),
        ]
    return [*families, *(metric.family() for metric in IN_MEMORY)]


def _info(node: Node) -> Family:
    labels = (("code", node.config.code), ("role", node.config.role), ("version", SOFTWARE_VERSION))
    return Family(
        "servicenet_node_info", "gauge", "This node: its division code, role and software.", [(labels, 1)]
    )


async def _relay(conn: AsyncConnection, node: Node, now: float) -> list[Family]:
    acked, last = await read_value(conn, "acked_upto"), await read_value(conn, "hop_seq")
    found = [
        _gauge(
            "servicenet_outbox_backlog",
            "Events queued for the upstream, not yet acknowledged.",
            await backlog(conn),
        ),
        Family(
            "servicenet_outbox_sequence",
            "gauge",
            "Hop sequence numbers: the last given to an outbox row (what=last) and the highest "
            "the upstream acknowledged (what=acked).",
            [((("what", "acked"),), acked), ((("what", "last"),), last)],
        ),
        _gauge(
            "servicenet_feed_head",
            "The newest position in this node's feed (what the nodes below pull by).",
            (await conn.execute(select(func.max(events.c.position)))).scalar() or 0,
        ),
        _gauge("servicenet_uptime_seconds", "Seconds since this process started.", now - STARTED),
    ]
    if node.config.upstream:
        for name in ("last_push", "last_pull"):
            when = await read_value(conn, name)
            found.append(
                _gauge(
                    f"servicenet_{name}_age_seconds",
                    f"Seconds since the upstream last answered a {name[5:]} (NaN: never).",
                    now - when / 1_000_000 if when else math.nan,
                )
            )
    return found


async def _cases(conn: AsyncConnection) -> list[Family]:
    rows = await conn.execute(select(cases.c.status, func.count()).group_by(cases.c.status))
    counts = dict.fromkeys(STATUSES, 0) | {status: n for status, n in rows}
    letters = await conn.execute(
        select(dead_letters.c.direction, func.count()).group_by(dead_letters.c.direction)
    )
    rejected = {"in": 0, "out": 0} | {direction: n for direction, n in letters}
    return [
        Family(
            "servicenet_cases",
            "gauge",
            "Cases this node knows, by status.",
            [((("status", status),), n) for status, n in sorted(counts.items())],
        ),
        Family(
            "servicenet_dead_letters",
            "gauge",
            "Events kept as dead letters (rejects): refused here (in) or by the upstream (out).",
            [((("direction", direction),), n) for direction, n in sorted(rejected.items())],
        ),
    ]


async def _nodes(conn: AsyncConnection, now: float) -> list[Family]:
    """The nodes below as their heartbeats last described them."""
    rows = (
        await conn.execute(select(nodes).where(nodes.c.last_seen.is_not(None)).order_by(nodes.c.code))
    ).all()
    keyed = [((("node", row.code), ("role", row.role)), row) for row in rows]
    return [
        Family(
            "servicenet_peer_backlog",
            "gauge",
            "Events a node below had queued for this node at its last heartbeat.",
            [(labels, row.backlog or 0) for labels, row in keyed],
        ),
        Family(
            "servicenet_peer_last_seen_age_seconds",
            "gauge",
            "Seconds since a node below last sent a heartbeat.",
            [(labels, now - row.last_seen / 1_000_000) for labels, row in keyed],
        ),
    ]


def _gauge(name: str, help_text: str, value: float) -> Family:
    return Family(name, "gauge", help_text, [((), value)])
