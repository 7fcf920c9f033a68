"""The case state machine: which event may follow which, and who may make it.

A case has one owner at a time, the node that must act next. Only the owner makes status
events; other nodes send commands (``cmd.*``) that the owner turns into a status event or a
refusal. Everything here is pure: the same events in the same order give the same state.
"""

from dataclasses import dataclass, replace
from typing import Any

from casework.divisions import district_of
from casework.errors import IllegalTransition

SUBMITTED = "case.submitted"
ACCEPTED = "case.accepted"
CORRECTION_REQUESTED = "case.correction_requested"
ESCALATED = "case.escalated"
DECIDED = "case.decided"
DELIVERED = "case.delivered"
WITHDRAWN = "case.withdrawn"
DEPARTMENT_DECIDED = "case.department_decided"
SUPPLEMENTED = "case.supplemented"
RATED = "case.rated"
COMPLAINT_FILED = "case.complaint_filed"
COMMAND_REFUSED = "case.command_refused"
REFUSED = "case.refused"  # not accepted (不予受理), with the reason
RETURNED = "case.returned"  # the district sends a case back to its township for rework
PAUSED = "case.paused"  # a step the law keeps off the clock begins (公示, 鉴定, 专家评审)
RESUMED = "case.resumed"
RECTIFIED = "case.rectified"  # the outcome of a rectification record (bad review, complaint)
CMD_DELIVER = "cmd.deliver"
CMD_WITHDRAW = "cmd.withdraw"
CMD_SUPPLEMENT = "cmd.supplement"
CMD_RATE = "cmd.rate"
CMD_COMPLAIN = "cmd.complain"

STATUS_EVENTS = frozenset(
    {
        ACCEPTED,
        CORRECTION_REQUESTED,
        SUPPLEMENTED,
        ESCALATED,
        DECIDED,
        DEPARTMENT_DECIDED,
        DELIVERED,
        WITHDRAWN,
        RATED,
        COMPLAINT_FILED,
        COMMAND_REFUSED,
        REFUSED,
        RETURNED,
        PAUSED,
        RESUMED,
        RECTIFIED,
    }
)
MAX_TEXT = 2000  # characters of free text in one field of an event or a request
FREE_TEXT = ("reason", "note", "comment", "text", "opinion", "outcome")
# What the owner makes of each command when the case's state allows it.
# The fields of a command its answer carries over (nothing else: who acted is the owner).
_ANSWER_FIELDS: dict[str, tuple[str, ...]] = {
    CMD_DELIVER: (),
    CMD_WITHDRAW: ("reason",),
    CMD_SUPPLEMENT: ("materials",),
    CMD_RATE: ("score", "comment"),
    CMD_COMPLAIN: ("text",),
}
ANSWERS = {
    CMD_DELIVER: DELIVERED,
    CMD_WITHDRAW: WITHDRAWN,
    CMD_SUPPLEMENT: SUPPLEMENTED,
    CMD_RATE: RATED,
    CMD_COMPLAIN: COMPLAINT_FILED,
}
COMMANDS = frozenset(ANSWERS)
EVENT_TYPES = STATUS_EVENTS | COMMANDS | {SUBMITTED}

STATUSES = (
    "submitted",
    "accepted",
    "correction_requested",
    "escalated",
    "approved",
    "rejected",
    "delivered",
    "withdrawn",
)
_OPEN = frozenset({"submitted", "accepted", "correction_requested", "escalated"})
_DECIDED = frozenset({"approved", "rejected"})
SCORES = range(1, 6)  # 非常不满意 (1) … 非常满意 (5)


@dataclass(frozen=True, slots=True)
class CaseState:
    case_id: str
    item_code: str
    status: str
    owner: str
    village_code: str
    township_code: str
    decide_level: str
    # Joint items (并联审批): each listed department's verdict, "pending", "approved" or
    # "rejected"; empty for an item one body decides.
    departments: tuple[tuple[str, str], ...] = ()
    # The law-excluded step the case is paused for (公示 …); empty while the clock runs.
    paused_step: str = ""

    def pending(self) -> list[str]:
        return [name for name, verdict in self.departments if verdict == "pending"]


