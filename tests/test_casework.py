"""The pure domain: ID checks, catalog and divisions validation, the case state machine."""

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from casework import (
    CaseState,
    Divisions,
    IllegalTransition,
    InvalidInput,
    Mandate,
    Request,
    answer_command,
    check_request,
    default_calendar,
    default_catalog,
    evolve,
    parse_catalog,
    submit,
    validate_resident_id,
)
from casework.clockfacts import CaseDates, follow, stamp
from casework.divisions import level_of_code
from casework.lifecycle import (
    ACCEPTED,
    CMD_COMPLAIN,
    CMD_RATE,
    CMD_SUPPLEMENT,
    CMD_WITHDRAW,
    COMMAND_REFUSED,
    CORRECTION_REQUESTED,
    DECIDED,
    DEPARTMENT_DECIDED,
    ESCALATED,
    MAX_TEXT,
    RATED,
    RETURNED,
    SUPPLEMENTED,
    WITHDRAWN,
)
from messages import refusal
from tests.conftest import DIVISIONS

T, V = "500117001", "500117001005"


def test_resident_id_check_digit() -> None:
    """A valid GB 11643 number passes (lower-case x normalised); a wrong check digit is refused."""
    assert validate_resident_id(" 11010519491231002x ") == "11010519491231002X"
    with pytest.raises(InvalidInput, match="check digit"):
        validate_resident_id("110105194912310021")
    with pytest.raises(InvalidInput, match="17 digits"):
        validate_resident_id("1101051949")


def test_default_catalog_holds_all_draft_items_at_both_levels() -> None:
    """The shipped catalog has the 33 draft items, some decided at each level."""
    catalog = default_catalog()
    assert len(catalog.items) == 33
    assert {item.decide_level for item in catalog.items.values()} == {"township", "district"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"committed_days": 99}, "committed_days exceeds"),
        ({"decide_level": "village"}, "accept_level/decide_level"),
        ({"statutory_days": -1}, "whole number"),
        ({"name": ""}, "'name' must be"),
    ],
)
def test_bad_catalog_field_is_named(change: dict[str, object], message: str) -> None:
    """Each bad field of a catalog item is refused with a message naming it."""
    item = default_catalog().items["twp-dibao-apply"].to_dict() | change
    with pytest.raises(InvalidInput, match=message):
        parse_catalog({"version": "x", "items": [item]})


AGENT = Mandate("李四")


def test_intake_lists_every_missing_material_at_once() -> None:
    """All required materials not handed in are listed together, in catalog order."""
    request = Request("twp-dibao-apply", "张三", "11010519491231002X", mandate=AGENT)
    checked = check_request(default_catalog(), request)
    assert checked.missing_materials == [
        m.name for m in default_catalog().items["twp-dibao-apply"].materials if m.required
    ]
    assert len(checked.missing_materials) > 1


def test_intake_refuses_item_taken_only_at_township_window() -> None:
    """An item accepted at the township window cannot be taken at a village."""
    with pytest.raises(InvalidInput, match="township window"):
        request = Request("twp-sscard-apply", "张三", "11010519491231002X", mandate=AGENT)
        check_request(default_catalog(), request)


@pytest.mark.parametrize("mandate", [None, Mandate(""), Mandate("李四", "by phone")])
def test_intake_refuses_a_request_without_the_applicants_authorisation(mandate: Mandate | None) -> None:
    """The agent acts for the villager only with their authorisation (代办授权), recorded at
    intake: in person or by a signed form, and naming the agent."""
    request = Request("twp-pension-enroll", "张三", "11010519491231002X", mandate=mandate)
    with pytest.raises(InvalidInput, match=r"authorisation|mandate form"):
        check_request(default_catalog(), request)


def test_divisions_refuse_unknown_codes_and_wrong_levels() -> None:
    """Codes outside the district, and a village where a township is wanted, are refused."""
    known = Divisions.from_csv(DIVISIONS)
    assert len(known.of_level("township")) == 30 and len(known.of_level("village")) == 419
    with pytest.raises(InvalidInput, match="not a division"):
        known.require("500117999", "township")
    with pytest.raises(InvalidInput, match="is a village"):
        known.require(V, "township")


