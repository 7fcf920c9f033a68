"""A village keeps personal data sealed, and only as long as it needs it (real SQLite files,
a township in the same process)."""

import base64
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from casework import InvalidInput, Request, mask_foreign_ids, shown_resident_id
from casework.lifecycle import ACCEPTED, CMD_COMPLAIN, CMD_DELIVER, CMD_RATE, DECIDED
from relay import audit, privacy
from relay._replay import check_cases
from relay.config import NodeConfig
from relay.keyfile import KEY_FILE, WrongPassphrase, change_passphrase, create_key, load_key
from relay.node import Node, open_node
from relay.privacy import FORGOTTEN, forget_settled
from relay.queries import list_cases, show_case
from relay.schema import cases, dead_letters, events
from relay.service import RelayService
from relay.staff import act
from relay.sync import Syncer
from relay.upstream import LocalUpstream
from relay.vault import SCANS, SEALED, SealedVault
from tests.conftest import DISTRICT, TOWNSHIP, VILLAGE, config
from tests.test_migrations import CASE, make_6e8a5c3_node, run_on
from village_agent import service as village

# Two residents of the district and one from Beijing, with their phones and a form field
# naming a family member's ID number.
PEOPLE = [("张秀英", "500117195603124322", "13912345678"), ("王建国", "11010519491231002X", "13787654321")]
SPOUSE_ID = "500117197811052166"
HOUSEHOLD = "户口簿 scan: 张秀英 王建国 ".encode() * 40


@dataclass
class Pair:
    village: Node
    township: Node
    sync: Syncer


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    """A village (its data sealed) and its township, each on its own SQLite file."""
    homes = {name: tmp_path / name for name in ("t", "v")}
    for home in homes.values():
        home.mkdir()
    async with (
        open_node(homes["t"], config(homes["t"], TOWNSHIP, "township", DISTRICT)) as township,
        open_node(homes["v"], config(homes["v"], VILLAGE, "village", TOWNSHIP)) as village_node,
    ):
        link = LocalUpstream(RelayService(township.engine, township.ledger))
        yield Pair(village_node, township, Syncer(village_node.engine, village_node.ledger, link))


async def take_everyone(node: Node) -> list[str]:
    """One case for each person, with a scan of their own ID card and of a household register
    both hand in (kept sealed, as the intake app keeps them)."""
    fields = {"配偶身份证号": SPOUSE_ID}
    checked = []
    for name, number, phone in PEOPLE:
        scans = {"居民身份证": id_card(number), "户口簿": HOUSEHOLD}
        assert isinstance(node.ledger.vault, SealedVault)
        for data in scans.values():
            node.ledger.vault.keep_scan(data)
        checked.append(village.check(node, Request("twp-pension-enroll", name, number, phone, fields), scans))
    return [taken.case_id for taken in await village.take(node, checked)]


def id_card(number: str) -> bytes:
    return f"ID card scan of {number} ".encode() * 40


def scans_kept(node: Node) -> set[str]:
    return {path.name for path in (node.home / SCANS).iterdir() if not path.name.startswith(".")}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_bytes(home: Path) -> bytes:
    """The database file and its write-ahead log as a thief would copy them."""
    db = home / "node.db"
    return b"".join(path.read_bytes() for path in (db, db.with_name("node.db-wal")) if path.exists())


def personal(*extra: str) -> list[bytes]:
    return [value.encode() for person in PEOPLE for value in person] + [v.encode() for v in extra]


