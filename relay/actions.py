"""What window staff ask of a case, made into the event a staff command records: the same for
the command line (relay.deskcli) and the staff console (relay.deskweb). Pure: each checks what
was given and raises InvalidInput in one line; relay.staff.act then applies it as the signed-in
or named staff member. ``allowed`` says which of them the casework rules let a staff member
take on a case now."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from casework import CaseState, IllegalTransition, InvalidInput, Item, district_of, evolve
from casework.lifecycle import (
    ACCEPTED,
    ANSWERS,
    CMD_COMPLAIN,
    CMD_DELIVER,
    CMD_RATE,
    COMMANDS,
    CORRECTION_REQUESTED,
    DECIDED,
    DEPARTMENT_DECIDED,
    ESCALATED,
    PAUSED,
    RECTIFIED,
    REFUSED,
    RESUMED,
    RETURNED,
    SCORES,
)
from relay.staff import Actor


@dataclass(frozen=True, slots=True)
class Action:
    """One staff action: the event it records and what the event says."""

    event_type: str
    payload: dict[str, Any]


def said(text: str, what: str) -> str:
    """Text staff must give (a reason, an opinion), stripped; refused when empty."""
    if not text.strip():  # its code: say.reason for "the reason", and so on
        raise InvalidInput(f"{what} must not be empty", f"say.{what.removeprefix('the ')}")
    return text.strip()


def accept() -> Action:
    return Action(ACCEPTED, {})


def refuse(reason: str) -> Action:
    return Action(REFUSED, {"reason": said(reason, "the reason")})


def request_correction(missing: Sequence[str], note: str) -> Action:
    """One correction notice naming every missing material at once (一次性告知)."""
    named = [m.strip() for m in missing if m.strip()]
    if not named:
        raise InvalidInput("name at least one missing material", "missing")
    return Action(CORRECTION_REQUESTED, {"missing": named, "note": note.strip()})


def decide(approve: bool, reject: bool, reason: str, department: str | None = None) -> Action:
    """Approve or reject; for a joint item, as one of its departments."""
    if approve == reject:
        raise InvalidInput("say either approve or reject", "verdict")
    payload: dict[str, Any] = {"approved": approve, "reason": said(reason, "the reason")}
    if department:
        payload["department"] = department
    return Action(DEPARTMENT_DECIDED if department else DECIDED, payload)


def escalate(opinion: str) -> Action:
    """Send a district item up with the township's preliminary opinion (初审意见)."""
    return Action(ESCALATED, {"opinion": opinion.strip()})


def return_for_rework(reason: str) -> Action:
    return Action(RETURNED, {"reason": said(reason, "the reason")})


def pause(step: str, note: str) -> Action:
    return Action(PAUSED, {"step": step.strip(), "note": note})


def resume() -> Action:
    return Action(RESUMED, {})


def deliver() -> Action:
    return Action(CMD_DELIVER, {})


def rate(score: int, comment: str) -> Action:
    if score not in SCORES:
        raise InvalidInput("the score must be 1 (very dissatisfied) to 5 (very satisfied)", "score")
    return Action(CMD_RATE, {"score": score, "comment": comment})


def complain(text: str) -> Action:
    return Action(CMD_COMPLAIN, {"text": said(text, "the complaint")})


def rectify(outcome: str, record: str | None) -> Action:
    payload: dict[str, Any] = {"outcome": said(outcome, "the outcome")}
    if record:
        payload["of"] = record
    return Action(RECTIFIED, payload)


# What the console offers, in the order it shows them; each with a sample of its event.
_OFFERED = {
    "accept": accept(),
    "correction": Action(CORRECTION_REQUESTED, {"missing": ["-"]}),
    "decide": Action(DECIDED, {"approved": True, "reason": "-"}),
    "escalate": escalate(""),
    "return": return_for_rework("-"),
    "refuse": refuse("-"),
    "pause": pause("-", ""),
    "resume": resume(),
    "deliver": deliver(),
    "rate": rate(5, ""),
    "complain": complain("-"),
    "rectify": rectify("-", "-"),
}


DEPARTMENT_ACTION = ":"  # "decide:DEPARTMENT": a joint item's decision by one department


def allowed(
    state: CaseState, item: Item | None, actor: Actor, here: str, records: Sequence[str] = ()
) -> list[str]:
    """The actions (keys of the console's forms; a joint decision ``decide:DEPARTMENT``)
    that the casework rules let ``actor`` take now on a case of ``item`` at the node ``here``;
    ``records`` are the case's open rectification records."""
    found = []
    for name, action in _OFFERED.items():
        if (name == "pause" and not (item and item.excluded_steps)) or (name == "rectify" and not records):
            continue
        if name == "decide" and state.departments:
            found += [
                f"decide{DEPARTMENT_ACTION}{d}"
                for d in state.pending()
                if _may(state, item, actor, here, _joint(d))
            ]
        elif _may(state, item, actor, here, action):
            found.append(name)
    return found


def _joint(department: str) -> Action:
    return Action(DEPARTMENT_DECIDED, {"approved": True, "reason": "-", "department": department})


def _may(state: CaseState, item: Item | None, actor: Actor, here: str, action: Action) -> bool:
    try:
        actor.check(item, action.event_type, action.payload)
        if action.event_type in (DECIDED, DEPARTMENT_DECIDED) and actor.on_the_spot(state):
            state = evolve(state, ACCEPTED, {}, here)  # 当场办结: accepted and decided at once
        if action.event_type in COMMANDS:  # handed in here, answered by the case's owner
            return _answered(state, action, here)
        evolve(state, action.event_type, action.payload, here)
    except IllegalTransition:
        return False
    return True


def _answered(state: CaseState, action: Action, here: str) -> bool:
    """Whether the owner takes a command handed in at ``here``: the owner is this node, or
    its upstream (the district, for a township window) to which the command travels."""
    upstream = district_of(state.village_code) if here == state.township_code else None
    if state.owner not in (here, upstream):
        return False
    evolve(state, ANSWERS[action.event_type], action.payload, state.owner)
    return True