def test_a_mistyped_division_code_is_refused_in_the_users_words() -> None:
    """What the district's enrollment desk meets when a code is mistyped, worded by the catalog:
    not a code at all, not one of this district's, or a division of another level (the levels
    wanted worded too, with "or" between them)."""
    known = Divisions.from_csv(DIVISIONS)
    refused = []
    for attempt in (
        lambda: level_of_code("5001"),
        lambda: known.require("500117999", "township"),
        lambda: known.require("500117", "township", "village"),
    ):
        with pytest.raises(InvalidInput) as caught:
            attempt()
        refused.append(refusal(str(caught.value), caught.value.code, caught.value.fields))
    assert refused == [
        "5001 不是区划代码（应为 6、9 或 12 位数字）",
        "500117999 不是合川区（500117）的区划：请对照区划文件核对代码",
        "500117 是区县，此处应为乡镇（街道）或村（社区）",
    ]


def test_divisions_file_with_wrong_columns_is_refused(tmp_path: Path) -> None:
    """A file without the four columns is refused with what it must have."""
    bad = tmp_path / "bad.csv"
    bad.write_text("id,title\n1,x\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="code,name,parent_code,level") as refused:
        Divisions.from_csv(bad)
    worded = refusal(str(refused.value), refused.value.code, refused.value.fields)
    assert worded == f"{bad}：须有 code,name,parent_code,level 四列"


def new_case(decide_level: str) -> CaseState:
    return submit(
        "c1", {"village_code": V, "township_code": T, "item_code": "i", "decide_level": decide_level}
    )


def test_only_the_owner_changes_state() -> None:
    """A status event from a node that does not own the case is illegal."""
    with pytest.raises(IllegalTransition, match="owner is 500117001"):
        evolve(new_case("township"), ACCEPTED, {}, "500117")


def test_district_item_must_be_escalated_before_decision() -> None:
    """The township cannot decide a district item; after escalation the district owns it."""
    accepted = evolve(new_case("district"), ACCEPTED, {}, T)
    with pytest.raises(IllegalTransition, match="escalate"):
        evolve(accepted, DECIDED, {"approved": True}, T)
    escalated = evolve(accepted, ESCALATED, {}, T)
    assert (escalated.status, escalated.owner) == ("escalated", "500117")
    decided = evolve(evolve(escalated, ACCEPTED, {}, "500117"), DECIDED, {"approved": False}, "500117")
    assert decided.status == "rejected"


@pytest.mark.parametrize(
    ("event_type", "key"),
    [(CMD_WITHDRAW, "reason"), (CMD_COMPLAIN, "text"), (CMD_RATE, "comment"), (ESCALATED, "opinion")],
)
def test_free_text_longer_than_the_limit_is_refused(event_type: str, key: str) -> None:
    """A reason, complaint, comment or opinion of more than MAX_TEXT characters is refused,
    naming the field; one of MAX_TEXT characters is taken (review: 12 MB complaints)."""
    case = evolve(new_case("district"), ACCEPTED, {}, T)
    assert evolve(case, event_type, {key: "慢" * MAX_TEXT}, T).status
    with pytest.raises(IllegalTransition, match=f"the {key} is longer than {MAX_TEXT}") as refused:
        evolve(case, event_type, {key: "慢" * (MAX_TEXT + 1)}, T)
    assert refused.value.code == "too_long"


def test_intake_refuses_a_field_or_material_name_longer_than_the_limit() -> None:
    """What the agent types at intake is refused at the edge when it is too long."""
    base = Request("twp-dibao-apply", "张三", "11010519491231002X", mandate=AGENT)
    with pytest.raises(InvalidInput, match=f"field 'note' is longer than {MAX_TEXT}"):
        check_request(default_catalog(), replace(base, fields={"note": "x" * (MAX_TEXT + 1)}))
    with pytest.raises(InvalidInput, match="material's name is longer"):
        check_request(default_catalog(), replace(base, materials=("x" * (MAX_TEXT + 1),)))
    assert check_request(default_catalog(), replace(base, fields={"note": "x" * MAX_TEXT}))


def test_withdrawal_after_decision_is_refused_not_applied() -> None:
    """The owner answers a late withdrawal with a refusal; an early one withdraws."""
    case = new_case("township")
    assert answer_command(case, CMD_WITHDRAW, {"reason": "r"})[0] == WITHDRAWN
    decided = evolve(evolve(case, ACCEPTED, {}, T), DECIDED, {"approved": True}, T)
    kind, payload = answer_command(decided, CMD_WITHDRAW, {})
    assert kind == COMMAND_REFUSED and "approved" in payload["reason"]


def test_supplement_resumes_only_a_case_awaiting_correction() -> None:
    """Supplied materials make a case waiting for them accepted; otherwise they are refused."""
    case = evolve(new_case("township"), CORRECTION_REQUESTED, {"missing": ["照片"]}, T)
    assert answer_command(case, CMD_SUPPLEMENT, {"materials": []})[0] == SUPPLEMENTED
    assert evolve(case, SUPPLEMENTED, {"materials": []}, T).status == "accepted"
    assert answer_command(new_case("township"), CMD_SUPPLEMENT, {})[0] == COMMAND_REFUSED


def test_rating_needs_a_decision_and_a_score_from_1_to_5() -> None:
    """A rating before the decision, or with a score outside 1..5, is refused."""
    case = new_case("township")
    assert answer_command(case, CMD_RATE, {"score": 5})[0] == COMMAND_REFUSED
    decided = evolve(evolve(case, ACCEPTED, {}, T), DECIDED, {"approved": True}, T)
    assert answer_command(decided, CMD_RATE, {"score": 5})[0] == RATED
    assert answer_command(decided, CMD_RATE, {"score": 6})[0] == COMMAND_REFUSED


def test_joint_item_needs_every_department_and_one_rejection_rejects() -> None:
    """Departments of a joint item decide in parallel; all approvals approve, any rejection rejects."""
    payload = {
        "village_code": V,
        "township_code": T,
        "item_code": "i",
        "decide_level": "township",
        "joint_departments": ["民政", "残联", "财政"],
    }
    accepted = evolve(submit("c", payload), ACCEPTED, {}, T)
    with pytest.raises(IllegalTransition, match="each department decides"):
        evolve(accepted, DECIDED, {"approved": True}, T)
    two = evolve(
        evolve(accepted, DEPARTMENT_DECIDED, {"department": "财政", "approved": True}, T),
        DEPARTMENT_DECIDED,
        {"department": "民政", "approved": True},
        T,
    )
    assert (two.status, two.pending()) == ("accepted", ["残联"])
    assert evolve(two, DEPARTMENT_DECIDED, {"department": "残联", "approved": True}, T).status == "approved"
    rejected = evolve(accepted, DEPARTMENT_DECIDED, {"department": "残联", "approved": False}, T)
    assert rejected.status == "rejected"
    with pytest.raises(IllegalTransition, match="not a department still to decide"):
        evolve(two, DEPARTMENT_DECIDED, {"department": "财政", "approved": False}, T)


def test_a_joint_item_returned_for_rework_goes_to_every_department_afresh() -> None:
    """After a return for rework no earlier verdict stands: the reworked file is decided anew."""
    payload = {
        "village_code": V,
        "township_code": T,
        "item_code": "i",
        "decide_level": "district",
        "joint_departments": ["民政", "残联"],
    }
    at_district = evolve(
        evolve(evolve(submit("c", payload), ACCEPTED, {}, T), ESCALATED, {}, T), ACCEPTED, {}, "500117"
    )
    one = evolve(at_district, DEPARTMENT_DECIDED, {"department": "残联", "approved": True}, "500117")
    returned = evolve(one, RETURNED, {"reason": "补充调查"}, "500117")
    assert (returned.status, returned.owner, returned.pending()) == ("accepted", T, ["民政", "残联"])
    with pytest.raises(IllegalTransition, match="says what to rework"):
        evolve(one, RETURNED, {"reason": " "}, "500117")


def test_resuming_after_a_correction_always_leaves_running_deadlines() -> None:
    """A supplement that answers a notice given before acceptance starts the deadlines; an
    acceptance straight after a correction pushes them back and ends the pause."""
    cal, monday = default_calendar(), date(2026, 11, 23)
    paused = follow(
        CaseDates(), CORRECTION_REQUESTED, stamp(CORRECTION_REQUESTED, {}, CaseDates(), (1, 5), monday, cal)
    )
    resumed = follow(paused, SUPPLEMENTED, stamp(SUPPLEMENTED, {}, paused, (1, 5), date(2026, 11, 25), cal))
    assert (resumed.deadline, resumed.paused_on) == (date(2026, 11, 26), None)
    running = follow(CaseDates(), ACCEPTED, stamp(ACCEPTED, {}, CaseDates(), (1, 5), monday, cal))
    paused = follow(
        running, CORRECTION_REQUESTED, stamp(CORRECTION_REQUESTED, {}, running, (1, 5), monday, cal)
    )
    again = follow(paused, ACCEPTED, stamp(ACCEPTED, {}, paused, (1, 5), date(2026, 11, 25), cal))
    assert (again.deadline, again.paused_on) == (date(2026, 11, 26), None)


def test_a_rating_score_must_be_a_whole_number() -> None:
    """True or 1.0 is not a score."""
    case = new_case("township")
    decided = evolve(evolve(case, ACCEPTED, {}, T), DECIDED, {"approved": True}, T)
    for score in (True, 1.0):
        assert answer_command(decided, CMD_RATE, {"score": score})[0] == COMMAND_REFUSED
