"""End to end through the command lines, with real server processes on loopback ports."""

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from messages import refusal, t
from relay.keyfile import KEY_FILE, PASSPHRASE_ENV
from tests.conftest import PG_URL, fresh_postgres
from tests.netkit import IDS, Network

pytestmark = pytest.mark.e2e
T, V = "500117001", "500117001005"


@pytest.fixture
def network(homes: Network) -> Iterator[Network]:
    """District 500117 with township 500117001 and its village 500117001005, servers running."""
    yield from running_network(homes)


@pytest.fixture
def network_on_postgres(tmp_path: Path) -> Iterator[Network]:
    """The same network with the district hub on PostgreSQL."""
    net = Network(tmp_path, asyncio.run(fresh_postgres(PG_URL)))
    net.add(T)
    net.add(V)
    yield from running_network(net)


def running_network(net: Network) -> Iterator[Network]:
    net.start("500117")
    net.start(T)
    yield net
    net.stop_all()
    logs = net.log_text()
    assert "node.serving" in logs
    assert [value for value in PERSONAL if value in logs] == [], "personal data reached a log"
    db = net.home(V) / "node.db"
    stolen = b"".join(path.read_bytes() for path in (db, db.with_name("node.db-wal")) if path.exists())
    assert [value for value in PERSONAL if value.encode() in stolen] == [], "the village keeps it in clear"


# Every name, ID number and phone these tests use (a bad ID number too): none may reach a log
# or the village's database file in clear.
PHONE = "13912345678"
PERSONAL = (*IDS, "110105194912310021", PHONE, "李四", "王五")


def intake(net: Network, item: str) -> str:
    taken = net.node(
        V,
        "intake",
        *("--item", item, "--applicant-name", "李四", "--applicant-id", IDS[0], "--phone", PHONE),
        "--json",
    )
    return str(taken["case_id"])


def wait_for(net: Network, code: str, case_id: str, status: str) -> None:
    """Township and district sync in the background: poll until the case reaches status."""
    for _ in range(100):
        if any(c["case_id"] == case_id and c["status"] == status for c in net.cases(code)):
            return
        time.sleep(0.1)
    raise AssertionError(f"{case_id} never became {status} at {code}")


def test_township_item_decided_at_township_comes_back_to_village(network: Network) -> None:
    """Township route: intake, accept, approve at the township; the village sees approved."""
    case_id = intake(network, "twp-pension-enroll")
    assert network.sync(V)["pushed"] == 1
    network.node(T, "accept", case_id)
    network.node(T, "decide", case_id, "--approve", "--reason", "材料齐全")
    network.sync(V)
    [case] = network.cases(V)
    assert (case["status"], case["owner"]) == ("approved", T)
    network.node(V, "deliver", case_id)
    network.sync(V)
    network.sync(V)
    [case] = network.cases(V)
    assert case["status"] == "delivered" and case["applicant_name"]  # kept forget_after_days (7)
    wait_for(network, "500117", case_id, "delivered")
    assert network.cases(T)[0]["applicant_id"] == IDS[0]  # the township keeps it


def test_district_item_escalated_and_decided_at_district(network: Network) -> None:
    """District route: the township accepts and escalates, the district accepts and decides."""
    district_route(network)


def test_district_route_with_hub_on_postgres(network_on_postgres: Network) -> None:
    """The same district route with the hub's database on PostgreSQL."""
    district_route(network_on_postgres)


def district_route(network: Network) -> None:
    case_id = intake(network, "twp-dibao-apply")
    network.sync(V)
    network.node(T, "accept", case_id)
    refused = network.node(T, "decide", case_id, "--approve", "--reason", "x", check=False)
    assert refused.returncode != 0 and t("refusal.escalate_first") in refused.stderr.decode()
    network.node(T, "escalate", case_id, "--opinion", "符合条件")
    wait_for(network, "500117", case_id, "escalated")
    network.node("500117", "accept", case_id)
    network.node("500117", "decide", case_id, "--approve", "--reason", "符合低保条件")
    wait_for(network, T, case_id, "approved")
    network.sync(V)
    shown = network.node(V, "show", case_id, "--json")
    assert shown["status"] == "approved" and shown["owner"] == "500117"
    assert [e["type"] for e in shown["events"]] == [
        "case.submitted",
        "case.accepted",
        "case.escalated",
        "case.accepted",
        "case.decided",
    ]
    chains_whole(network)


