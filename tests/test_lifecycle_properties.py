"""Property-based tests for the pure case state machine (casework.lifecycle) and its clock facts."""

from dataclasses import astuple
from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from casework import IllegalTransition, answer_command, default_calendar, evolve, submit
from casework.clockfacts import CaseDates, follow, stamp, yellow_from
from casework.deadlines import running_light
from casework.lifecycle import (
    ACCEPTED,
    ANSWERS,
    CMD_DELIVER,
    CMD_WITHDRAW,
    COMMAND_REFUSED,
    COMMANDS,
    COMPLAINT_FILED,
    CORRECTION_REQUESTED,
    DECIDED,
    DELIVERED,
    ESCALATED,
    PAUSED,
    RATED,
    RECTIFIED,
    REFUSED,
    RETURNED,
    STATUS_EVENTS,
    STATUSES,
    SUPPLEMENTED,
    WITHDRAWN,
    CaseState,
)

VILLAGE, TOWNSHIP, DISTRICT, OUTSIDER = "500117001005", "500117001", "500117", "500117002"
ACTORS = (VILLAGE, TOWNSHIP, DISTRICT, OUTSIDER)
FINAL = frozenset({"withdrawn", "delivered"})
CALENDAR = default_calendar()
PROPS = settings(max_examples=300, deadline=None, derandomize=True, database=None)

# Mostly valid payloads, with some that the machine must refuse; a step picks one by its index.
PAYLOADS: dict[str, list[dict[str, Any]]] = {
    DECIDED: [{"approved": True}, {"approved": False}],
    RATED: [{"score": score} for score in range(7)],
    COMPLAINT_FILED: [{"text": "办理太慢"}, {"text": "  "}, {}],
    SUPPLEMENTED: [{"materials": []}, {"materials": [{"name": "身份证"}]}, {"materials": "x"}],
    PAUSED: [{"step": "公示"}, {"step": " "}, {}],
    REFUSED: [{"reason": "不符合申请条件"}, {"reason": ""}],
    RETURNED: [{"reason": "请补充入户调查"}, {}],
    RECTIFIED: [{"of": "500117:1", "outcome": "已电话回访并整改"}, {"of": "500117:1"}],
}


def payload_for(kind: str, index: int) -> dict[str, Any]:
    options = PAYLOADS.get(ANSWERS.get(kind, kind), [{}])
    return dict(options[index % len(options)])


# Every actor, event and command can be drawn. OWNER stands for whichever of the township and the
# district owns the case at that step, so that sequences get far (district, delivery, rating); the steps
# that move a case on are drawn more often, withdrawal (which ends it) less often.
OWNER = "owner"
PROGRESS = (ACCEPTED, CORRECTION_REQUESTED, SUPPLEMENTED, ESCALATED, DECIDED, DELIVERED, CMD_DELIVER)
OTHERS = tuple(sorted((STATUS_EVENTS | COMMANDS) - {*PROGRESS, WITHDRAWN, CMD_WITHDRAW}))
kinds = st.sampled_from(PROGRESS * 6 + OTHERS * 2 + (WITHDRAWN, CMD_WITHDRAW))
actors = st.sampled_from(ACTORS + (OWNER,) * 4)
actions = st.lists(
    st.tuples(actors, kinds, st.integers(0, 6)).map(lambda t: (t[0], t[1], payload_for(t[1], t[2]))),
    min_size=20,
    max_size=60,
)
decide_levels = st.sampled_from(["township", "district"])


def new_case(decide_level: str) -> CaseState:
    payload = {
        "village_code": VILLAGE,
        "township_code": TOWNSHIP,
        "item_code": "X1",
        "decide_level": decide_level,
    }
    return submit("case-1", payload)


def attempt(
    state: CaseState, actor: str, kind: str, payload: dict[str, Any]
) -> tuple[str, dict[str, Any], str]:
    """The status event (type, payload, origin) an action becomes; commands are answered by the owner."""
    if kind in COMMANDS:
        answer, answer_payload = answer_command(state, kind, payload)
        return answer, answer_payload, state.owner
    return kind, payload, state.owner if actor == OWNER else actor


def run(decide_level: str, steps: list[tuple[str, str, dict[str, Any]]]) -> tuple[CaseState, list[Any]]:
    """Play the actions, keeping the state on a refusal; return the final state and the accepted events."""
    state, accepted = new_case(decide_level), []
    for actor, kind, payload in steps:
        event = attempt(state, actor, kind, payload)
        try:
            state = evolve(state, *event)
        except IllegalTransition:
            continue
        accepted.append(event)
    return state, accepted


