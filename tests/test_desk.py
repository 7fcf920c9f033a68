"""Window work across three real nodes wired in-process: return for rework, law-excluded pauses,
delivery and ratings at the window, the roster (AB岗, 首席代表), refusals and rectification."""

import asyncio
import json
from datetime import date

import pytest
from typer.testing import CliRunner, Result

from casework import InvalidInput
from casework.lifecycle import (
    ACCEPTED,
    CMD_DELIVER,
    CMD_RATE,
    CMD_WITHDRAW,
    DECIDED,
    DEPARTMENT_DECIDED,
    ESCALATED,
    PAUSED,
    RECTIFIED,
    REFUSED,
    RESUMED,
    RETURNED,
)
from messages import t
from relay.queries import list_cases, show_case
from relay.staff import (
    act,
    add_member,
    complain_about_window,
    rectify_window,
    remove_member,
    serve_items,
)
from relay.supervision import supervise
from tests.test_relay_inprocess import intake, wire
from township_node.cli import app as township_cli
from village_agent import service as village

DIBAO = "twp-dibao-apply"  # district item; its 公示 is kept off the clock


async def statuses(net, case_id):
    return [
        ((await show_case(node, case_id)) or {}).get("status")
        for node in (net.village, net.township, net.district)
    ]


async def escalated_and_accepted(net, syncers):
    v_sync, t_sync, _ = syncers
    [case_id] = await intake(net.village, DIBAO)
    await v_sync.sync(5)
    assert (await act(net.township, [case_id], ACCEPTED, {}))[0].ok
    assert (await act(net.township, [case_id], ESCALATED, {"opinion": "初审通过"}))[0].ok
    await t_sync.sync(5)
    assert (await act(net.district, [case_id], ACCEPTED, {}))[0].ok
    return case_id


async def test_district_returns_a_case_for_rework_and_the_township_sends_it_again(net):
    """The district sends a case back with what to rework; the township owns it again, reworks
    it and escalates it once more; every tier shows the reason."""
    syncers = wire(net)
    v_sync, t_sync, _ = syncers
    case_id = await escalated_and_accepted(net, syncers)
    [returned] = await act(net.district, [case_id], RETURNED, {"reason": "请补充入户调查记录"})
    assert returned.ok and returned.status == "accepted"
    await t_sync.sync(5)
    await v_sync.sync(5)
    for node in (net.village, net.township, net.district):
        case = await show_case(node, case_id)
        assert (case["status"], case["owner"], case["reason"]) == (
            "accepted",
            net.township.config.code,
            "请补充入户调查记录",
        )
    refused = await act(net.district, [case_id], DECIDED, {"approved": True, "reason": "ok"})
    assert "owned by 500117001" in refused[0].error
    assert (await act(net.township, [case_id], ESCALATED, {"opinion": "已补充"}))[0].ok
    await t_sync.sync(5)
    assert (await show_case(net.district, case_id))["status"] == "escalated"


async def test_a_command_that_reached_the_district_after_it_returned_the_case_is_answered(net):
    """A withdrawal on its way up while the district returns the case is answered by the
    township, which owns the case again; every tier ends withdrawn."""
    syncers = wire(net)
    v_sync, t_sync, _ = syncers
    case_id = await escalated_and_accepted(net, syncers)
    await v_sync.sync(5)
    await village.command(net.village, case_id, CMD_WITHDRAW, {"reason": "不再需要"})
    await v_sync.sync(5)  # the township relays it: the district owns the case
    assert (await act(net.district, [case_id], RETURNED, {"reason": "补充材料"}))[0].ok
    await t_sync.sync(5)  # the command reaches the district after the return; the return comes down
    await t_sync.sync(5)
    await v_sync.sync(5)
    assert await statuses(net, case_id) == ["withdrawn"] * 3


