"""Unit tests of the relay's outbox, inbox and forwarder on real SQLite nodes, wired in-process.

The only fake is at the network edge: ``EdgeSpy`` wraps a LocalUpstream to record (or break)
what crosses the link. Everything else is the product's own code on real database files.
"""

import asyncio
import dataclasses
import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select, update
from structlog.testing import capture_logs
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from casework import IllegalTransition, Request
from casework.lifecycle import (
    ACCEPTED,
    CMD_COMPLAIN,
    CMD_SUPPLEMENT,
    CMD_WITHDRAW,
    CORRECTION_REQUESTED,
    DECIDED,
    MAX_TEXT,
    PAUSED,
    REFUSED,
    SUBMITTED,
)
from relay import service as relay_service
from relay import sync as relay_sync
from relay.audit import Links
from relay.certify import OWN, Standing
from relay.config import RelayPolicy
from relay.counters import read_text, read_value, take_range, write_value
from relay.db import create_schema, open_engine
from relay.errors import PermanentError, TransientError
from relay.ledger import MAX_EVENT_BYTES
from relay.node import Node, open_node
from relay.records import EventRecord, PullResult, PushResult
from relay.schema import audit, audit_peers, cases, dead_letters, events, inbox_peers, outbox
from relay.service import APPLYING_AT_ONCE, RelayService
from relay.staff import act
from relay.sync import Syncer, backlog
from relay.upstream import LocalUpstream
from tests.conftest import OTHER_TOWNSHIP, OTHER_VILLAGE, PG_URL, TOWNSHIP, VILLAGE, fresh_postgres
from village_agent import service as village

ID = "11010519491231002X"


@pytest.fixture
def district_db(request: pytest.FixtureRequest) -> str:
    """SQLite: these tests exercise the village and township, not the district's database,
    unless one asks for PostgreSQL (parametrized indirectly)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return ""
    return asyncio.run(fresh_postgres(PG_URL))


class EdgeSpy:
    """The network edge: passes calls to a LocalUpstream, records them, and can fail pushes."""

    def __init__(self, inner: LocalUpstream) -> None:
        self.inner = inner
        self.pushes: list[list[int]] = []  # the hop sequences of each push that reached the upstream
        self.acks: list[PushResult] = []
        self.fail_pushes: list[Exception] = []  # raised (in order) before reaching the upstream

    async def push(
        self,
        sender: str,
        stream: int,
        envelopes: Sequence[tuple[int, EventRecord]],
        chain: Links | None = None,
    ) -> PushResult:
        if self.fail_pushes:
            raise self.fail_pushes.pop(0)
        self.pushes.append([seq for seq, _ in envelopes])
        ack = await self.inner.push(sender, stream, envelopes, chain)
        self.acks.append(ack)
        return ack

    async def pull(self, node: str, after: int, after_event_id: str, limit: int, wait_ms: int) -> PullResult:
        return await self.inner.pull(node, after, after_event_id, limit, wait_ms)

    async def heartbeat(self, beat: Any) -> int:
        return await self.inner.heartbeat(beat)

    async def fetch_catalog(self, node: str, have_version: str) -> Any:
        return await self.inner.fetch_catalog(node, have_version)

    async def fetch_calendar(self, node: str, have_version: str) -> Any:
        return await self.inner.fetch_calendar(node, have_version)

    async def fetch_revocations(self, node: str, after: int) -> Any:
        return await self.inner.fetch_revocations(node, after)

    async def certify(self, node: str, subject: str, csr: bytes, standing: Standing = OWN) -> Any:
        return await self.inner.certify(node, subject, csr, standing)

    def data_pushes(self) -> list[list[int]]:
        """The pushes that carried events, leaving out empty probes for the upstream's mark."""
        return [seqs for seqs in self.pushes if seqs]

    def data_acks(self) -> list[PushResult]:
        """The acknowledgements of the pushes that carried events."""
        return [ack for seqs, ack in zip(self.pushes, self.acks, strict=True) if seqs]

    async def close(self) -> None:
        return None


def township_service(net) -> RelayService:
    return RelayService(net.township.engine, net.township.ledger)


def village_syncer(net) -> tuple[Syncer, EdgeSpy, LocalUpstream]:
    link = LocalUpstream(township_service(net))
    spy = EdgeSpy(link)
    return Syncer(net.village.engine, net.village.ledger, spy), spy, link


async def take_cases(node: Node, n: int = 1, item: str = "twp-pension-enroll") -> list[str]:
    request = Request(item, "张三", ID, materials=("居民身份证或户口簿",))
    checked = [village.check(node, request, {}) for _ in range(n)]
    return [t.case_id for t in await village.take(node, checked)]


async def outbox_records(node: Node) -> list[tuple[int, EventRecord]]:
    """The node's outbox as (hop seq, event), oldest first."""
    async with node.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox.c.seq, events)
                .join(events, events.c.event_id == outbox.c.event_id)
                .order_by(outbox.c.seq)
            )
        ).all()
    return node.ledger.queued(rows)


async def count(node: Node, table: Any, *where: Any) -> int:
    async with node.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar() or 0


async def event_ids(node: Node) -> list[str]:
    async with node.engine.connect() as conn:
        return list((await conn.execute(select(events.c.event_id).order_by(events.c.position))).scalars())


async def case_ids(node: Node) -> set[str]:
    async with node.engine.connect() as conn:
        return set((await conn.execute(select(cases.c.case_id))).scalars())


async def inbox_mark(node: Node, sender: str) -> tuple[int, int] | None:
    """(stream, applied_upto) the node keeps for a sender, or None."""
    async with node.engine.connect() as conn:
        row = (await conn.execute(select(inbox_peers).where(inbox_peers.c.sender == sender))).first()
    return None if row is None else (row.stream, row.applied_upto)


async def dead(node: Node) -> list[Any]:
    async with node.engine.connect() as conn:
        return (await conn.execute(select(dead_letters).order_by(dead_letters.c.id))).all()


async def queue_raw(node: Node, record: EventRecord) -> int:
    """Put an event the ledger would never make itself into the node's events and outbox
    (a sender with a newer or buggy version); returns its hop sequence."""
    async with node.engine.begin() as conn:
        await conn.execute(events.insert().values(**record.row(None)))
        seq = await take_range(conn, "hop_seq", 1)
        await conn.execute(outbox.insert().values(seq=seq, event_id=record.event_id, created_at=0))
    return seq


