"""Coverage as the district sees it: heartbeats with sync times, villages' heartbeats passed on
by their township, and `district-node coverage`."""

import pytest
from sqlalchemy import select

from relay.records import Heartbeat
from relay.schema import nodes
from tests.netkit import IDS, Network
from tests.test_relay_inprocess import intake, wire

D, T, V = "500117", "500117001", "500117001005"


async def node_row(node, code):
    async with node.engine.connect() as conn:
        return (await conn.execute(select(nodes).where(nodes.c.code == code))).first()


async def test_a_township_passes_on_its_villages_heartbeats_to_the_district(net):
    """A sync ends with a heartbeat carrying the last push and pull; the township's own
    heartbeat carries its villages' latest, so the district sees the village without hearing
    from it; a village of another township in it is ignored."""
    v_sync, t_sync, _ = wire(net)
    await intake(net.village)
    await v_sync.sync(5)
    at_township = await node_row(net.township, V)
    assert at_township.last_push and at_township.last_pull and at_township.backlog == 0
    beat = await t_sync.heartbeat()
    assert [seen.node for seen in beat.below] == [V]
    stranger = Heartbeat("500117002001", "village", "x", "x", 0, 0, last_seen=beat.sent_at)
    await t_sync.upstream.heartbeat(
        Heartbeat(T, "township", "x", "x", 0, beat.sent_at, below=(*beat.below, stranger))
    )
    at_district = await node_row(net.district, V)
    assert at_district.last_seen == at_township.last_seen
    assert (at_district.last_push, at_district.last_pull) == (at_township.last_push, at_township.last_pull)
    assert await node_row(net.district, "500117002001") is None


@pytest.mark.e2e
def test_coverage_lists_townships_and_the_share_of_villages_active(homes: Network) -> None:
    """`district-node coverage --json`: the township with its enrolled, active and never-seen
    villages, and the district's coverage figure."""
    net = homes
    net.add("500117001008")  # enrolled, never syncs
    net.start(D)
    net.start(T)
    try:
        requested = ("--item", "twp-pension-enroll", "--applicant-name", "李四", "--applicant-id", IDS[0])
        net.node(V, "intake", *requested)
        net.sync(V)
        net.sync(T)  # the township's sync ends with its heartbeat, its villages' included
        report = net.node(D, "coverage", "--json")
    finally:
        net.stop_all()
    [township] = [row for row in report["townships"] if row["code"] == T]
    assert township["state"] == "active_day" and township["last_push"] is not None
    assert (township["enrolled"], township["active_day"], township["never"]) == (2, 1, 1)
    assert len(report["townships"]) == 30 and report["villages"] == 419
    assert report["coverage"] == round(1 / 419, 4)