async def test_a_law_excluded_step_stops_the_clock_and_moves_the_deadlines(net):
    """Pausing for 公示 keeps those working days off the clock: resuming moves both deadlines
    by the working days the case stood still; while paused it cannot move on."""
    v_sync, t_sync, _ = wire(net)
    [case_id] = await intake(net.village, DIBAO)
    await v_sync.sync(5)
    net.township.ledger.today = lambda: date(2026, 11, 23)
    await act(net.township, [case_id], ACCEPTED, {})
    before = await show_case(net.township, case_id)
    [wrong] = await act(net.township, [case_id], PAUSED, {"step": "专家评审"})
    assert "kept off the clock are 公示" in wrong.error
    net.township.ledger.today = lambda: date(2026, 11, 24)
    assert (await act(net.township, [case_id], PAUSED, {"step": "公示"}))[0].ok
    [blocked] = await act(net.township, [case_id], ESCALATED, {})
    assert "paused for 公示: resume it first" in blocked.error
    net.township.ledger.today = lambda: date(2026, 12, 1)  # five working days later
    assert (await act(net.township, [case_id], RESUMED, {}))[0].ok
    await v_sync.sync(5)
    await t_sync.sync(5)
    cal = net.township.ledger.calendar
    for node in (net.village, net.township, net.district):
        case = await show_case(node, case_id)
        assert case["deadline"] == cal.add_working_days(date.fromisoformat(before["deadline"]), 5).isoformat()
        assert (
            case["statutory_deadline"]
            == cal.add_working_days(date.fromisoformat(before["statutory_deadline"]), 5).isoformat()
        )
        assert (case["paused_on"], case["paused_step"]) == (None, None)


async def test_delivery_and_rating_at_the_township_window_reach_the_district_owner(net):
    """A district item's result handed over at the township window: the delivery and the
    rating travel up as commands and the district, the owner, records them; a bad rating
    opens a rectification record there, which a rectification closes once."""
    syncers = wire(net)
    v_sync, t_sync, _ = syncers
    case_id = await escalated_and_accepted(net, syncers)
    assert (await act(net.district, [case_id], DECIDED, {"approved": True, "reason": "符合条件"}))[0].ok
    await t_sync.sync(5)
    [handed] = await act(net.township, [case_id], CMD_DELIVER, {})
    assert handed.ok and handed.status == "approved"  # the district has yet to record it
    assert (await act(net.township, [case_id], CMD_RATE, {"score": 2}))[0].ok
    await t_sync.sync(5)
    await t_sync.sync(5)
    await v_sync.sync(5)
    assert await statuses(net, case_id) == ["delivered"] * 3
    report = await supervise(net.district, date(2026, 12, 1))
    [record] = report["rectifications"]["records"]
    assert record["case_id"] == case_id and record["kind"] == "bad_review"
    assert (await act(net.district, [case_id], RECTIFIED, {"outcome": "已回访，改进告知方式"}))[0].ok
    [again] = await act(net.district, [case_id], RECTIFIED, {"outcome": "再次"})
    assert "no open rectification record" in again.error
    assert (await supervise(net.district, date(2026, 12, 1)))["rectifications"]["closed"] == 1


async def test_roster_lets_a_and_b_act_and_the_chief_representative_decide_on_the_spot(net):
    """With a roster, only its staff act: A or B on their window's items, the department's
    chief representative on its items, deciding a request at once (当场办结)."""
    v_sync, _, _ = wire(net)
    first, second, third = await intake(net.village, n=3)  # twp-pension-enroll, 区人社局
    await v_sync.sync(5)
    await add_member(net.township, "赵一", "1", "A", "")
    await add_member(net.township, "钱二", "1", "B", "")
    await add_member(net.township, "孙三", "2", "A", "")
    department = net.township.ledger.catalog.items["twp-pension-enroll"].department
    await add_member(net.township, "周四", "9", "chief", department)
    await serve_items(net.township, "1", ["twp-pension-enroll"])
    await serve_items(net.township, "2", ["twp-elderly-card"])
    [stranger] = await act(net.township, [first], ACCEPTED, {}, "路人")
    assert "not on this center's staff roster" in stranger.error
    [elsewhere] = await act(net.township, [first], ACCEPTED, {}, "孙三")
    assert "window 2 does not serve item twp-pension-enroll" in elsewhere.error
    assert (await act(net.township, [first], ACCEPTED, {}, "钱二"))[0].ok  # B stands in for A
    [on_the_spot] = await act(net.township, [second], DECIDED, {"approved": True, "reason": "符合"}, "周四")
    assert on_the_spot.ok and on_the_spot.status == "approved"
    [not_yet] = await act(net.township, [third], DECIDED, {"approved": True, "reason": "符合"}, "赵一")
    assert "submitted cannot take case.decided" in not_yet.error
    history = [
        (e["type"], e["payload"].get("staff"), e["payload"].get("window"))
        for e in (await show_case(net.township, second))["events"]
    ]
    assert history[1:] == [("case.accepted", "周四", "9"), ("case.decided", "周四", "9")]
    by_case = {c["case_id"]: c["window"] for c in await list_cases(net.township)}
    assert by_case == {first: "500117001:1", second: "500117001:9", third: None}