def forged(template: EventRecord, offset: int, **changes: Any) -> EventRecord:
    """A copy of an event with its own consistent event id and the given fields changed."""
    origin_seq = template.origin_seq + offset
    base = dataclasses.replace(
        template, origin_seq=origin_seq, event_id=f"{template.origin_node}:{origin_seq}"
    )
    return dataclasses.replace(base, **changes)


def with_payload(record: EventRecord, **changes: Any) -> EventRecord:
    payload = {**record.payload_dict(), **changes}
    return dataclasses.replace(record, payload=json.dumps(payload, ensure_ascii=False).encode())


# --- dedupe -------------------------------------------------------------------------------------


async def test_same_batch_twice_in_same_stream_is_applied_once(net):
    """A batch pushed again in the same stream is acknowledged as duplicates and applied once."""
    await take_cases(net.village, 3)
    batch = await outbox_records(net.village)
    service = township_service(net)
    first = await service.push(VILLAGE, 11, batch)
    again = await service.push(VILLAGE, 11, batch)
    assert (first.applied_upto, first.duplicates, first.rejected) == (3, 0, ())
    assert (again.applied_upto, again.duplicates, again.rejected) == (3, 3, ())
    assert sorted(await event_ids(net.township)) == sorted(r.event_id for _, r in batch)
    assert await count(net.township, cases) == 3
    assert await count(net.township, outbox) == 3  # relayed toward the district once, not twice


async def test_overlapping_batch_in_same_stream_applies_only_new_seqs(net):
    """In one stream, envelopes at or below the mark are skipped and only the new ones applied."""
    await take_cases(net.village, 3)
    batch = await outbox_records(net.village)
    service = township_service(net)
    await service.push(VILLAGE, 11, batch[:2])
    ack = await service.push(VILLAGE, 11, batch)
    assert (ack.applied_upto, ack.duplicates) == (3, 2)
    assert len(await event_ids(net.township)) == 3
    assert await inbox_mark(net.township, VILLAGE) == (11, 3)


async def test_same_events_under_new_stream_dedupe_by_event_id(net):
    """A sender restarted under a new stream resends old events: deduplicated by event id."""
    await take_cases(net.village, 3)
    batch = await outbox_records(net.village)
    service = township_service(net)
    await service.push(VILLAGE, 11, batch)
    ack = await service.push(VILLAGE, 22, batch)
    assert (ack.applied_upto, ack.duplicates, ack.rejected) == (3, 3, ())
    assert len(await event_ids(net.township)) == 3
    assert await count(net.township, outbox) == 3
    assert await inbox_mark(net.township, VILLAGE) == (22, 3)


async def test_an_applied_event_id_naming_another_case_is_a_duplicate(net):
    """An event id is the event's identity: one pushed again naming a case not here is a
    duplicate, not a new case whose insert fails the whole batch."""
    await take_cases(net.village, 1)
    batch = await outbox_records(net.village)
    service = township_service(net)
    await service.push(VILLAGE, 11, batch)
    renamed = dataclasses.replace(batch[0][1], case_id="not-a-case-here")
    ack = await service.push(VILLAGE, 22, [(1, renamed)])
    assert (ack.applied_upto, ack.duplicates, ack.rejected) == (1, 1, ())
    assert await count(net.township, cases) == 1


@pytest.mark.parametrize("district_db", ["sqlite", "postgresql"], indirect=True)
async def test_an_applied_event_id_among_new_cases_is_a_duplicate(net):
    """The ids of events of cases new here are not looked up, but one applied before (sent
    again naming another case) is still found: a duplicate; the batch's new cases are applied
    once each, with one audit row each, and nothing of the first attempt is left."""
    await take_cases(net.village, 3)
    batch = await outbox_records(net.village)
    district = RelayService(net.district.engine, net.district.ledger)
    await district.push(TOWNSHIP, 1, batch[:1])
    renamed = dataclasses.replace(batch[0][1], case_id="not-a-case-here")
    ack = await district.push(TOWNSHIP, 2, [(1, batch[1][1]), (2, renamed), (3, batch[2][1])])
    assert (ack.applied_upto, ack.duplicates, ack.rejected) == (3, 1, ())
    assert sorted(await event_ids(net.district)) == sorted(r.event_id for _, r in batch)
    assert await count(net.district, cases) == 3 and await count(net.district, audit) == 3


@pytest.mark.parametrize("well_formed", [True, False])
async def test_a_case_here_submitted_again_is_refused_and_its_events_behind_apply(net, well_formed):
    """A batch's submissions are taken as new cases without looking them up; a case that is
    here already, submitted again under a new id, is found all the same: the submission is
    refused (well formed or not) and the case's own event behind it in the batch applies."""
    syncer, _, _ = village_syncer(net)
    [case_id] = await take_cases(net.village)
    submission = (await outbox_records(net.village))[0][1]
    await syncer.sync(5)
    await village.command(net.village, case_id, CMD_COMPLAIN, {"text": "慢"})
    complaint = (await outbox_records(net.village))[-1][1]
    again = forged(submission, 1000, payload=submission.payload if well_formed else b"{not json")
    ack = await township_service(net).push(VILLAGE, 31, [(1, again), (2, complaint)])
    assert ack.applied_upto == 2 and [r.event_id for r in ack.rejected] == [again.event_id]
    applied = [e.type for e in await township_status_events(net, case_id)]
    assert applied == [CMD_COMPLAIN, "case.complaint_filed"]
    assert await count(net.township, cases) == 1
    assert [d.event_id for d in await dead(net.township)] == [again.event_id]


async def test_new_stream_reusing_seqs_applies_new_events(net):
    """New events a restored sender numbers from an older seq under a new stream are applied."""
    await take_cases(net.village, 4)
    batch = await outbox_records(net.village)
    service = township_service(net)
    await service.push(VILLAGE, 11, batch[:2])  # seqs 1, 2
    renumbered = [(2, batch[2][1]), (3, batch[3][1])]  # new events, seq 2 reused
    ack = await service.push(VILLAGE, 22, renumbered)
    assert (ack.applied_upto, ack.duplicates, ack.rejected) == (3, 0, ())
    assert len(await event_ids(net.township)) == 4
    assert await inbox_mark(net.township, VILLAGE) == (22, 3)