async def test_a_stolen_village_database_reveals_nobody(pair: Pair) -> None:
    """After intake, a complaint and a sync, neither the village's database file nor its WAL
    holds a name, ID number or phone; the agent still sees them, the township gets them."""
    first, _ = await take_everyone(pair.village)
    await village.command(pair.village, first, CMD_COMPLAIN, {"text": "太慢"})
    assert (await pair.sync.sync(5)).pushed == 3
    stolen = raw_bytes(pair.village.home)
    assert (pair.village.home / "node.db-wal").exists() and len(stolen) > 10_000
    assert [value for value in personal(SPOUSE_ID) if value in stolen] == []
    shown = {c["applicant_name"]: c["applicant_id"] for c in await list_cases(pair.village)}
    assert shown == {"张秀英": PEOPLE[0][1], "王建国": "110105********002X"}  # Beijing's masked
    at_township = raw_bytes(pair.township.home)
    assert all(value in at_township for value in personal(SPOUSE_ID))  # the scan finds clear data
    handed_in = [HOUSEHOLD, *(id_card(number) for _, number, _ in PEOPLE)]
    assert scans_kept(pair.village) == {sha(data) for data in handed_in}
    assert isinstance(pair.village.ledger.vault, SealedVault)
    for data in handed_in:
        kept = (pair.village.home / SCANS / sha(data)).read_bytes()
        assert all(data[i : i + 16] not in kept for i in range(0, len(data) - 16, 8))
        assert pair.village.ledger.vault.open_scan(sha(data)) == data


async def test_command_output_masks_id_numbers_from_outside_the_district(pair: Pair) -> None:
    """ID numbers of residents registered elsewhere are masked, in the case and in its fields."""
    assert shown_resident_id(PEOPLE[0][1], DISTRICT) == PEOPLE[0][1]
    assert shown_resident_id(PEOPLE[1][1], DISTRICT) == "110105********002X"
    assert mask_foreign_ids(f"{PEOPLE[1][1]} {SPOUSE_ID} 1{SPOUSE_ID}", DISTRICT) == (
        f"110105********002X {SPOUSE_ID} 1{SPOUSE_ID}"
    )
    _, second = await take_everyone(pair.village)
    await pair.sync.sync(5)
    shown = await show_case(pair.township, second)
    assert shown is not None and shown["applicant_id"] == "110105********002X"
    assert shown["events"][0]["payload"]["fields"] == {"配偶身份证号": SPOUSE_ID}
    pair.township.config = replace(pair.township.config, district_code="500118")  # seen from next door
    shown = await show_case(pair.township, second)
    assert shown is not None and shown["events"][0]["payload"]["fields"] == {
        "配偶身份证号": "500117********2166"
    }


async def test_a_settled_case_is_forgotten_at_the_village_after_the_grace_period(
    pair: Pair, tmp_path: Path
) -> None:
    """Delivered and acknowledged, a case keeps its details for forget_after_days (a township
    restored from a backup gets them again whole); after that the village keeps the case number,
    item, status and what staff wrote, not the person. Sent again after that, its events are
    refused upstream saying the district holds the case; a later rating is forgotten in turn."""
    done, still_open = await take_everyone(pair.village)
    await pair.sync.sync(5)
    await act(pair.township, [done], ACCEPTED, {})
    await act(pair.township, [done], DECIDED, {"approved": True, "reason": "符合条件"})
    await pair.sync.sync(5)
    await village.command(pair.village, done, CMD_DELIVER, {})
    await pair.sync.sync(5)
    assert await forgotten(pair.village, done) is False  # settled, within the grace period
    await age_settlement(pair.village, days=8)
    await pair.sync.sync(5)
    assert await forgotten(pair.village, done) is True
    assert scans_kept(pair.village) == {sha(HOUSEHOLD), sha(id_card(PEOPLE[1][1]))}  # the open case's
    by_id = {c["case_id"]: c for c in await list_cases(pair.village)}
    assert (by_id[done]["item_code"], by_id[done]["status"]) == ("twp-pension-enroll", "delivered")
    assert (by_id[done]["applicant_name"], by_id[done]["applicant_id"]) == ("", "")
    assert by_id[still_open]["applicant_name"] == PEOPLE[1][0] and not await forgotten(
        pair.village, still_open
    )
    shown = await show_case(pair.village, done) or {}
    assert [e["payload"].get("reason") for e in shown["events"] if e["type"] == DECIDED] == ["符合条件"]
    assert (await list_cases(pair.township))[0]["applicant_name"] == PEOPLE[0][0]  # kept upstream
    await village.command(pair.village, done, CMD_RATE, {"score": 5, "comment": "很快"})
    await pair.sync.sync(5)
    await age_settlement(pair.village, days=8)
    await pair.sync.sync(5)
    assert await forgotten(pair.village, done) is True
    async with pair.village.engine.begin() as conn:
        assert (await forget_settled(conn, pair.village.ledger.vault, 7)).cases == 0  # idempotent
        assert (await audit.verify(conn, pair.village.ledger.vault)).problem == ""  # the chain holds
        assert await check_cases(conn, pair.village.ledger.vault) == ""  # the forgotten one skipped
    (tmp_path / "restored").mkdir()
    restored_config = config(tmp_path / "restored", TOWNSHIP, "township", DISTRICT)
    async with open_node(tmp_path / "restored", restored_config) as restored:  # a backup too old
        link = LocalUpstream(RelayService(restored.engine, restored.ledger))
        report = await Syncer(pair.village.engine, pair.village.ledger, link).sync(5)
        assert report.backlog == 0 and report.rejected > 0
        async with pair.village.engine.connect() as conn:
            reasons = (await conn.execute(select(dead_letters.c.reason))).scalars().all()
        assert reasons and all("the district holds the case" in r for r in reasons)
        assert any(done in r for r in reasons)