@PROPS
@given(decide_levels, actions)
def test_no_action_sequence_reaches_an_illegal_state(decide_level: str, steps: list[Any]) -> None:
    """No sequence of attempted events and commands, by any actor, leaves the case in an illegal state."""
    state = new_case(decide_level)
    escalated = False
    for actor, kind, payload in steps:
        before, snapshot = state, astuple(state)
        event_type, event_payload, origin = attempt(state, actor, kind, payload)
        try:
            state = evolve(state, event_type, event_payload, origin)
        except IllegalTransition:
            assert state is before and astuple(before) == snapshot, "a refused step changed the state"
            continue
        assert astuple(before) == snapshot, "evolve mutated the previous state"
        if event_type == COMMAND_REFUSED:
            assert state == before
        if state.status == "escalated" and before.status != "escalated":
            assert decide_level == "district", "a township item was escalated"
            escalated = True
        assert state.status in STATUSES
        assert state.owner in (TOWNSHIP, DISTRICT)
        if state.owner == DISTRICT:
            assert decide_level == "district" and escalated, "the district owns a case never escalated to it"
        if before.status in FINAL:
            assert state.status == before.status, f"a {before.status} case became {state.status}"
        if state.status in ("approved", "rejected") and state.status != before.status:
            refused = event_type == REFUSED and before.status in ("submitted", "correction_requested")
            assert before.status == "accepted" or refused, f"{state.status} followed {before.status}"
        if state.paused_step:
            assert state.status == "accepted", f"a {state.status} case is paused"
            assert not before.paused_step or state.status == before.status, "a paused case moved on"
        if event_type == RETURNED:
            assert (before.owner, state.owner, state.status) == (DISTRICT, TOWNSHIP, "accepted")
        assert (state.case_id, state.village_code, state.township_code, state.decide_level) == (
            before.case_id,
            before.village_code,
            before.township_code,
            before.decide_level,
        )


@PROPS
@given(decide_levels, actions)
def test_replaying_the_accepted_events_gives_the_same_state(decide_level: str, steps: list[Any]) -> None:
    """Replaying the accepted events in order from submit gives an equal state, every time."""
    final, accepted = run(decide_level, steps)
    replays = []
    for _ in range(2):
        state = new_case(decide_level)
        for event in accepted:
            state = evolve(state, *event)
        replays.append(state)
    assert replays[0] == replays[1] == final


@PROPS
@given(decide_levels, actions, st.sampled_from(sorted(COMMANDS)), st.integers(0, 6))
def test_a_command_is_answered_by_its_event_or_a_reasoned_refusal(
    decide_level: str, steps: list[Any], cmd: str, variant: int
) -> None:
    """answer_command gives ANSWERS[cmd] or a reasoned refusal, and the owner can always evolve with it."""
    state, _ = run(decide_level, steps)
    answer, answer_payload = answer_command(state, cmd, payload_for(cmd, variant))
    assert answer in (ANSWERS[cmd], COMMAND_REFUSED)
    if answer == COMMAND_REFUSED:
        assert answer_payload["command"] == cmd
        assert isinstance(answer_payload["reason"], str) and answer_payload["reason"].strip()
    after = evolve(state, answer, answer_payload, state.owner)
    if answer == COMMAND_REFUSED:
        assert after == state


limits = st.integers(0, 40).flatmap(
    lambda committed: st.tuples(st.just(committed), st.integers(committed, 40))
)
days = st.dates(date(2024, 1, 1), date(2027, 12, 31))


def accepted_dates(limit: tuple[int, int], today: date) -> CaseDates:
    return follow(CaseDates(), ACCEPTED, stamp(ACCEPTED, {}, CaseDates(), limit, today, CALENDAR))


@PROPS
@given(limits, days)
def test_acceptance_fixes_ordered_deadlines(limit: tuple[int, int], today: date) -> None:
    """On acceptance, today <= committed deadline <= statutory deadline, each the right working days away."""
    dates = accepted_dates(limit, today)
    assert dates.deadline is not None and dates.statutory_deadline is not None
    assert today <= dates.deadline <= dates.statutory_deadline
    assert CALENDAR.working_days_between(today, dates.deadline) == limit[0]
    assert CALENDAR.working_days_between(today, dates.statutory_deadline) == limit[1]


@PROPS
@given(limits, days, st.integers(0, 60), st.integers(0, 30))
def test_a_supplement_pushes_deadlines_back_by_the_paused_working_days(
    limit: tuple[int, int], today: date, to_correction: int, to_supplement: int
) -> None:
    """A correction then a supplement k working days later pushes both deadlines back by exactly k."""
    accepted = accepted_dates(limit, today)
    paused_on = today + timedelta(days=to_correction)
    supplied_on = paused_on + timedelta(days=to_supplement)
    k = CALENDAR.working_days_between(paused_on, supplied_on)
    payload = stamp(CORRECTION_REQUESTED, {}, accepted, limit, paused_on, CALENDAR)
    paused = follow(accepted, CORRECTION_REQUESTED, payload)
    assert paused.paused_on == paused_on
    payload = stamp(SUPPLEMENTED, {"materials": []}, paused, limit, supplied_on, CALENDAR)
    resumed = follow(paused, SUPPLEMENTED, payload)
    assert resumed.paused_on is None
    for old, new in (
        (accepted.deadline, resumed.deadline),
        (accepted.statutory_deadline, resumed.statutory_deadline),
    ):
        assert old is not None and new is not None and old <= new
        assert CALENDAR.working_days_between(old, new) == k
        assert new == CALENDAR.add_working_days(old, k)


@PROPS
@given(
    st.dates(date(2024, 1, 1), date(2026, 12, 31)),
    st.integers(0, 40),
    st.integers(0, 80),
)
def test_yellow_from_agrees_with_the_running_light(accepted: date, committed_days: int, offset: int) -> None:
    """The stored first yellow day gives the same light as counting working days each day."""
    deadline = CALENDAR.add_working_days(accepted, committed_days)
    yellow_on = yellow_from(deadline, committed_days, CALENDAR)
    today = accepted + timedelta(days=offset)
    if today <= deadline:
        light = running_light(today, deadline, deadline + timedelta(days=365), committed_days, CALENDAR)
        assert (light == "yellow") == (today >= yellow_on), (today, yellow_on, light)