def chains_whole(network: Network) -> None:
    """Every tier's audit trail verifies; each upstream checked the chain of the node below."""
    for code, below in ((V, []), (T, [V]), ("500117", [T])):
        report = network.node(code, "audit", "verify", "--json")
        assert (report["problem"], report["breaks"]) == (None, []) and report["rows"] >= 5, report
        assert [peer["node"] for peer in report["received"]] == below


def test_withdrawal_travels_up_and_staff_cannot_act_after(network: Network) -> None:
    """A withdrawal reaches the owner; a later accept is refused with a clear message."""
    case_id = intake(network, "twp-pension-enroll")
    network.node(V, "withdraw", case_id, "--reason", "不需要了")
    network.sync(V)
    refused = network.node(T, "accept", case_id, check=False)
    said = refusal("", "wrong_status", {"status": "withdrawn", "event": "case.accepted"})
    assert refused.returncode == 1 and said in refused.stderr.decode()
    network.sync(V)
    assert network.cases(V)[0]["status"] == "withdrawn"


def test_village_works_while_township_is_down_and_drains_after(network: Network) -> None:
    """Intake keeps working offline; sync fails and keeps everything; it drains once up."""
    network.kill(T)
    ids = [intake(network, "twp-pension-enroll") for _ in range(3)]
    failed = network.node(V, "sync", "--timeout", "1", check=False)
    assert failed.returncode != 0
    assert t("cli.unreachable", upstream=network.address(T), seconds="1") in failed.stderr.decode()
    assert network.node(V, "status", "--json")["backlog"] == 3
    network.start(T)
    assert network.sync(V) == {"pushed": 3, "pulled": 0, "rejected": 0, "backlog": 0}
    assert sorted(c["case_id"] for c in network.cases(T)) == sorted(ids)
    for case_id in ids:
        wait_for(network, "500117", case_id, "submitted")


def test_bad_intake_is_refused_and_leaves_no_record(network: Network) -> None:
    """A wrong ID check digit or an unknown item: one line, non-zero exit, nothing recorded."""
    bad_id = network.node(
        V,
        "intake",
        "--item",
        "twp-pension-enroll",
        "--applicant-name",
        "王五",
        "--applicant-id",
        "110105194912310021",
        check=False,
    )
    unknown = network.node(
        V,
        "intake",
        "--item",
        "no-such-item",
        "--applicant-name",
        "王五",
        "--applicant-id",
        IDS[0],
        check=False,
    )
    for done in (bad_id, unknown):
        assert done.returncode == 2
        assert done.stderr.decode().count("\n") == 1 and b"Traceback" not in done.stderr
    assert bad_id.stderr.decode() == t("cli.error", message=t("refusal.id_check")) + "\n"
    assert (
        unknown.stderr.decode()
        == t("cli.error", message=t("refusal.unknown_item", item="no-such-item")) + "\n"
    )
    wrong = network.node(V, "cases", env={"SERVICENET_PASSPHRASE": "not the passphrase"}, check=False)
    english = {"SERVICENET_PASSPHRASE": "", "SERVICENET_LANG": "en"}  # a coded refusal, worded in English
    unset = network.node(V, "cases", env=english, check=False)  # no terminal
    key = network.home(V) / KEY_FILE
    said = {
        wrong: t("refusal.wrong_passphrase", file=key, env=PASSPHRASE_ENV),
        unset: t("refusal.passphrase_terminal", lang="en", env=PASSPHRASE_ENV),
    }
    for done, says in said.items():
        assert done.returncode == 2 and done.stderr.decode().endswith(says + "\n"), done.stderr
        assert done.stderr.count(b"\n") == 1
    assert network.cases(V) == []
    assert network.node(V, "status", "--json")["backlog"] == 0


