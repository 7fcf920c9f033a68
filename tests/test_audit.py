"""The audit trail: every node's hash chain of the events it applied, checked by `audit verify`
on its own database and, for the nodes below, by their upstream as their rows arrive."""

import asyncio
import sqlite3
import sys
from asyncio.subprocess import PIPE
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from casework import Divisions
from casework.lifecycle import ACCEPTED, DECIDED
from district_node import coverage
from messages import t
from relay import audit
from relay._chain import GENESIS, Link, Links, Witness, follow, row_hash
from relay._replay import check_cases
from relay.clock import now_us
from relay.db import open_engine
from relay.node import Node
from relay.records import ReportedBreak
from relay.schema import audit as audit_table
from relay.staff import act
from relay.wire import heartbeat_from_wire, heartbeat_to_wire
from tests.conftest import DIVISIONS, TOWNSHIP, Net
from tests.test_relay_inprocess import intake, wire

BIN = Path(sys.executable).parent
EDIT_PAYLOAD = "UPDATE events SET payload = :p WHERE event_id = :e"


async def verdict(node: Node) -> audit.Verdict:
    async with node.engine.connect() as conn:
        return await audit.verify(conn, node.ledger.vault)


async def recorded(node: Node, query: Any) -> list[Any]:
    async with node.engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def run_cases(net: Net) -> tuple[Any, Any]:
    """A case decided at the township by a named staff member, synced to every tier twice (so
    the last rows of each chain travel up with the closing probe)."""
    v_sync, t_sync, _ = wire(net)
    [case_id] = await intake(net.village)
    await v_sync.sync(5)
    assert (await act(net.township, [case_id], ACCEPTED, {}, "赵一"))[0].ok
    assert (await act(net.township, [case_id], DECIDED, {"approved": True, "reason": "ok"}, "赵一"))[0].ok
    for _ in range(2):
        await t_sync.sync(5)
        await v_sync.sync(5)
    return v_sync, t_sync


async def tamper(node: Node, sql: str, **values: Any) -> None:
    """Change a node's database behind its back: sqlite3 on its file, or plain SQL on PostgreSQL."""
    url = node.config.db_url
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("///", 1)[1]) as db:
            db.execute(sql, values)
        return
    engine = open_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql), values)
    finally:
        await engine.dispose()


async def test_every_chain_is_whole_and_witnessed_after_a_normal_run(net: Net) -> None:
    """After a case's round trip each tier's chain verifies, covers every event it applied,
    names the staff behind window actions, and its upstream holds it up to its head."""
    await run_cases(net)
    heads = {}
    for node in (net.village, net.township, net.district):
        found = await verdict(node)
        assert found.problem == "" and found.rows > 0, (node.config.code, found.problem)
        heads[node.config.code] = found.head
    staff = await recorded(net.township, select(audit_table.c.staff).where(audit_table.c.staff != ""))
    assert {row.staff for row in staff} == {"赵一"}
    async with net.district.engine.connect() as conn:
        [township] = await audit.witnesses(conn)
        assert await audit.breaks(conn) == []
    assert (township["node"], township["seq"]) == (TOWNSHIP, heads[TOWNSHIP].seq)
    assert township["head_hash"] == heads[TOWNSHIP].hash.hex()
    async with net.township.engine.connect() as conn:
        [village] = await audit.witnesses(conn)
    assert village["seq"] == heads[net.village.config.code].seq


async def test_verify_names_the_row_of_an_edited_event_or_audit_row(net: Net) -> None:
    """An event's payload or an audit row changed in the database (sqlite3 on the file, SQL on
    PostgreSQL) is found by `audit verify`, which names the row in one line and exits 1."""
    await run_cases(net)
    district = net.district
    [second] = await recorded(district, select(audit_table).where(audit_table.c.seq == 2))
    await tamper(district, EDIT_PAYLOAD, p=b'{"staff":"x"}', e=second.event_id)
    found = await verdict(district)
    edited = "the event was edited after it was applied"
    assert found.problem == f"audit row 2 (event {second.event_id}): {edited}"
    assert found.head.seq == 1
    district.config.save(district.home)
    cli = await asyncio.create_subprocess_exec(
        BIN / "district-node", "audit", "verify", "--home", district.home, stdout=PIPE, stderr=PIPE
    )
    _, stderr = await cli.communicate()
    assert cli.returncode == 1 and stderr.decode() == t("cli.error", message=found.problem) + "\n", stderr
    await tamper(district, "UPDATE audit SET staff = :s WHERE seq = 1", s="钱二")
    assert (await verdict(district)).problem.startswith("audit row 1 (event ")
    assert "the row was edited" in (await verdict(district)).problem