async def test_syncer_resending_after_lost_ack_applies_once(net):
    """A Syncer that lost its acknowledgement (new process, new stream) resends; nothing doubles."""
    syncer, _, link = village_syncer(net)
    await take_cases(net.village, 3)
    await syncer.sync(5)
    async with net.village.engine.begin() as conn:  # the ack was never stored
        await write_value(conn, "acked_upto", 0)
    spy = EdgeSpy(link)
    report = await Syncer(net.village.engine, net.village.ledger, spy).sync(5)
    assert report.backlog == 0
    assert spy.data_pushes() == [[1, 2, 3]] and spy.data_acks()[0].duplicates == 3
    assert len(await event_ids(net.township)) == 3 and await count(net.township, cases) == 3


# --- gaps and rewinds ---------------------------------------------------------------------------


async def test_push_past_mark_plus_one_is_answered_with_mark_and_applies_nothing(net):
    """A batch starting past the receiver's mark + 1 gets the mark back and changes nothing."""
    await take_cases(net.village, 4)
    batch = await outbox_records(net.village)
    service = township_service(net)
    await service.push(VILLAGE, 11, batch[:1])
    for stream in (11, 22):  # a gap in any stream
        ack = await service.push(VILLAGE, stream, batch[2:])
        assert (ack.applied_upto, ack.rejected, ack.duplicates) == (1, (), 0)
    assert await event_ids(net.township) == [batch[0][1].event_id]
    assert await inbox_mark(net.township, VILLAGE) == (11, 1)


async def test_first_push_from_unknown_sender_must_start_at_one(net):
    """A sender the receiver has never heard from is answered with mark 0 unless it starts at 1."""
    await take_cases(net.village, 2)
    batch = await outbox_records(net.village)
    ack = await township_service(net).push(VILLAGE, 11, batch[1:])
    assert ack.applied_upto == 0
    assert await count(net.township, events) == 0
    assert await inbox_mark(net.township, VILLAGE) is None


async def test_syncer_rewinds_and_resends_when_receiver_lost_events(net):
    """When the receiver's mark is behind, the Syncer rewinds to it and every event lands once."""
    syncer, spy, _ = village_syncer(net)
    await take_cases(net.village, 3)
    await syncer.sync(5)
    lost = (await outbox_records(net.village))[2][1]
    async with net.township.engine.begin() as conn:  # the township restored to before seq 3
        await conn.execute(delete(events).where(events.c.case_id == lost.case_id))
        await conn.execute(delete(audit).where(audit.c.event_id == lost.event_id))
        await conn.execute(delete(cases).where(cases.c.case_id == lost.case_id))
        await conn.execute(delete(outbox).where(outbox.c.event_id == lost.event_id))
        await conn.execute(update(inbox_peers).values(applied_upto=2))
    await take_cases(net.village, 2)
    spy.pushes.clear()
    spy.acks.clear()
    report = await syncer.sync(5)
    assert spy.data_pushes() == [[4, 5], [3, 4, 5]]  # gap answered with mark 2, then rewound
    assert [ack.applied_upto for ack in spy.data_acks()] == [2, 5]
    assert report.backlog == 0
    expected = [r.event_id for _, r in await outbox_records(net.village)]
    assert sorted(await event_ids(net.township)) == sorted(expected)
    assert await inbox_mark(net.township, VILLAGE) == (syncer.stream, 5)


# --- rejections ---------------------------------------------------------------------------------


async def test_rejected_events_are_dead_lettered_on_both_sides_and_do_not_block(net):
    """Unknown-type and foreign-case events are rejected, dead-lettered both sides; the rest apply."""
    syncer, spy, _ = village_syncer(net)
    [first] = await take_cases(net.village)
    template = (await outbox_records(net.village))[0][1]
    unknown = forged(template, 1, type="case.teleported", case_id=first)
    foreign = forged(
        template, 2, case_id="foreign-case", village_code=OTHER_VILLAGE, township_code=OTHER_TOWNSHIP
    )
    assert await queue_raw(net.village, unknown) == 2
    assert await queue_raw(net.village, foreign) == 3
    [last] = await take_cases(net.village)
    report = await syncer.sync(5)
    assert (report.pushed, report.rejected, report.backlog) == (4, 2, 0)
    assert spy.data_pushes() == [[1, 2, 3, 4]]
    assert [(r.seq, r.event_id) for r in spy.data_acks()[0].rejected] == [
        (2, unknown.event_id),
        (3, foreign.event_id),
    ]
    assert await case_ids(net.township) == {first, last}
    assert unknown.event_id not in await event_ids(net.township)
    assert foreign.event_id not in await event_ids(net.township)
    assert await count(net.township, outbox) == 2  # only the applied events travel on
    received = [(d.direction, d.peer, d.seq, d.event_id, d.type) for d in await dead(net.township)]
    assert received == [
        ("in", VILLAGE, 2, unknown.event_id, "case.teleported"),
        ("in", VILLAGE, 3, foreign.event_id, SUBMITTED),
    ]
    sent = [(d.direction, d.peer, d.seq, d.event_id) for d in await dead(net.village)]
    assert sent == [("out", TOWNSHIP, 2, unknown.event_id), ("out", TOWNSHIP, 3, foreign.event_id)]
    for side in (net.township, net.village):
        reasons = [d.reason for d in await dead(side)]
        assert "unknown event type" in reasons[0]
        assert OTHER_VILLAGE in reasons[1] and "may not send" in reasons[1]


async def test_event_for_a_case_the_receiver_does_not_know_is_rejected(net):
    """A status event for a case the receiver never saw is rejected, not applied and not fatal."""
    await take_cases(net.village)
    template = (await outbox_records(net.village))[0][1]
    orphan = forged(template, 1, type="cmd.withdraw", case_id="never-submitted", payload=b"{}")
    ack = await township_service(net).push(VILLAGE, 11, [(1, orphan), (2, template)])
    assert ack.applied_upto == 2
    assert [(r.seq, r.event_id) for r in ack.rejected] == [(1, orphan.event_id)]
    assert "unknown here" in ack.rejected[0].reason
    assert await event_ids(net.township) == [template.event_id]


async def test_submission_whose_payload_names_another_township_is_rejected(net):
    """A case.submitted whose payload claims another township's village is rejected, not applied."""
    await take_cases(net.village)
    honest = (await outbox_records(net.village))[0][1]
    smuggled = with_payload(
        forged(honest, 1, case_id="smuggled-case"), village_code=OTHER_VILLAGE, township_code=OTHER_TOWNSHIP
    )
    ack = await township_service(net).push(VILLAGE, 11, [(1, smuggled), (2, honest)])
    assert ack.applied_upto == 2
    assert [r.event_id for r in ack.rejected] == [smuggled.event_id]
    async with net.township.engine.connect() as conn:
        owners = set((await conn.execute(select(cases.c.township_code, cases.c.owner))).all())
    assert owners == {(TOWNSHIP, TOWNSHIP)}


