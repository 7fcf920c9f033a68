"""The district hub's PostgreSQL stopped hard (`pg_ctlcluster ... stop -m immediate`) while a
township relays a batch of cases to it, then started again: nothing lost, nothing applied twice.

Runs only where this machine's own PostgreSQL cluster can be stopped and started
(pg_ctlcluster, root), as on CI; it stops the shared cluster for about a second.
"""

import asyncio
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from relay.db import open_engine
from tests.conftest import PG_URL, fresh_postgres
from tests.netkit import Network, requests_file

pytestmark = [pytest.mark.e2e, pytest.mark.solo]
D, T, V = "500117", "500117001", "500117001005"
DRIVE = 1500


def cluster() -> list[str]:
    """pg_ctlcluster's VERSION and NAME for the local cluster, or skip (fail on CI) without one."""
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not (shutil.which("pg_ctlcluster") and versions and os.geteuid() == 0):
        if os.environ.get("CI"):
            pytest.fail("CI needs the local PostgreSQL cluster and root to stop and start it")
        pytest.skip("no local PostgreSQL cluster that this user can stop and start")
    return [versions[-1], "main"]


def pg_ctl(action: str, *extra: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster(), action, *extra],
        check=True,
        capture_output=True,
        timeout=60,
    )


def hub_counts() -> tuple[int, Counter[int], int]:
    """Cases at the hub, how many 'case.submitted' events each holds, and dead letters."""

    async def read() -> tuple[int, Counter[int], int]:
        engine = open_engine(PG_URL)
        try:
            async with engine.connect() as conn:
                cases = (await conn.execute(text("SELECT count(*) FROM cases"))).scalar_one()
                per_case = (
                    await conn.execute(
                        text("SELECT count(*) FROM events WHERE type = 'case.submitted' GROUP BY case_id")
                    )
                ).scalars()
                dead = (await conn.execute(text("SELECT count(*) FROM dead_letters"))).scalar_one()
                return cases, Counter(per_case), dead
        finally:
            await engine.dispose()

    try:
        return asyncio.run(read())
    except Exception:  # the database is down or starting: nothing readable yet
        return 0, Counter(), 0


def wait_until(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


def test_postgres_stopped_mid_batch_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    cluster()
    net = Network(tmp_path, asyncio.run(fresh_postgres(PG_URL)))
    net.add(T, batch_size=5)  # 300 batches: the outage falls in the middle of the relay
    net.add(V)
    net.set_relay(T, backoff_max_seconds=1.0)
    requests = requests_file(tmp_path / "drive.jsonl", DRIVE)
    assert net.node(V, "import", str(requests), "--json")["imported"] == DRIVE
    net.start(T)
    try:
        assert net.sync(V)["backlog"] == 0  # every case at the township, queued for the hub
        net.start(D)  # the township's forwarder starts relaying in batches of 5
        wait_until(lambda: hub_counts()[0] >= DRIVE // 4, 60, "the hub taking a quarter of the cases")
        taken = hub_counts()[0]
        pg_ctl("stop", "-m", "immediate")
        assert hub_counts()[0] == 0, "the hub's database still answers"
        time.sleep(1.0)
        pg_ctl("start")
        wait_until(lambda: hub_counts()[0] >= DRIVE, 120, "the hub taking every case after the outage")
        cases, per_case, dead = hub_counts()
        assert (cases, per_case, dead) == (DRIVE, Counter({1: DRIVE}), 0)
        assert net.node(T, "status", "--json")["backlog"] == 0
        assert taken < DRIVE, "every case had arrived before the outage: it tested nothing"
        assert '"relay.call.failed"' in (tmp_path / f"{D}.log").read_text(), "the hub never felt the outage"
    finally:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster(), "start"], check=False)
        net.stop_all()