def test_correction_round_trip_then_rating(network: Network, tmp_path: Path) -> None:
    """One correction notice lists what is missing; the village supplies it; the case resumes."""
    case_id = intake(network, "twp-elderly-card")
    network.sync(V)
    network.node(
        T, "request-correction", case_id, "--missing", "身份证", "--missing", "照片", "--note", "请补齐"
    )
    network.sync(V)
    [case] = network.cases(V)
    assert (case["status"], case["missing_materials"]) == ("correction_requested", ["身份证", "照片"])
    scans = {name: tmp_path / f"{n}.jpg" for n, name in enumerate(["身份证", "照片"])}
    for path in scans.values():
        path.write_bytes(b"scan")
    network.node(V, "supplement", case_id, *[f"--material={k}={v}" for k, v in scans.items()])
    network.sync(V)
    [at_township] = network.cases(T)
    assert (at_township["status"], at_township["missing_materials"]) == ("accepted", [])
    network.node(T, "decide", case_id, "--approve", "--reason", "符合条件")
    network.sync(V)
    network.node(V, "rate", case_id, "--score", "5", "--comment", "很快")
    network.sync(V)
    events = [e["type"] for e in network.node(T, "show", case_id, "--json")["events"]]
    assert events[-2:] == ["cmd.rate", "case.rated"]


def test_catalog_published_at_district_reaches_the_village(network: Network, tmp_path: Path) -> None:
    """district-node catalog publish: validated, then taken by the township and the village."""
    catalog = json.loads((Path(__file__).parent.parent / "casework/data/catalog.json").read_text("utf-8"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(catalog | {"version": "2027.1", "items": [catalog["items"][0] | {"fee": "x"}]}))
    refused = network.node("500117", "catalog", "publish", str(bad), check=False)
    assert refused.returncode == 2 and b"fee" in refused.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps(catalog | {"version": "2027.1"}, ensure_ascii=False), encoding="utf-8")
    published = network.node("500117", "catalog", "publish", str(good), "--json")
    assert published == {"version": "2027.1", "already": False}
    again = network.node("500117", "catalog", "publish", str(good))  # a script run twice: nothing to do
    assert t("cli.district.catalog_again", version="2027.1") in again.stdout.decode()
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(catalog | {"version": "2027.1", "items": catalog["items"][1:]}))
    refused = network.node("500117", "catalog", "publish", str(changed), check=False)
    taken = t("cli.error", message=t("refusal.version_taken", version="2027.1"))
    assert refused.returncode == 2 and refused.stderr.decode() == taken + "\n"
    network.sync(T)
    network.sync(V)
    assert {item["version"] for item in network.node(V, "catalog", "--json")} == {"2027.1"}


def test_withdrawal_racing_a_decision_ends_the_same_at_every_tier(network: Network) -> None:
    """The owner's order wins: a withdrawal that arrives after the decision is refused, and the
    village, township and district all end with the decision."""
    case_id = intake(network, "twp-pension-enroll")
    network.sync(V)
    network.node(V, "withdraw", case_id, "--reason", "不办了")  # queued at the village
    network.node(T, "accept", case_id)
    network.node(T, "decide", case_id, "--approve", "--reason", "材料齐全")  # decided first
    network.sync(V)
    network.sync(V)
    for code in (V, T, "500117"):
        for _ in range(100):  # the district learns through the township's background relay
            shown = network.node(code, "show", case_id, "--json")
            if shown["events"][-1]["type"] == "case.command_refused":
                break
            time.sleep(0.1)
        assert shown["status"] == "approved", code
        assert shown["events"][-1]["type"] == "case.command_refused", code


def test_joint_item_decided_by_three_departments_in_parallel(network: Network) -> None:
    """A joint item is approved once each of its three departments has; the district sees who is
    still pending, and a plain decision is refused."""
    case_id = intake(network, "twp-elderly-care-subsidy")
    network.sync(V)
    network.node(T, "accept", case_id)
    network.node(T, "escalate", case_id, "--opinion", "初审通过")
    wait_for(network, "500117", case_id, "escalated")
    network.node("500117", "accept", case_id)
    plain = network.node("500117", "decide", case_id, "--approve", "--reason", "x", check=False)
    assert plain.returncode == 1 and t("refusal.joint", pending="").split("（")[0] in plain.stderr.decode()
    departments = list(network.node("500117", "show", case_id, "--json")["departments"])
    assert departments == ["区残联", "区老龄办", "区财政局"]
    for done, department in enumerate(reversed(departments), start=1):
        network.node("500117", "decide", case_id, "--department", department, "--approve", "--reason", "同意")
        shown = network.node("500117", "show", case_id, "--json")
        assert sum(v == "pending" for v in shown["departments"].values()) == 3 - done
    assert shown["status"] == "approved"
    wait_for(network, T, case_id, "approved")
    network.sync(V)
    assert network.cases(V)[0]["status"] == "approved"