async def age_settlement(node: Node, days: float) -> None:
    async with node.engine.begin() as conn:
        ago = days * 86_400 * 1_000_000
        await conn.execute(
            update(cases).where(cases.c.settled_at > 0).values(settled_at=cases.c.settled_at - ago)
        )


async def forgotten(node: Node, case_id: str) -> bool:
    """True when neither the case row nor any of its events keeps anything of the person."""
    async with node.engine.connect() as conn:
        sealed = (
            await conn.execute(select(cases.c.applicant_sealed).where(cases.c.case_id == case_id))
        ).scalar()
        payloads = (await conn.execute(select(events.c.payload).where(events.c.case_id == case_id))).all()
    marked = all(json.loads(p).get(FORGOTTEN) is True for (p,) in payloads if not p.startswith(SEALED))
    revealing = [p for (p,) in payloads if any(v in p for v in personal(SPOUSE_ID, "很快"))]
    sealed_left = [p for (p,) in payloads if p.startswith(SEALED)]
    return sealed is None and marked and not revealing and not sealed_left


async def test_upgrading_a_village_that_kept_clear_rows_seals_them(tmp_path: Path) -> None:
    """A village database from before sealing is sealed at its first open with the passphrase,
    with no clear copy left in the file; later opens need the same key file and passphrase,
    which can be changed."""
    node_config, clear = await village_before_sealing(tmp_path)
    async with open_node(tmp_path, node_config) as node:
        [case] = await list_cases(node)
        assert case["applicant_name"] == "张三"
        assert [value for value in clear if value in raw_bytes(tmp_path)] == []
        assert (await show_case(node, CASE["case_id"]) or {})["events"][0]["type"] == "case.submitted"
    key = (tmp_path / KEY_FILE).read_bytes()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SERVICENET_PASSPHRASE", "not the passphrase")
        with pytest.raises(WrongPassphrase, match="wrong passphrase"):
            async with open_node(tmp_path, node_config):
                pass
    (tmp_path / KEY_FILE).unlink()
    with pytest.raises(InvalidInput, match="missing: restore it"):
        async with open_node(tmp_path, node_config):
            pass
    (tmp_path / KEY_FILE).write_bytes(key)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SERVICENET_NEW_PASSPHRASE", "a new passphrase")
        change_passphrase(tmp_path)
        env.setenv("SERVICENET_PASSPHRASE", "a new passphrase")
        async with open_node(tmp_path, node_config) as node:
            assert [c["applicant_name"] for c in await list_cases(node)] == ["张三"]
    with pytest.raises(WrongPassphrase):  # the old passphrase no longer opens it
        async with open_node(tmp_path, node_config):
            pass