@pytest.mark.parametrize(
    "change",
    [{"item_code": "item-from-a-newer-catalog"}, {"applicant": "not an object"}],
    ids=["item-unknown-to-township", "applicant-not-object"],
)
async def test_submission_the_receiver_cannot_project_is_rejected_not_fatal(net, change):
    """A case.submitted the receiver cannot turn into a case is rejected; the batch still applies."""
    [kept] = await take_cases(net.village)
    honest = (await outbox_records(net.village))[0][1]
    poison = with_payload(forged(honest, 1, case_id="poison-case"), **change)
    ack = await township_service(net).push(VILLAGE, 11, [(1, poison), (2, honest)])
    assert ack.applied_upto == 2
    assert [r.event_id for r in ack.rejected] == [poison.event_id]
    assert await case_ids(net.township) == {kept}


def as_village(template: EventRecord, code: str, case_id: str) -> EventRecord:
    """A village's submission passed off as another village's (``code``), for case ``case_id``."""
    moved = dataclasses.replace(
        template,
        case_id=case_id,
        origin_node=code,
        event_id=f"{code}:{template.origin_seq}",
        village_code=code,
        township_code=code[:9],
    )
    return with_payload(moved, village_code=code, township_code=code[:9])


async def case_row(node: Node, case_id: str) -> Any:
    async with node.engine.connect() as conn:
        return (await conn.execute(select(cases).where(cases.c.case_id == case_id))).one()


async def test_a_village_cannot_command_or_resubmit_a_sibling_villages_case(net):
    """A command, or a new submission, naming a case of another village of the same township is
    refused as out of reach (dead-lettered, logged as security.refused, never applied) and never
    blocks the batch; the sibling's case stays as it was (review: it used to be withdrawn)."""
    [own] = await take_cases(net.village)
    honest = (await outbox_records(net.village))[0][1]
    sibling = TOWNSHIP + "006"
    service = township_service(net)
    theirs = as_village(honest, sibling, "sibling-case")
    assert not (await service.push(sibling, 1, [(1, theirs)])).rejected
    withdraw = forged(honest, 1, type=CMD_WITHDRAW, case_id=theirs.case_id, payload=b'{"reason": "x"}')
    resubmit = forged(honest, 2, case_id=theirs.case_id)
    with capture_logs() as logs:
        ack = await service.push(VILLAGE, 1, [(1, withdraw), (2, resubmit), (3, honest)])
    assert ack.applied_upto == 3
    assert [r.event_id for r in ack.rejected] == [withdraw.event_id, resubmit.event_id]
    assert all("belongs to village" in r.reason for r in ack.rejected)
    [refused] = [e for e in logs if e["event"] == "security.refused"]
    assert refused["sender"] == VILLAGE and refused["events_outside_jurisdiction"] == 2
    row = await case_row(net.township, theirs.case_id)
    assert (row.status, row.village_code) == ("submitted", sibling)
    assert await case_ids(net.township) == {own, theirs.case_id}
    assert await count(net.township, events, events.c.case_id == theirs.case_id) == 1
    assert [d.event_id for d in await dead(net.township)] == [withdraw.event_id, resubmit.event_id]


async def test_a_township_cannot_command_another_townships_case_at_the_district(net):
    """At the district, a township's command naming another township's case is refused as out
    of reach, and nothing of it is applied."""
    await take_cases(net.village)
    honest = (await outbox_records(net.village))[0][1]
    district = RelayService(net.district.engine, net.district.ledger)
    theirs = as_village(honest, OTHER_VILLAGE, "other-township-case")
    assert not (await district.push(OTHER_TOWNSHIP, 1, [(1, theirs)])).rejected
    complain = forged(honest, 1, type=CMD_COMPLAIN, case_id=theirs.case_id, payload=b'{"text": "x"}')
    with capture_logs() as logs:
        ack = await district.push(TOWNSHIP, 1, [(1, complain), (2, honest)])
    assert ack.applied_upto == 2 and [r.event_id for r in ack.rejected] == [complain.event_id]
    assert any(e["event"] == "security.refused" and e["sender"] == TOWNSHIP for e in logs)
    assert await count(net.district, events, events.c.case_id == theirs.case_id) == 1
    assert (await case_row(net.district, theirs.case_id)).village_code == OTHER_VILLAGE


@pytest.mark.parametrize("district_db", ["sqlite", "postgresql"], indirect=True)
async def test_pushes_from_several_senders_apply_a_few_at_a_time_in_a_process(net):
    """Concurrent pushes wait for each other in the process, not on the database's locks with
    a pooled connection each (30 townships pushing at once held the hub's pool, which its pulls
    and certificate checks need too): one at a time on SQLite, two on PostgreSQL, where one
    works out its cases while the other writes its events."""
    await take_cases(net.village, 3)
    ours = [r for _, r in await outbox_records(net.village)]
    theirs = [as_village(r, OTHER_VILLAGE, f"other-case-{n}") for n, r in enumerate(ours)]
    district = RelayService(net.district.engine, net.district.ledger)
    held, most = 0, 0

    def out(*_: Any) -> None:
        nonlocal held, most
        held += 1
        most = max(most, held)

    def back(*_: Any) -> None:
        nonlocal held
        held -= 1

    pool = net.district.engine.sync_engine.pool
    event.listen(pool, "checkout", out)
    event.listen(pool, "checkin", back)
    acks = await asyncio.gather(
        district.push(TOWNSHIP, 1, list(enumerate(ours, 1))),
        district.push(OTHER_TOWNSHIP, 1, list(enumerate(theirs, 1))),
    )
    at_once = APPLYING_AT_ONCE if net.district.engine.dialect.name == "postgresql" else 1
    assert [(a.applied_upto, a.rejected) for a in acks] == [(3, ()), (3, ())] and most == at_once