def submit(case_id: str, payload: dict[str, Any]) -> CaseState:
    """The state a new case starts in: taken at the village, owned by its township."""
    try:
        village, township = str(payload["village_code"]), str(payload["township_code"])
        item, decide_level = str(payload["item_code"]), str(payload["decide_level"])
    except KeyError as exc:
        raise IllegalTransition(f"{SUBMITTED} payload lacks {exc.args[0]!r}") from exc
    if decide_level not in ("township", "district"):
        raise IllegalTransition(f"decide_level {decide_level!r} must be township or district")
    joint = payload.get("joint_departments", [])
    if not isinstance(joint, list) or not all(isinstance(name, str) and name for name in joint):
        raise IllegalTransition("joint_departments must be a list of department names")
    departments = tuple((name, "pending") for name in dict.fromkeys(joint))
    return CaseState(case_id, item, "submitted", township, village, township, decide_level, departments)


def check_text(payload: dict[str, Any]) -> None:
    """Free text typed by people (a reason, note, comment, complaint, opinion, outcome) is at
    most MAX_TEXT characters; IllegalTransition naming the field otherwise."""
    for key in FREE_TEXT:
        value = payload.get(key)
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise IllegalTransition(
                f"the {key} is longer than {MAX_TEXT} characters: shorten it", "too_long", most=MAX_TEXT
            )


def evolve(state: CaseState, event_type: str, payload: dict[str, Any], origin: str) -> CaseState:
    """The state after a status event made at ``origin``; IllegalTransition if not allowed."""
    check_text(payload)
    if event_type in COMMANDS:
        return state
    if event_type not in STATUS_EVENTS:
        raise IllegalTransition(f"unknown event type {event_type!r}")
    if origin != state.owner:
        raise IllegalTransition(
            f"{event_type} by {origin}, but the case's owner is {state.owner}", "not_owner", owner=state.owner
        )
    if event_type == COMMAND_REFUSED:
        return state
    if event_type == RECTIFIED:
        record, outcome = payload.get("of"), payload.get("outcome")
        named = isinstance(record, str) and 0 < len(record) <= 64
        if not (named and isinstance(outcome, str) and outcome.strip()):
            raise IllegalTransition(
                "a rectification names the record it closes and its outcome", "rectify_what"
            )
        return state
    if event_type in (PAUSED, RESUMED):
        return _pause_or_resume(state, event_type, payload)
    if state.paused_step and event_type in _WAITS_FOR_RESUME:
        raise IllegalTransition(
            f"the case is paused for {state.paused_step}: resume it first", "paused", step=state.paused_step
        )
    if event_type == DEPARTMENT_DECIDED:
        return _department_decides(state, payload)
    status, owner = _next(state, event_type, payload)
    paused_step = "" if status == "withdrawn" else state.paused_step
    after = replace(state, status=status, owner=owner, paused_step=paused_step)
    if event_type == RETURNED:  # the reworked file goes to every department afresh
        return replace(after, departments=tuple((name, "pending") for name, _ in state.departments))
    return after


# What cannot happen while a law-excluded step runs; withdrawal and comments still can.
_WAITS_FOR_RESUME = frozenset(
    {ACCEPTED, CORRECTION_REQUESTED, ESCALATED, DECIDED, DEPARTMENT_DECIDED, RETURNED, REFUSED}
)


def _pause_or_resume(state: CaseState, event_type: str, payload: dict[str, Any]) -> CaseState:
    if event_type == PAUSED:
        step = str(payload.get("step", "")).strip()
        if state.status != "accepted":
            raise IllegalTransition(
                f"only an accepted case can pause; this one is {state.status}",
                "pause_status",
                status=state.status,
            )
        if state.paused_step:
            raise IllegalTransition(
                f"the case is paused for {state.paused_step} already",
                "paused_already",
                step=state.paused_step,
            )
        if not step:
            raise IllegalTransition("a pause names the step the law keeps off the clock", "pause_step")
        return replace(state, paused_step=step[:64])
    if not state.paused_step:
        raise IllegalTransition("the case is not paused", "not_paused")
    return replace(state, paused_step="")


