"""Faults end to end, with real server processes: nodes killed with SIGKILL mid-sync, a link that
resets or stalls mid-batch, a node restored from an older copy of its database.

Random choices come from FAULT_SEED (named in every assertion message); set it to replay a run.
"""

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.faultproxy import DOWN, UP, FaultProxy
from tests.netkit import Network, requests_file

pytestmark = pytest.mark.e2e
D, T, V = "500117", "500117001", "500117001005"
SEED = int(os.environ.get("FAULT_SEED", "20240611"))
SEEDED = f"FAULT_SEED={SEED}"
DB_FILES = ("node.db", "node.db-wal", "node.db-shm")
COUNTERS = "SELECT name, value FROM state WHERE name IN ('hop_seq', 'acked_upto')"
ACKED = "SELECT coalesce(max(value), 0) FROM state WHERE name = 'acked_upto'"
BACKLOG = f"SELECT count(*) FROM outbox WHERE seq > ({ACKED})"


# --- reading a node's database -------------------------------------------------------------------


def query(home: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on a node's SQLite file (its server may be running)."""
    with contextlib.closing(sqlite3.connect(home / "node.db", timeout=30)) as conn:
        return conn.execute(sql).fetchall()


def scalar(home: Path, sql: str) -> int:
    return int(query(home, sql)[0][0])


def event_count(home: Path) -> int:
    """How many events a node holds; 0 while its database cannot be read."""
    try:
        return scalar(home, "SELECT count(*) FROM events")
    except sqlite3.Error:
        return 0


def case_ids(home: Path) -> set[str]:
    return {str(row[0]) for row in query(home, "SELECT case_id FROM cases")}


def copy_db(source: Path, target: Path) -> None:
    """Copy a stopped node's database files (node.db, and its WAL files where there are any)."""
    target.mkdir(exist_ok=True)
    for name in DB_FILES:
        (target / name).unlink(missing_ok=True)
        if (source / name).exists():
            shutil.copy2(source / name, target / name)


# --- waiting and checking ------------------------------------------------------------------------


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s ({SEEDED})")
        time.sleep(0.01)


def wait_events(home: Path, at_least: int, timeout: float = 60) -> None:
    """Wait until a node's database holds at least so many events."""
    wait_until(lambda: event_count(home) >= at_least, timeout, f"{home.name} reaching {at_least} events")


def wait_forwarded(net: Network, code: str, timeout: float = 60) -> None:
    """Wait until a running server has forwarded its whole outbox upstream, as its status says."""
    wait_until(lambda: scalar(net.home(code), BACKLOG) == 0, timeout, f"{code} forwarding its outbox")
    assert net.node(code, "status", "--json")["backlog"] == 0, f"{code} status shows a backlog ({SEEDED})"


def assert_each_case_once(net: Network, code: str, expected: set[str]) -> None:
    """The node lists exactly the expected cases, its events table holds exactly one
    'case.submitted' event for each of them, and it rejected nothing."""
    listed = [c["case_id"] for c in net.cases(code)]
    assert len(listed) == len(expected) and set(listed) == expected, (
        f"{code} lists {len(listed)} cases ({len(set(listed))} distinct, {len(set(listed) - expected)} "
        f"unexpected), expected {len(expected)} ({SEEDED})"
    )
    rows = query(net.home(code), "SELECT case_id FROM events WHERE type = 'case.submitted'")
    submitted = [str(row[0]) for row in rows]
    assert len(submitted) == len(expected) and set(submitted) == expected, (
        f"{code} holds {len(submitted)} 'case.submitted' events for {len(set(submitted))} cases "
        f"(cases by number of such events: {dict(Counter(Counter(submitted).values()))}), "
        f"expected one each for {len(expected)} ({SEEDED})"
    )
    rejected = scalar(net.home(code), "SELECT count(*) FROM dead_letters")
    assert rejected == 0, f"{code} rejected {rejected} events ({SEEDED})"


# --- driving nodes -------------------------------------------------------------------------------


def take(net: Network, count: int, name: str) -> set[str]:
    """The village takes ``count`` requests from a JSON Lines file; returns the new case ids."""
    known = case_ids(net.home(V))
    imported = net.node(V, "import", str(requests_file(net.root / f"{name}.jsonl", count)), "--json")
    assert imported == {"imported": count, "refused": []}
    return case_ids(net.home(V)) - known


def sync_until_drained(net: Network, code: str, attempts: int = 5) -> None:
    """Run the node's sync until it reports an empty backlog, as its status then says too."""
    for _ in range(attempts):
        done = net.node(code, "sync", "--timeout", "30", "--json", check=False)
        if isinstance(done, dict) and done["backlog"] == 0:
            assert net.node(code, "status", "--json")["backlog"] == 0, f"{code} status: backlog ({SEEDED})"
            return
    raise AssertionError(f"{code} still has a backlog after {attempts} syncs ({SEEDED})")


def start_sync(net: Network, code: str, timeout: float) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the node's sync in the background; returns the process and its stdout file."""
    out = net.root / f"sync-{code}.out"
    args = ("sync", "--timeout", str(timeout), "--json")
    return net.spawn(code, *args, stdout=out, stderr=out.with_suffix(".err")), out


def finished_sync(process: subprocess.Popen[bytes], stdout: Path, timeout: float) -> dict[str, int]:
    """The report of a sync started with start_sync, once it has ended."""
    code = process.wait(timeout=timeout)
    text = stdout.read_text(encoding="utf-8")
    assert code == 0, f"sync exited {code}: {text} {stdout.with_suffix('.err').read_text()} ({SEEDED})"
    return dict(json.loads(text.strip().splitlines()[-1]))


def decide(net: Network, cases: list[str], approve: bool) -> None:
    """Township staff accept the cases and decide them."""
    net.node(T, "accept", *cases)
    verdict = ("--approve", "材料齐全") if approve else ("--reject", "不符合条件")
    net.node(T, "decide", *cases, verdict[0], "--reason", verdict[1])


def statuses(net: Network, code: str) -> dict[str, str]:
    return {c["case_id"]: c["status"] for c in net.cases(code)}


# --- 1. SIGKILL of the township and of the district during a long sync --------------------------

DRIVE = 1500  # cases taken at the village before the sync


def kill_at_random_moments(net: Network, code: str, kills: int, rng: random.Random) -> list[int]:
    """Kill -9 a server ``kills`` times, each once its database holds a random number of events,
    and start it again after a random pause; returns the event counts seen at the kills."""
    seen = [0]
    for threshold in sorted(rng.sample(range(50, DRIVE - 400), kills)):
        # and at least one more batch applied since it came back: it is at work when killed
        wait_events(net.home(code), max(threshold, seen[-1] + 50), timeout=90)
        time.sleep(rng.uniform(0, 0.03))  # anywhere in the batch being applied
        seen.append(event_count(net.home(code)))
        net.kill(code)
        time.sleep(rng.uniform(0.05, 0.5))
        net.start(code)
    return seen[1:]


def test_sigkill_of_township_and_district_mid_sync_keeps_every_case_exactly_once(homes: Network) -> None:
    """kill -9 of the township and of the district during a 1,500-case sync: each tier ends up
    with every case, and its submitted event, exactly once."""
    net = homes
    for code in (T, V):  # quick retries keep the test short; they do not change what is sent
        net.set_relay(code, batch_size=50, backoff_max_seconds=1.0)
    taken = take(net, DRIVE, "drive")
    net.start(D)
    net.start(T)
    try:
        sync, out = start_sync(net, V, timeout=120)
        with ThreadPoolExecutor(2) as pool:
            at_kills = {
                code: pool.submit(kill_at_random_moments, net, code, 3, random.Random(f"{SEED}:{code}"))
                for code in (T, D)
            }
            report = finished_sync(sync, out, timeout=150)
            kills = {code: future.result(timeout=150) for code, future in at_kills.items()}
        assert max(kills[T]) < DRIVE, f"township killed after the sync: {kills} ({SEEDED})"
        assert min(kills[D]) < DRIVE, f"district never killed while the township relayed: {kills} ({SEEDED})"
        assert report["backlog"] == 0, f"{report} ({SEEDED})"
        sync_until_drained(net, V)
        wait_forwarded(net, T)
        for code in (V, T, D):
            assert_each_case_once(net, code, taken)
    finally:
        net.stop_all()


# --- 2. a link that resets or stalls mid-batch -----------------------------------------------------

LINK_DRIVE = 1000
PUSH_TIMEOUT = 2.0
STALL = PUSH_TIMEOUT + 1


def test_link_resets_and_stalls_mid_batch_keep_every_case_exactly_once(tmp_path: Path) -> None:
    """A village link reset mid-batch, stalled past the push deadline, and stalled on the way back
    (the township applied the batch, its ack is held): one sync completes, every case once."""
    rng = random.Random(f"{SEED}:link")
    net = Network(tmp_path)
    net.add(T)
    net.start(T)  # no district: the township's own forwarder just waits for it
    try:
        with FaultProxy(net.address(T)) as proxy:
            net.add(V, batch_size=50, upstream=proxy.address)
            net.set_relay(V, push_timeout_seconds=PUSH_TIMEOUT, backoff_max_seconds=1.0)
            taken = take(net, LINK_DRIVE, "drive")
            sync, out = start_sync(net, V, timeout=90)
            faults: list[Callable[[int], None]] = [
                proxy.reset_after,
                lambda n: proxy.stall_after(n, STALL, (UP, DOWN)),
                proxy.reset_after,
                lambda n: proxy.stall_after(n, STALL, (DOWN,)),
            ]
            for number, arm in enumerate(faults, start=1):
                before = event_count(net.home(T))
                arm(rng.randrange(500, 20_000))  # a batch of 50 is about 30 kB on the wire
                assert proxy.wait_fired(60), f"fault {number} never fired ({SEEDED})"
                if number < len(faults):  # the sync recovers and moves on before the next fault
                    wait_events(net.home(T), before + 100)
            time.sleep(STALL / 2)  # within the last stall: the township is ahead of the village
            township_mark = scalar(net.home(T), f"SELECT applied_upto FROM inbox_peers WHERE sender = '{V}'")
            village_acked = scalar(net.home(V), ACKED)
            assert township_mark > village_acked, f"no batch applied with its ack held back ({SEEDED})"
            report = finished_sync(sync, out, timeout=90)
            assert (proxy.resets, proxy.stalls) == (2, 2)
            assert proxy.connections >= 3, f"{proxy.connections} connections: no reconnect after the resets"
        assert report["backlog"] == 0, f"{report} ({SEEDED})"
        assert_each_case_once(net, T, taken)
    finally:
        net.stop_all()


# --- 3. an upstream restored from an older copy of its database ----------------------------------


def test_township_restored_from_older_copy_is_replayed_and_village_statuses_stay_true(
    homes: Network, tmp_path: Path
) -> None:
    """After its township is restored from an older copy, one village sync replays the cases the
    township had acknowledged since (each once at township and district) and brings the village
    the decisions that survived and those made since the restore."""
    net = homes
    net.start(D)
    net.start(T)
    try:
        before_copy = sorted(take(net, 12, "first"))
        assert net.sync(V)["pushed"] == 12
        decide(net, before_copy[:2], approve=True)
        net.sync(V)  # the village pulls those decisions
        net.kill(T, signal.SIGTERM)  # a clean stop checkpoints the WAL: node.db alone is the copy
        copy_db(net.home(T), tmp_path / "backup")
        net.start(T)
        after_copy = sorted(take(net, 12, "second"))
        assert net.sync(V)["pushed"] == 12
        decide(net, [before_copy[2], after_copy[0]], approve=False)  # lost with the restore
        net.sync(V)
        wait_forwarded(net, T)
        net.kill(T, signal.SIGTERM)
        copy_db(tmp_path / "backup", net.home(T))
        net.start(T)
        assert case_ids(net.home(T)) == set(before_copy), "the township was not restored"

        decide(net, before_copy[3:4], approve=True)
        decide(net, before_copy[4:5], approve=False)
        net.sync(V)
        everything = set(before_copy) | set(after_copy)
        assert_each_case_once(net, T, everything)
        survived = dict.fromkeys(before_copy[:2], "approved")
        expected = survived | {before_copy[3]: "approved", before_copy[4]: "rejected"}
        at_township, at_village = statuses(net, T), statuses(net, V)
        assert {c: at_township[c] for c in expected} == expected
        assert {c: at_village[c] for c in expected} == expected, "the village lacks township decisions"
        assert scalar(net.home(V), "SELECT count(*) FROM dead_letters") == 0
        wait_forwarded(net, T)
        assert_each_case_once(net, D, everything)
    finally:
        net.stop_all()


# --- 3b. a village restored from an older copy of its database ----------------------------------


def test_village_restored_from_older_copy_still_sends_the_cases_it_takes_next(
    homes: Network, tmp_path: Path
) -> None:
    """A village laptop restored from an older copy of its database, synced once, then taking new
    requests: the next sync delivers them to the township (nothing new is taken for a repeat)."""
    net = homes
    net.start(T)  # no district: the township's own forwarder just waits for it
    try:
        first = take(net, 5, "first")
        net.sync(V)
        copy_db(net.home(V), tmp_path / "backup")  # the village runs no server: its files are at rest
        second = take(net, 5, "second")
        net.sync(V)
        copy_db(tmp_path / "backup", net.home(V))
        net.sync(V)  # nothing queued: the village learns its township's mark
        taken_after_restore = take(net, 3, "third")
        report = net.sync(V)
        missing = taken_after_restore - case_ids(net.home(T))
        assert not missing, (
            f"{len(missing)} of 3 cases taken after the restore never reached the township; "
            f"sync reported {report}; the village's counters: {dict(query(net.home(V), COUNTERS))}"
        )
        assert_each_case_once(net, T, first | second | taken_after_restore)
    finally:
        net.stop_all()