async def test_an_event_over_the_size_limit_is_refused_and_the_batch_applies(net):
    """An event whose payload exceeds MAX_EVENT_BYTES is refused (dead-lettered, its payload
    stored nowhere) and the events behind it apply (review: a 12 MB complaint was taken)."""
    syncer, _, _ = village_syncer(net)
    [case_id] = await take_cases(net.village)
    await syncer.sync(5)
    complaint = (await outbox_records(net.village))[0][1]
    padded = json.dumps({"text": "慢", "padding": "x" * MAX_EVENT_BYTES}).encode()
    huge = forged(complaint, 1, type=CMD_COMPLAIN, case_id=case_id, payload=padded)
    small = forged(complaint, 2, type=CMD_COMPLAIN, case_id=case_id, payload=b'{"text": "x"}')
    ack = await township_service(net).push(VILLAGE, 41, [(1, huge), (2, small)])
    assert ack.applied_upto == 2 and [r.event_id for r in ack.rejected] == [huge.event_id]
    assert f"exceeds the limit of {MAX_EVENT_BYTES}" in ack.rejected[0].reason
    assert huge.event_id not in await event_ids(net.township)
    assert small.event_id in await event_ids(net.township)


async def test_too_long_text_is_refused_where_it_is_typed_and_nothing_is_written(net):
    """A complaint typed at the village, or a reason typed by staff, longer than MAX_TEXT is
    refused with a one-line error before anything is written."""
    syncer, _, _ = village_syncer(net)
    [case_id] = await take_cases(net.village)
    await syncer.sync(5)
    before = await count(net.village, events)
    with pytest.raises(IllegalTransition, match=f"the text is longer than {MAX_TEXT} characters"):
        await village.command(net.village, case_id, CMD_COMPLAIN, {"text": "慢" * (MAX_TEXT + 1)})
    assert await count(net.village, events) == before
    [outcome] = await act(net.township, [case_id], REFUSED, {"reason": "x" * (MAX_TEXT + 1)})
    assert not outcome.ok and outcome.code == "too_long" and "\n" not in outcome.error
    assert await township_status_events(net, case_id) == []


async def test_a_pull_stops_adding_events_once_their_bytes_reach_the_limit(net, monkeypatch):
    """A pull's reply holds events up to MAX_PULL_BYTES of payload (one at least), so a feed of
    large events keeps moving in replies gRPC can carry; the next pull takes the rest."""
    monkeypatch.setattr(relay_service, "MAX_PULL_BYTES", 10_000)
    syncer, _, _ = village_syncer(net)
    [case_id] = await take_cases(net.village)
    await syncer.sync(5)
    for _ in range(5):
        await village.command(net.village, case_id, CMD_COMPLAIN, {"text": "慢" * MAX_TEXT})  # ~6 KB
    await syncer.sync(5)
    service = township_service(net)
    pages = []
    after, event_id = 0, ""
    while page := (await service.pull(VILLAGE, after, event_id, 1000, 0)).events:
        pages.append(len(page))
        after, event_id = page[-1][0], page[-1][1].event_id
    assert pages == [2, 2, 1], pages  # five answers of ~6 KB each: two reach 10,000 bytes


async def test_a_push_stops_adding_events_once_their_bytes_reach_the_limit(net, monkeypatch):
    """A batch pushed holds events up to MAX_PUSH_BYTES of payload (one at least), so a backlog
    of large events goes up in messages gRPC can carry."""
    monkeypatch.setattr(relay_sync, "MAX_PUSH_BYTES", 10_000)
    syncer, spy, _ = village_syncer(net)
    [case_id] = await take_cases(net.village)
    await syncer.sync(5)
    for _ in range(5):
        await village.command(net.village, case_id, CMD_COMPLAIN, {"text": "慢" * MAX_TEXT})
    assert (await syncer.sync(5)).backlog == 0
    assert spy.data_pushes() == [[1], [2, 3], [4, 5], [6]]


# --- retry policy -------------------------------------------------------------------------------


def _attempt(number: int, elapsed: float) -> RetryCallState:
    state = RetryCallState(AsyncRetrying(), None, (), {})
    state.attempt_number = number
    state.start_time = 0.0  # exactly elapsed later: the clock's value plus 5.0, minus it, was 4.999...
    state.outcome_timestamp = elapsed
    return state


def test_backoff_grows_exponentially_with_bounded_jitter_and_cap():
    """Retry waits double from backoff_initial with bounded jitter and never exceed backoff_max."""
    policy = RelayPolicy(backoff_initial_seconds=0.2, backoff_max_seconds=5.0)
    wait = policy.tenacity_kwargs()["wait"]
    jitter = 0.2 * 5
    for number in range(1, 30):
        floor = min(0.2 * 2 ** (number - 1), 5.0)
        samples = [wait(_attempt(number, 0)) for _ in range(50)]
        assert all(floor <= s <= min(floor + jitter, 5.0) for s in samples), (number, samples)
    assert wait(_attempt(40, 0)) == 5.0


def test_give_up_budget_is_honoured_and_default_never_gives_up():
    """Retries stop once the give-up budget is spent, re-raising; with no budget they never stop."""
    bounded = RelayPolicy().tenacity_kwargs(5.0)
    assert bounded["reraise"] is True
    assert not bounded["stop"](_attempt(3, 4.9))
    assert bounded["stop"](_attempt(3, 5.0))
    unbounded = RelayPolicy().tenacity_kwargs(None)
    assert not unbounded["stop"](_attempt(10_000, 10 * 365 * 86_400.0))


async def test_transient_errors_are_retried_with_backoff_then_succeed():
    """A call failing transiently twice is retried after growing waits and then succeeds."""
    policy = RelayPolicy(backoff_initial_seconds=0.02, backoff_max_seconds=0.2)
    calls: list[float] = []

    async def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise TransientError("upstream is down")
        return "ok"

    result = None
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(TransientError), **policy.tenacity_kwargs(5)
    ):
        with attempt:
            result = await flaky()
    assert result == "ok" and len(calls) == 3
    assert calls[1] - calls[0] >= 0.02 and calls[2] - calls[1] >= 0.04


async def test_budget_exhausted_reraises_the_transient_error_itself():
    """When the budget runs out the caller gets the TransientError, not tenacity's RetryError."""
    policy = RelayPolicy(backoff_initial_seconds=0.01, backoff_max_seconds=0.05)
    calls = 0
    with pytest.raises(TransientError, match="still down"):
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(TransientError), **policy.tenacity_kwargs(0.2)
        ):
            with attempt:
                calls += 1
                raise TransientError("still down")
    assert calls >= 3


async def test_sync_retries_transient_push_failures_and_delivers_once(net):
    """Syncer.sync retries a push that failed transiently and delivers each event once."""
    syncer, spy, _ = village_syncer(net)
    await take_cases(net.village, 2)
    spy.fail_pushes = [TransientError("link flapped"), TransientError("link flapped")]
    report = await syncer.sync(5)
    assert (report.pushed, report.backlog) == (2, 0)
    assert spy.fail_pushes == [] and spy.data_pushes() == [[1, 2]]
    assert len(await event_ids(net.township)) == 2