def test_window_work_through_the_command_lines(network: Network, tmp_path: Path) -> None:
    """The roster, a signed mandate, a 公示 pause, a return for rework, delivery and a bad
    rating at the township window, and the rectification that answers it."""
    form = tmp_path / "mandate.pdf"
    form.write_bytes(b"signed")
    taken = network.node(
        V,
        "intake",
        "--item",
        "twp-dibao-apply",
        "--applicant-name",
        "李四",
        "--applicant-id",
        IDS[0],
        "--mandate",
        str(form),
        "--json",
    )
    case_id = taken["case_id"]
    network.sync(V)
    submitted = network.node(T, "show", case_id, "--json")["events"][0]["payload"]
    assert submitted["mandate"] == {"agent": "agent", "form": "written"}
    network.node(T, "staff", "add", "--name", "赵一", "--window", "1", "--role", "A")
    assert [m["name"] for m in network.node(T, "staff", "list", "--json")] == ["赵一"]
    stranger = network.node(T, "accept", case_id, "--staff", "路人", check=False)
    assert stranger.returncode == 1 and t("refusal.not_on_roster") in stranger.stderr.decode()
    network.node(T, "accept", case_id, "--staff", "赵一")
    network.node(T, "pause", case_id, "--step", "公示", "--staff", "赵一")
    assert network.node(T, "show", case_id, "--json")["paused_step"] == "公示"
    network.node(T, "resume", case_id, "--staff", "赵一")
    network.node(T, "escalate", case_id, "--opinion", "初审通过", "--staff", "赵一")
    wait_for(network, "500117", case_id, "escalated")
    network.node("500117", "accept", case_id)
    network.node("500117", "return", case_id, "--reason", "补充入户调查")
    wait_for(network, T, case_id, "accepted")
    assert network.node(T, "show", case_id, "--json")["reason"] == "补充入户调查"
    network.node(T, "escalate", case_id, "--opinion", "已补充", "--staff", "赵一")
    wait_for(network, "500117", case_id, "escalated")
    network.node("500117", "accept", case_id)
    network.node("500117", "decide", case_id, "--approve", "--reason", "符合低保条件")
    wait_for(network, T, case_id, "approved")
    network.node(T, "deliver", case_id, "--staff", "赵一")
    network.node(T, "rate", case_id, "--score", "1", "--staff", "赵一")
    wait_for(network, "500117", case_id, "delivered")
    for _ in range(100):
        [record] = network.node("500117", "rectifications", "--json") or [None]
        if record:
            break
        time.sleep(0.1)
    assert record["case_id"] == case_id and record["kind"] == "bad_review"
    network.node("500117", "rectify", case_id, "--outcome", "已回访并改进")
    assert network.node("500117", "rectifications", "--json") == []
    report = network.node("500117", "supervise", "--json")
    assert report["rectifications"]["closed"] == 1 and report["satisfaction"]["bad_reviews"] == 1
    neither = network.node(T, "complain", "--text", "太慢", check=False)
    said = t("cli.error", message=t("cli.desk.case_or_window"))
    assert neither.returncode == 2 and neither.stderr.decode() == said + "\n"
    filed = network.node(T, "complain", "--window", "1", "--text", "窗口无人", "--staff", "赵一", "--json")
    assert [r["record"] for r in network.node(T, "rectifications", "--json")] == [filed["record"]]
    network.node(T, "rectify", "--record", filed["record"], "--outcome", "已调整值班", "--staff", "赵一")
    assert network.node(T, "rectifications", "--json") == []