async def test_refusing_a_request_says_why_and_ends_it(net):
    """不予受理: the owner refuses a request it will not accept, with the reason, and the
    village learns it."""
    v_sync, _, _ = wire(net)
    [case_id] = await intake(net.village)
    await v_sync.sync(5)
    [silent] = await act(net.township, [case_id], REFUSED, {"reason": " "})
    assert "says why" in silent.error
    assert (await act(net.township, [case_id], REFUSED, {"reason": "不属于本镇受理范围"}))[0].ok
    await v_sync.sync(5)
    case = await show_case(net.village, case_id)
    assert (case["status"], case["reason"]) == ("rejected", "不属于本镇受理范围")


async def test_a_complaint_against_a_window_is_a_rectification_record_of_its_own(net):
    """窗口投诉: a complaint about a window, not a case, opens a record due in 15 working days at
    the center running the window; supervision counts it until its outcome is recorded, once."""
    await add_member(net.township, "赵一", "1", "A", "")
    with pytest.raises(InvalidInput, match="no window '7'"):
        await complain_about_window(net.township, "7", "态度差", "赵一")
    net.township.ledger.today = lambda: date(2026, 11, 23)
    record = await complain_about_window(net.township, "1", "窗口无人", "赵一")
    report = await supervise(net.township, date(2026, 12, 15))
    assert report["rectifications"]["records"] == [
        {
            "record": record,
            "case_id": None,
            "kind": "window_complaint",
            "window": "500117001:1",
            "rectify_by": "2026-12-14",
            "outcome": None,
            "overdue": True,
        }
    ]
    await rectify_window(net.township, record, "已调整午间值班", "赵一")
    with pytest.raises(InvalidInput, match="not an open rectification record"):
        await rectify_window(net.township, record, "再次", "赵一")
    assert (await supervise(net.township, date(2026, 12, 15)))["rectifications"]["closed"] == 1


async def test_a_joint_items_departments_decide_through_their_own_staff(net):
    """With a roster, a department's verdict on a joint item comes from that department's
    chief representative only; a chief of a co-approving department decides nothing else."""
    syncers = wire(net)
    v_sync, t_sync, _ = syncers
    [case_id] = await intake(net.village, "twp-elderly-care-subsidy")  # 民政 leads; three co-approve
    await v_sync.sync(5)
    await act(net.township, [case_id], ACCEPTED, {})
    await act(net.township, [case_id], ESCALATED, {"opinion": "初审通过"})
    await t_sync.sync(5)
    item = net.district.ledger.catalog.items["twp-elderly-care-subsidy"]
    co_approver = item.joint_departments[0]
    await add_member(net.district, "吴A", "1", "A", "")
    await add_member(net.district, "郑首", "5", "chief", co_approver)
    [co_chief_accepts] = await act(net.district, [case_id], ACCEPTED, {}, "郑首")
    assert f"not of {item.department}" in co_chief_accepts.error
    assert (await act(net.district, [case_id], ACCEPTED, {}, "吴A"))[0].ok
    verdict = {"approved": True, "reason": "同意", "department": co_approver}
    [window_staff] = await act(net.district, [case_id], DEPARTMENT_DECIDED, verdict, "吴A")
    assert f"does not decide for {co_approver}" in window_staff.error
    assert (await act(net.district, [case_id], DEPARTMENT_DECIDED, verdict, "郑首"))[0].ok
    other = verdict | {"department": item.joint_departments[1]}
    [elsewhere] = await act(net.district, [case_id], DEPARTMENT_DECIDED, other, "郑首")
    assert "does not decide for" in elsewhere.error