async def test_sync_does_not_retry_a_permanent_error(net):
    """A permanent refusal is raised at once, not retried, and leaves the backlog queued."""
    syncer, spy, _ = village_syncer(net)
    await take_cases(net.village, 2)
    spy.fail_pushes = [PermanentError("not allowed"), PermanentError("not allowed")]
    with pytest.raises(PermanentError):
        await syncer.sync(5)
    assert len(spy.fail_pushes) == 1  # exactly one attempt was made
    async with net.village.engine.connect() as conn:
        assert await backlog(conn) == 2


async def test_sync_with_upstream_down_gives_up_after_budget_and_keeps_backlog(net):
    """With the upstream down, sync raises TransientError after its budget and keeps the backlog."""
    syncer, _, link = village_syncer(net)
    await take_cases(net.village, 3)
    link.down = True
    budget = 0.3
    started = time.monotonic()
    with pytest.raises(TransientError, match="down"):
        await syncer.sync(budget)
    elapsed = time.monotonic() - started
    assert budget <= elapsed < budget + 2.0
    async with net.village.engine.connect() as conn:
        assert await backlog(conn) == 3
        assert await read_value(conn, "acked_upto") == 0
    assert await count(net.village, outbox) == 3
    assert await count(net.township, events) == 0
    link.down = False
    assert (await syncer.sync(5)).pushed == 3


# --- the pull cursor ----------------------------------------------------------------------------


async def pull_cursor(node: Node) -> tuple[int, str]:
    async with node.engine.connect() as conn:
        return await read_value(conn, "pull_cursor"), await read_text(conn, "pull_cursor")


async def event_position(node: Node, event_id: str) -> int:
    async with node.engine.connect() as conn:
        return (await conn.execute(select(events.c.position).where(events.c.event_id == event_id))).scalar()


async def decided_case(net) -> tuple[Syncer, EdgeSpy, str]:
    """A case taken at the village, accepted and approved at the township, pulled back down."""
    syncer, spy, _ = village_syncer(net)
    [case_id] = await take_cases(net.village)
    await syncer.sync(5)
    assert (await act(net.township, [case_id], ACCEPTED, {}))[0].ok
    assert (await act(net.township, [case_id], DECIDED, {"approved": True, "reason": "ok"}))[0].ok
    assert (await syncer.sync(5)).pulled == 2
    return syncer, spy, case_id


async def township_status_events(net, case_id: str) -> list[Any]:
    async with net.township.engine.connect() as conn:
        return (
            await conn.execute(
                select(events.c.position, events.c.event_id, events.c.type, events.c.payload)
                .where(events.c.case_id == case_id, events.c.type != SUBMITTED)
                .order_by(events.c.position)
            )
        ).all()


async def test_pull_cursor_records_position_and_event_id_of_last_applied(net):
    """After a pull the cursor holds the last applied position and event id; re-pulls bring nothing."""
    syncer, _, case_id = await decided_case(net)
    [_, decided] = await township_status_events(net, case_id)
    assert await pull_cursor(net.village) == (decided.position, decided.event_id)
    assert await syncer.pull_once() == (0, 0)
    assert (await syncer.sync(5)).pulled == 0


async def restore_township_without(net, event_id: str) -> None:
    """The township restored from a backup taken before ``event_id``: the event is gone, and so
    is the case's state it caused."""
    async with net.township.engine.begin() as conn:
        await conn.execute(delete(events).where(events.c.event_id == event_id))
        await conn.execute(delete(outbox).where(outbox.c.event_id == event_id))
        await conn.execute(update(cases).values(status="accepted"))


async def test_pull_reset_when_feed_lost_cursor_event_restarts_from_zero_without_duplicates(net):
    """A feed that lost the cursor's event resets the cursor and re-pulls from 0, duplicating nothing."""
    syncer, _, case_id = await decided_case(net)
    accepted, decided = await township_status_events(net, case_id)
    before = await event_ids(net.village)
    await restore_township_without(net, decided.event_id)
    assert await syncer.pull_once() == (1, 0)  # reset, then the accepted event again, known by its id
    assert await pull_cursor(net.village) == (accepted.position, accepted.event_id)
    assert await syncer.pull_once() == (0, 0)
    after = await event_ids(net.village)
    assert after == before and len(set(after)) == len(after)
    assert await count(net.village, dead_letters) == 0


async def test_pull_reset_when_position_now_holds_another_event(net):
    """A cursor whose position holds a different event id in the upstream's feed is reset too."""
    syncer, _, case_id = await decided_case(net)
    [_, decided] = await township_status_events(net, case_id)
    async with net.township.engine.begin() as conn:  # the restored feed reused the position
        await conn.execute(
            update(events).where(events.c.position == decided.position).values(event_id=f"{TOWNSHIP}:1")
        )
    assert await syncer.pull_once() == (2, 1)  # reset, re-pulled from 0; the renamed event is refused
    assert await pull_cursor(net.village) == (decided.position, f"{TOWNSHIP}:1")
    assert await syncer.pull_once() == (0, 0)


async def test_one_sync_after_a_reset_brings_the_village_up_to_date(net):
    """A single sync that hits a feed reset still pulls everything now addressed to the village."""
    syncer, _, case_id = await decided_case(net)
    _, decided = await township_status_events(net, case_id)
    await restore_township_without(net, decided.event_id)
    [second] = await take_cases(net.village)
    assert await syncer.push_once() == (1, 0)
    assert (await act(net.township, [second], ACCEPTED, {}))[0].ok  # news after the restore
    await syncer.sync(5)
    async with net.village.engine.connect() as conn:
        status = (await conn.execute(select(cases.c.status).where(cases.c.case_id == second))).scalar()
    assert status == "accepted"


# --- acknowledged rows kept for replay ----------------------------------------------------------


async def restore_township_to_empty(net) -> None:
    async with net.township.engine.begin() as conn:
        for table in (inbox_peers, events, cases, outbox, audit, audit_peers):
            await conn.execute(delete(table))