def _department_decides(state: CaseState, payload: dict[str, Any]) -> CaseState:
    """One department of a joint item decides; the case is approved once all have approved,
    rejected as soon as one rejects. Departments decide in parallel, in any order."""
    department = payload.get("department")
    if state.status != "accepted" or _decider(state) != state.owner:
        raise IllegalTransition(
            f"a case that is {state.status} at {state.owner} cannot take a department's decision",
            "wrong_status",
            status=state.status,
            event=DEPARTMENT_DECIDED,
        )
    if department not in state.pending():
        pending = ", ".join(state.pending())
        raise IllegalTransition(
            f"{department!r} is not a department still to decide: {pending}",
            "decided_already",
            pending=pending,
        )
    verdict = "approved" if payload.get("approved") else "rejected"
    departments = tuple((n, verdict if n == department else v) for n, v in state.departments)
    settled = replace(state, departments=departments)
    if verdict == "rejected":
        return replace(settled, status="rejected")
    return replace(settled, status="approved") if not settled.pending() else settled


def _next(state: CaseState, event_type: str, payload: dict[str, Any]) -> tuple[str, str]:
    current = state.status
    if event_type == ACCEPTED and current in ("submitted", "escalated", "correction_requested"):
        return "accepted", state.owner
    if event_type == CORRECTION_REQUESTED and current in ("submitted", "accepted"):
        return "correction_requested", state.owner
    if event_type == ESCALATED and current == "accepted" and state.owner == state.township_code:
        if state.decide_level != "district":
            raise IllegalTransition(
                "this item is decided at the township: decide it, do not escalate", "decide_here"
            )
        return "escalated", district_of(state.village_code)
    if event_type == DECIDED and current == "accepted":
        if _decider(state) != state.owner:
            raise IllegalTransition(
                "this item is decided at the district: escalate it first", "escalate_first"
            )
        if state.departments:
            pending = ", ".join(state.pending())
            raise IllegalTransition(
                f"a joint item: each department decides ({pending})", "joint", pending=pending
            )
        return ("approved" if payload.get("approved") else "rejected"), state.owner
    if event_type == DELIVERED and current in _DECIDED:
        return "delivered", state.owner
    if event_type == WITHDRAWN and current in _OPEN:
        return "withdrawn", state.owner
    if event_type == REFUSED and current in ("submitted", "correction_requested"):
        if not str(payload.get("reason", "")).strip():
            raise IllegalTransition(
                "a refusal says why the request cannot be accepted (--reason)", "say.reason"
            )
        return "rejected", state.owner
    if event_type == RETURNED and current in ("escalated", "accepted") and state.owner != state.township_code:
        if not str(payload.get("reason", "")).strip():
            raise IllegalTransition("a return for rework says what to rework (--reason)", "say.reason")
        return "accepted", state.township_code  # back at the township, which reworks it
    if event_type == SUPPLEMENTED and current == "correction_requested":
        materials = payload.get("materials")
        if not isinstance(materials, list) or not all(isinstance(m, dict) for m in materials):
            raise IllegalTransition("a supplement lists the materials handed in")
        return "accepted", state.owner  # materials complete: the case is accepted and resumes
    if event_type == RATED and current in (*_DECIDED, "delivered"):
        score = payload.get("score")
        if type(score) is not int or score not in SCORES:
            raise IllegalTransition("a rating is a score from 1 to 5", "score")
        return current, state.owner
    if event_type == COMPLAINT_FILED:
        if not str(payload.get("text", "")).strip():
            raise IllegalTransition("a complaint needs its text", "say.complaint")
        return current, state.owner
    raise IllegalTransition(
        f"a case that is {current} cannot take {event_type}", "wrong_status", status=current, event=event_type
    )


def _decider(state: CaseState) -> str:
    return state.township_code if state.decide_level == "township" else district_of(state.village_code)


def answer_command(state: CaseState, command: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What the owner makes of a command: the status event it causes, or a refusal."""
    wanted = ANSWERS.get(command)
    if wanted is None:
        raise IllegalTransition(f"unknown command {command!r}")
    try:
        _next(state, wanted, payload)
    except IllegalTransition as exc:
        return COMMAND_REFUSED, {"command": command, "reason": str(exc)}
    return wanted, {key: payload[key] for key in _ANSWER_FIELDS[command] if key in payload}