async def cases_checked(node: Node) -> str:
    async with node.engine.connect() as conn:
        return await check_cases(conn, node.ledger.vault)


async def test_verify_names_a_case_whose_row_was_edited(net: Net) -> None:
    """Each case's events replayed through the lifecycle match its row on every tier (a
    village's payloads sealed); a status changed in the district's database is named by
    `audit verify`, in one line, exit 1, and so is a row removed."""
    await run_cases(net)
    for node in (net.village, net.township, net.district):
        assert await cases_checked(node) == "", node.config.code
    district = net.district
    [case] = await recorded(district, text("SELECT case_id, status FROM cases"))
    assert case.status == "approved"
    await tamper(district, "UPDATE cases SET status = 'accepted' WHERE case_id = :c", c=case.case_id)
    edited = "its row says status accepted, its events say approved: the row was edited"
    expected = f"case {case.case_id}: {edited}"
    assert (await verdict(district)).problem == ""  # the chain is whole: the events are not touched
    district.config.save(district.home)
    cli = await asyncio.create_subprocess_exec(
        BIN / "district-node", "audit", "verify", "--home", district.home, stdout=PIPE, stderr=PIPE
    )
    _, stderr = await cli.communicate()
    assert cli.returncode == 1 and stderr.decode() == t("cli.error", message=expected) + "\n", stderr
    await tamper(net.township, 'UPDATE cases SET departments = \'[["x", "approved"]]\'')
    assert "its row says departments x approved, its events say none" in await cases_checked(net.township)
    await tamper(net.village, "DELETE FROM cases")
    removed = "it has events but no row in cases: the row was edited out"
    assert await cases_checked(net.village) == f"case {case.case_id}: {removed}"


async def test_a_township_rewriting_its_chain_is_flagged_at_the_district(net: Net) -> None:
    """A township that edits a row and recomputes every hash after it verifies whole on its
    own; the district, holding the township's old head, records the break at its next push."""
    v_sync, t_sync = await run_cases(net)
    await rewrite_chain(net.township, seq=2, staff="钱二")
    assert (await verdict(net.township)).problem == ""  # undetectable on the township alone
    [case_id] = await intake(net.village)
    await v_sync.sync(5)
    await t_sync.sync(5)
    async with net.district.engine.connect() as conn:
        [found] = await audit.breaks(conn)
    assert found["node"] == TOWNSHIP and "rewritten" in found["reason"], found
    shown = coverage.summary(await coverage.coverage(net.district, Divisions.from_csv(DIVISIONS), now_us()))
    assert [row["audit_breaks"] for row in shown["townships"] if row["code"] == TOWNSHIP] == [1]
    [case] = [
        c for c in await recorded(net.district, text("SELECT case_id FROM cases")) if c.case_id == case_id
    ]
    assert case  # the push is applied all the same: the break is recorded, not refused