async def test_acked_rows_are_kept_and_replayed_to_an_upstream_restored_empty(net):
    """Acked outbox rows are kept and re-sent, once each, to an upstream restored empty."""
    syncer, spy, _ = village_syncer(net)
    await take_cases(net.village, 3)
    assert (await syncer.sync(5)).backlog == 0
    assert await count(net.village, outbox) == 3  # acknowledged, still kept
    await restore_township_to_empty(net)
    await take_cases(net.village)  # the village keeps working
    spy.pushes.clear()
    report = await syncer.sync(5)
    assert spy.data_pushes() == [[4], [1, 2, 3, 4]]  # gap answered with mark 0, then replayed
    assert report.backlog == 0
    expected = sorted(r.event_id for _, r in await outbox_records(net.village))
    assert sorted(await event_ids(net.township)) == expected and len(expected) == 4
    assert await count(net.township, cases) == 4
    assert await inbox_mark(net.township, VILLAGE) == (syncer.stream, 4)


async def test_acked_rows_older_than_retention_are_pruned_recent_ones_kept(net):
    """Acked outbox rows older than the retention period are pruned; recent acked rows are kept."""
    syncer, _, _ = village_syncer(net)
    await take_cases(net.village, 2)
    await syncer.sync(5)
    async with net.village.engine.begin() as conn:  # the first two rows are now ancient
        await conn.execute(update(outbox).values(created_at=0))
    await take_cases(net.village)
    await syncer.sync(5)
    async with net.village.engine.connect() as conn:  # pruning runs once per PRUNE_SECONDS
        assert list((await conn.execute(select(outbox.c.seq))).scalars()) == [1, 2, 3]
    later, _, _ = village_syncer(net)  # a forwarder started later (or PRUNE_SECONDS on)
    await take_cases(net.village)
    await later.sync(5)
    async with net.village.engine.connect() as conn:
        assert list((await conn.execute(select(outbox.c.seq))).scalars()) == [3, 4]
    assert len(await event_ids(net.township)) == 4


async def test_restored_upstream_is_replayed_even_without_new_events(net):
    """A sync after the upstream was restored empty re-sends everything, even with no new event."""
    syncer, spy, _ = village_syncer(net)
    await take_cases(net.village, 3)
    await syncer.sync(5)
    await restore_township_to_empty(net)
    spy.pushes.clear()
    spy.acks.clear()
    report = await syncer.sync(5)
    assert spy.pushes == [[], [1, 2, 3], []]  # a probe learns mark 0, the replay, a closing probe
    assert [ack.applied_upto for ack in spy.acks] == [0, 3, 3]
    assert (report.pushed, report.backlog) == (3, 0)
    assert await count(net.township, cases) == 3


# --- guards found in review ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "payload"),
    [
        ({"catalog_version": "v" * 100}, {}),
        ({}, {"decide_level": "district"}),
        ({}, {"applicant": {"name": "张三", "id_number": "110105194912310021"}}),
        ({}, {"fields": {"note": "a\u0000b"}}),
        ({}, {"mandate": None}),
    ],
    ids=["long-catalog-version", "wrong-decide-level", "bad-id-number", "nul-in-payload", "no-mandate"],
)
async def test_submission_a_stricter_upstream_would_refuse_is_rejected_here(net, fields, payload):
    """What the district's PostgreSQL or rules would refuse is rejected at the township already."""
    [kept] = await take_cases(net.village)
    honest = (await outbox_records(net.village))[0][1]
    poison = with_payload(forged(honest, 1, case_id="poison-case"), **payload)
    poison = dataclasses.replace(poison, **fields)
    ack = await township_service(net).push(VILLAGE, 12, [(1, poison), (2, honest)])
    assert ack.applied_upto == 2 and [r.event_id for r in ack.rejected] == [poison.event_id]
    assert await case_ids(net.township) == {kept}


async def test_deeply_nested_payload_and_reused_case_id_are_rejected_not_fatal(net):
    """A payload nested past the JSON parser's limit, or a second submission of an existing case,
    is rejected; the batch behind it still applies."""
    taken = await take_cases(net.village, 2)
    records = [record for _, record in await outbox_records(net.village)]
    nested = dataclasses.replace(forged(records[0], 5, case_id="nested"), payload=b"[" * 100_000)
    again = forged(records[0], 6)  # the first case once more, under a new event id
    batch = [(1, records[0]), (2, nested), (3, again), (4, records[1])]
    ack = await township_service(net).push(VILLAGE, 13, batch)
    assert ack.applied_upto == 4
    assert [r.event_id for r in ack.rejected] == [nested.event_id, again.event_id]
    assert await case_ids(net.township) == set(taken)


async def test_event_rejected_once_is_not_judged_again_under_a_new_stream(net):
    """A refused event sent again by a restarted sender counts as a repeat, not a new refusal."""
    [_] = await take_cases(net.village)
    honest = (await outbox_records(net.village))[0][1]
    poison = with_payload(forged(honest, 1, case_id="poison"), applicant="x")
    service = township_service(net)
    await service.push(VILLAGE, 21, [(1, poison)])
    again = await service.push(VILLAGE, 22, [(1, poison)])
    assert (again.rejected, again.duplicates) == ((), 1)
    assert len(await dead(net.township)) == 1


async def test_malformed_supplement_is_refused_by_the_owner_not_fatal(net):
    """A supplement whose materials are not a list is answered with a refusal, not a failed push."""
    syncer, _, _ = village_syncer(net)
    [case_id] = await take_cases(net.village)
    await syncer.sync(5)
    await act(net.township, [case_id], CORRECTION_REQUESTED, {"missing": ["照片"]})
    await village.command(net.village, case_id, CMD_SUPPLEMENT, {"materials": "nope"})
    assert (await syncer.sync(5)).backlog == 0
    types = [e.type for e in await township_status_events(net, case_id)]
    assert types[-1] == "case.command_refused"


async def test_forwarder_survives_an_unexpected_error_and_delivers_after(net):
    """An unexpected failure (a locked database, say) does not end the forwarding loop."""
    syncer, spy, _ = village_syncer(net)
    spy.fail_pushes.append(RuntimeError("database is locked"))
    await take_cases(net.village, 2)
    task = asyncio.create_task(syncer.forward_forever())
    try:
        for _ in range(100):
            if len(await case_ids(net.township)) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert (len(await case_ids(net.township)) == 2 and not task.done()) or task.cancelled()