async def village_before_sealing(home: Path) -> tuple[NodeConfig, list[bytes]]:
    """A village database as a release before sealing left it, with one case and its event in
    clear; returns its configuration and the clear values."""
    node_config = config(home, VILLAGE, "village", TOWNSHIP)
    await make_6e8a5c3_node(node_config.db_url)
    clear_event = (
        "INSERT INTO events (event_id, case_id, origin_node, origin_seq, type, payload, recorded_at, "
    )
    clear_event += "catalog_version, village_code, township_code) VALUES ('500117001005:1', :case, "
    clear_event += "'500117001005', 1, 'case.submitted', :payload, 1, '2026.1', '500117001005', '500117001')"
    payload = (
        f'{{"applicant":{{"name":"张三","id_number":"{CASE["applicant_id"]}","phone":"{CASE["phone"]}"}}}}'
    )
    values = {"case": CASE["case_id"], "payload": payload.encode()}
    await run_on(node_config.db_url, lambda conn: conn.execute(text(clear_event), values))
    clear = [str(CASE[k]).encode() for k in ("applicant_name", "applicant_id", "phone")]
    assert all(value in raw_bytes(home) for value in clear)
    return node_config, clear


async def test_the_first_seal_asks_before_locking_and_a_crash_before_the_rewrite_is_finished_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key is made (the passphrase asked, scrypt run) while other processes may still
    write; a crash after sealing but before the file was rewritten leaves the rewrite to the
    next open, which removes the clear copies."""
    node_config, clear = await village_before_sealing(tmp_path)
    made = privacy.create_key

    def make_while_others_write(home: Path) -> bytes:
        with sqlite3.connect(tmp_path / "node.db", timeout=0.2) as other:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" under the sealing lock
            other.rollback()
        return made(home)

    async def crash(engine: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(privacy, "create_key", make_while_others_write)
    monkeypatch.setattr(privacy, "_rewrite", crash)
    with pytest.raises(KeyboardInterrupt):
        async with open_node(tmp_path, node_config):
            pass
    rewrite = "SELECT value FROM state WHERE name = 'rewrite_pending'"
    assert await run_on(node_config.db_url, lambda conn: conn.execute(text(rewrite)).scalar()) == 1
    monkeypatch.undo()
    async with open_node(tmp_path, node_config) as node:
        assert [c["applicant_name"] for c in await list_cases(node)] == ["张三"]
    assert await run_on(node_config.db_url, lambda conn: conn.execute(text(rewrite)).scalar()) == 0
    assert [value for value in clear if value in raw_bytes(tmp_path)] == []


def test_a_damaged_key_file_says_restore_it_and_a_passphrase_change_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key file whose nonce was cut short is refused in one line, not with a traceback; a
    passphrase change keeps the file as it was beside it until the key next opens."""
    key = create_key(tmp_path)
    path, backup = tmp_path / KEY_FILE, tmp_path / (KEY_FILE + ".bak")
    monkeypatch.setenv("SERVICENET_NEW_PASSPHRASE", "a new passphrase")
    change_passphrase(tmp_path)
    assert backup.exists() and backup.read_bytes() != path.read_bytes()
    monkeypatch.setenv("SERVICENET_PASSPHRASE", "a new passphrase")
    assert load_key(tmp_path) == key and not backup.exists()
    stored = json.loads(path.read_text())
    path.write_text(json.dumps(stored | {"nonce": base64.b64encode(b"short").decode()}))
    with pytest.raises(InvalidInput, match="cannot be read as a data key file: restore it from the backup"):
        load_key(tmp_path)