async def test_once_a_roster_exists_emptying_it_lets_nobody_act(net):
    """Taking the last staff member off the roster does not switch the checks off (review)."""
    v_sync, _, _ = wire(net)
    [case_id] = await intake(net.village)
    await v_sync.sync(5)
    await add_member(net.township, "赵一", "1", "A", "")
    await remove_member(net.township, "赵一")
    [nobody] = await act(net.township, [case_id], ACCEPTED, {}, "赵一")
    assert "roster is empty" in nobody.error


@pytest.mark.parametrize("district_db", ["sqlite"], indirect=True)  # the township's roster only
async def test_a_supervisor_follows_complaints_up_but_handles_no_case(net, monkeypatch):
    """督查 on the command line: a supervisor needs no window (window staff do); their accept or
    decision is refused in one line, exit 1, the case untouched; their rectification of a bad
    review is taken and recorded under their name."""
    monkeypatch.setattr("relay.console.configure_logging", lambda *args, **kwargs: None)
    home = net.township.home
    net.township.config.save(home)

    async def cli(*args: str) -> Result:
        return await asyncio.to_thread(CliRunner().invoke, township_cli, [*args, "--home", str(home)])

    window_less = await cli("staff", "add", "--name", "吴A", "--role", "A")
    said = t("cli.error", message=t("refusal.needs_window", role=t("role.A")))
    assert window_less.exit_code == 2 and window_less.stderr == said + "\n"
    assert (await cli("staff", "add", "--name", "孙督", "--role", "supervisor")).stdout == t(
        "cli.desk.staff_added_no_window", name="孙督", role=t("role.supervisor")
    ) + "\n"
    await add_member(net.township, "赵一", "1", "A", "")
    listed = json.loads((await cli("staff", "list", "--json")).stdout)
    assert [(m["name"], m["window"], m["role"]) for m in listed] == [
        ("孙督", "", "supervisor"),
        ("赵一", "1", "A"),
    ]
    v_sync, _, _ = wire(net)
    rated, waiting = await intake(net.village, n=2)
    await v_sync.sync(5)
    for command in (["accept", waiting], ["decide", waiting, "--approve", "--reason", "符合"]):
        refused = await cli(*command, "--staff", "孙督")
        assert refused.exit_code == 1
        said = t("cli.error", message=f"{waiting}: {t('refusal.supervisor')}")  # in the user's language
        assert refused.stderr == said + "\n"
    assert (await show_case(net.township, waiting))["status"] == "submitted"
    assert (await act(net.township, [rated], ACCEPTED, {}, "赵一"))[0].ok
    assert (await act(net.township, [rated], DECIDED, {"approved": True, "reason": "符合"}, "赵一"))[0].ok
    assert (await act(net.township, [rated], CMD_RATE, {"score": 1}, "赵一"))[0].ok
    done = await cli("rectify", rated, "--outcome", "已回访", "--staff", "孙督")
    assert done.exit_code == 0, done.stderr
    [rectified] = [e for e in (await show_case(net.township, rated))["events"] if e["type"] == RECTIFIED]
    assert (rectified["payload"]["staff"], rectified["payload"]["role"]) == ("孙督", "supervisor")
    with pytest.raises(InvalidInput, match="no window '' here"):  # the supervisor's own "" is no window
        await complain_about_window(net.township, "", "无人", "孙督")
    record = await complain_about_window(net.township, "1", "窗口无人", "孙督")
    await rectify_window(net.township, record, "已调整值班", "孙督")