async def test_hub_reads_by_id_keep_the_index_as_its_tables_grow():
    """PostgreSQL caches a generic plan for a statement prepared on a connection after five
    runs; made while a new hub's tables were nearly empty it was a sequential scan, kept as
    they grew (the duplicate check took up to a second a batch at 100,000 events). The hub's
    connections plan every execution."""
    engine = open_engine(await fresh_postgres(PG_URL))
    try:
        await create_schema(engine)
        async with engine.connect() as conn:
            run = conn.exec_driver_sql
            await run("PREPARE known(varchar[]) AS SELECT event_id FROM events WHERE event_id = ANY($1)")
            for _ in range(6):
                await run("EXECUTE known(ARRAY['500117001005:1'])")
            await run(
                "INSERT INTO events (event_id, case_id, origin_node, origin_seq, type, payload,"
                " recorded_at, catalog_version, village_code, township_code)"
                " SELECT '500117001005:' || n, 'c' || n, '500117001005', n, 'case.submitted', '',"
                " 0, 'v1', '500117001005', '500117001' FROM generate_series(1, 20000) AS n"
            )
            plan = "\n".join((await run("EXPLAIN EXECUTE known(ARRAY['500117001005:1'])")).scalars())
    finally:
        await engine.dispose()
    assert "Seq Scan" not in plan, plan


async def test_a_servers_per_call_reads_do_not_wait_for_the_write_lock(net):
    """The certificate check and the feed read the last commit while another connection holds
    SQLite's write lock (a push being applied, a staff command in another process), instead of
    queueing behind it for every call."""
    holder = sqlite3.connect(net.township.engine.url.database or "", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        service = township_service(net)
        await asyncio.wait_for(service.check_certificate(VILLAGE, 0), 2)
        result = await asyncio.wait_for(service.pull(VILLAGE, 0, "", 10, 0), 2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (result.events, result.reset) == ((), False)


async def test_the_forwarder_reads_while_another_connection_writes(net):
    """The forwarder's reads (its outbox and audit rows, its heartbeat's figures) do not take
    SQLite's write lock: a batch goes out and a heartbeat is made while another connection (an
    intake, a pulled page being applied) holds it; only recording the acknowledgement waits."""
    await take_cases(net.village, 2)
    syncer, spy, _ = village_syncer(net)
    holder = sqlite3.connect(net.village.engine.url.database or "", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        beat = await asyncio.wait_for(syncer.heartbeat(), 2)
        pushing = asyncio.create_task(syncer.push_once())
        for _ in range(200):
            if spy.data_pushes():
                break
            await asyncio.sleep(0.01)
        sent, waiting = spy.data_pushes(), not pushing.done()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (sent, waiting, beat.backlog) == ([[1, 2]], True, 2)
    assert await asyncio.wait_for(pushing, 5) == (2, 0)


async def test_idle_forwarder_reads_its_outbox_only_after_a_commit(net):
    """Standing by, the forwarder looks at the database's commit counter, not its outbox (a
    township's idle reads took a core among 30 of them); a request taken by another process,
    as `village-agent intake` beside `run`, is pushed at the next look."""
    syncer, _, _ = village_syncer(net)
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "FROM outbox" in statement:
            reads.append(statement)

    event.listen(net.village.engine.sync_engine, "before_cursor_execute", count)
    task = asyncio.create_task(syncer.forward_forever())
    try:
        await asyncio.sleep(0.5)  # 50 polls at the tests' 0.01 s
        idle = len(reads)
        async with open_node(net.village.home, net.village.config) as other:  # as another process
            await take_cases(other)
        for _ in range(100):
            if await case_ids(net.township):
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert idle <= 2 and len(await case_ids(net.township)) == 1


async def test_probe_answer_never_acknowledges_rows_it_did_not_carry(net):
    """A restored sender's new rows stay queued even if the upstream's old mark is higher."""
    syncer, _, _ = village_syncer(net)
    await take_cases(net.village, 3)
    await syncer.sync(5)
    async with net.village.engine.begin() as conn:  # as if restored from before those three
        await conn.execute(delete(outbox))
        await write_value(conn, "acked_upto", 0)
        await write_value(conn, "hop_seq", 0)
    fresh = Syncer(net.village.engine, net.village.ledger, syncer.upstream)
    await fresh.push_once(probe=True)  # the township answers its old mark, 3
    await take_cases(net.village, 2)
    report = await fresh.sync(5)
    assert (report.backlog, len(await case_ids(net.township))) == (0, 5)


async def test_command_that_cannot_be_answered_is_refused_and_the_link_keeps_flowing(net):
    """A complaint whose text could not be written back out (a lone surrogate) is refused as
    it arrives, not applied; the events behind it apply (review finding: answering it used to
    raise and wedge the link)."""
    syncer, _, _ = village_syncer(net)
    [case_id, other] = await take_cases(net.village, 2)
    await syncer.sync(5)
    await village.command(net.village, case_id, CMD_COMPLAIN, {"text": "慢"})
    honest = (await outbox_records(net.village))[-1][1]  # the complaint, not yet pushed
    poison = dataclasses.replace(forged(honest, 1), payload=rb'{"text": "\ud800"}')
    behind = forged(honest, 2, case_id=other)
    ack = await township_service(net).push(VILLAGE, 31, [(1, poison), (2, behind)])
    assert ack.applied_upto == 2 and [r.seq for r in ack.rejected] == [1]
    assert "surrogate" in ack.rejected[0].reason
    assert "case.complaint_filed" not in [e.type for e in await township_status_events(net, case_id)]
    assert [e.type for e in await township_status_events(net, other)][-1] == "case.complaint_filed"


async def test_a_village_cannot_pass_itself_off_as_staff_in_a_command(net):
    """The owner's answer carries only the command's own fields, never who acted (review)."""
    syncer, _, _ = village_syncer(net)
    [case_id] = await take_cases(net.village)
    await syncer.sync(5)
    forged_staff = {"reason": "不办了", "staff": "镇长", "role": "chief", "window": "9"}
    await village.command(net.village, case_id, CMD_WITHDRAW, forged_staff)
    await syncer.sync(5)
    answer = (await township_status_events(net, case_id))[-1]
    assert answer.type == "case.withdrawn"
    assert set(json.loads(answer.payload)) == {"reason", "command_event_id"}


async def test_a_pause_for_a_step_the_item_does_not_exclude_is_refused(net):
    """A pause names a step the case's catalog entry keeps off the clock; the ledger checks it
    wherever the event is applied, so a node receiving another is refusing it too (review)."""
    [case_id] = await take_cases(net.village)  # twp-pension-enroll: no excluded steps
    await village_syncer(net)[0].sync(5)
    await act(net.township, [case_id], ACCEPTED, {})
    [refused] = await act(net.township, [case_id], PAUSED, {"step": "公示"})
    assert "steps kept off the clock are none" in refused.error