async def test_a_break_in_a_village_chain_reaches_the_district_with_the_township_heartbeat(
    net: Net,
) -> None:
    """A village that rewrote its chain is flagged at its township on its next push; the
    township's heartbeat (through the wire encoding) passes the break on, the district keeps it
    once however often it is passed on, and the district's `audit verify` names the village."""
    v_sync, t_sync = await run_cases(net)
    village_code = net.village.config.code
    await rewrite_chain(net.village, seq=1, staff="钱二")
    await intake(net.village)
    await v_sync.sync(5)
    await v_sync.upstream.heartbeat(await v_sync.heartbeat())
    beat = await t_sync.heartbeat()
    [seen] = [b for b in beat.below if b.node == village_code]
    assert len(seen.audit_breaks) == 1 and "rewritten" in seen.audit_breaks[0].reason
    sent = heartbeat_from_wire(heartbeat_to_wire(beat))
    assert sent == replace(beat, below=tuple(replace(b, below=()) for b in beat.below))
    for _ in range(2):
        await t_sync.upstream.heartbeat(sent)
    async with net.district.engine.connect() as conn:
        [found] = await audit.breaks(conn)
    assert found["node"] == village_code and found["seq"] == seen.audit_breaks[0].seq
    assert found["reason"] == f"reported by township {TOWNSHIP}: {seen.audit_breaks[0].reason}"
    lying = [ReportedBreak(2**64 - 1, "x", 1), *(ReportedBreak(n, "\x1b[2J" * 99, n) for n in range(12))]
    await t_sync.upstream.heartbeat(replace(sent, below=(replace(seen, audit_breaks=tuple(lying)),)))
    async with net.district.engine.connect() as conn:
        kept = await audit.breaks(conn)
    assert len(kept) == 1 + 9 and all(len(b["reason"]) < 350 and "\x1b" not in b["reason"] for b in kept)
    net.district.config.save(net.district.home)
    cli = await asyncio.create_subprocess_exec(
        BIN / "district-node", "audit", "verify", "--home", net.district.home, stdout=PIPE, stderr=PIPE
    )
    _, stderr = await cli.communicate()
    when = found["recorded_at"][:19]
    reason = f"reported by township {TOWNSHIP}: "
    named = t("cli.audit.broken", when=when, node=village_code, seq=found["seq"], reason=reason)
    assert cli.returncode == 1 and named in stderr.decode(), stderr


async def test_an_event_edited_before_its_push_is_flagged_at_the_district(net: Net) -> None:
    """A township event whose payload is changed between its application and its push reaches
    the district unlike its row in the township's chain: the district records it."""
    v_sync, t_sync = await run_cases(net)
    [case_id] = await intake(net.village)
    await v_sync.sync(5)
    assert (await act(net.township, [case_id], ACCEPTED, {}, "赵一"))[0].ok
    [accepted] = await recorded(net.township, select(audit_table).order_by(audit_table.c.seq.desc()).limit(1))
    await tamper(
        net.township,
        "UPDATE events SET payload = :p WHERE event_id = :e",
        p=b'{"staff":"x"}',
        e=accepted.event_id,
    )
    assert f"event {accepted.event_id}): the event was edited" in (await verdict(net.township)).problem
    await t_sync.sync(5)
    async with net.district.engine.connect() as conn:
        [found] = await audit.breaks(conn)
    assert found["reason"] == f"event {accepted.event_id} differs from its row in the sender's chain"


async def rewrite_chain(node: Node, seq: int, staff: str) -> None:
    """Change row ``seq``'s staff and recompute every hash from it on, as a careful forger would."""
    rows = await recorded(node, select(audit_table).order_by(audit_table.c.seq))
    prev = rows[seq - 2].row_hash if seq > 1 else GENESIS
    for row in rows[seq - 1 :]:
        name = staff if row.seq == seq else row.staff
        current = row_hash(prev, row.seq, row.event_hash, name)
        await tamper(
            node,
            "UPDATE audit SET staff = :s, prev_hash = :p, row_hash = :h WHERE seq = :q",
            s=name,
            p=prev,
            h=current,
            q=row.seq,
        )
        prev = current


def chain(first: int, prev: bytes, staff: list[str]) -> tuple[Links, bytes]:
    links, current = [], prev
    for seq, name in enumerate(staff, first):
        digest = bytes([seq]) * 32
        current = row_hash(current, seq, digest, name)
        links.append(Link(f"e{seq}", digest, name))
    return Links(first, prev, tuple(links), current), current


def test_follow_takes_overlaps_leaves_gaps_and_flags_forks() -> None:
    """A stretch overlapping the witness is checked where they meet; one past it is left for
    the sender to send again; one that disagrees with the witness is a break."""
    sent, head = chain(1, GENESIS, ["a", "b", "c"])
    witness, found = follow(Witness(), sent)
    assert (witness, found) == (Witness(3, head), None)
    again, _ = chain(1, GENESIS, ["a", "b", "c", "d"])
    assert follow(witness, again)[0].seq == 4 and follow(witness, again)[1] is None
    gap, _ = chain(5, head, ["e"])
    assert follow(witness, gap) == (witness, None)
    forked, _ = chain(1, GENESIS, ["a", "x", "c", "d"])
    after, broken = follow(witness, forked)
    assert broken is not None and broken.seq == 3 and after.seq == 4
    lying = Links(sent.first_seq, sent.prev_hash, sent.links, bytes(32))
    assert follow(Witness(), lying)[1] is not None
