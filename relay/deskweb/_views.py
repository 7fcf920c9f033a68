"""The staff console's pages as HTML, from data already read (see _data)."""

from collections.abc import Callable, Sequence
from typing import Any

from messages import t
from relay.actions import DEPARTMENT_ACTION
from relay.deskweb._data import QUEUE_LIMIT, CaseView
from relay.staff import Actor
from relay.web import Cell, badge, esc, event_note, href, link, table, when_iso

# Who acted is a column of its own; the rest of an event's payload is its details.


def whoami(actor: Actor) -> str:
    role = t(f"role.{actor.role}")
    where = t("console.chief_of", department=actor.department) if actor.role == "chief" else ""
    if actor.window:
        said = t("console.whoami", name=actor.name, window=actor.window, role=role)
    else:  # a supervisor works at no window
        said = t("console.whoami_nowhere", name=actor.name, role=role)
    return f'<p class="note whoami">{esc(said)}{esc(where) if where else ""}</p>'


def queue(actor: Actor, rows: Sequence[dict[str, Any]], prefix: str, item_name: Callable[[str], str]) -> str:
    """The window's open cases, the most urgent first."""
    body = [
        [
            link(href(*_parts(prefix), "case", row["case_id"]), row["case_id"]),
            esc(item_name(row["item_code"])),
            esc(t(f"status.{row['status']}")),
            esc(row["village_code"]),
            when_iso(row["created_at"]),
            esc(row["deadline"]),
            esc(row["statutory_deadline"]),
            badge("l", row["light"]),
            *([esc(row["window"])] if actor.sees_all else []),  # whose case it is, for who sees all
        ]
        for row in rows
    ]
    headers = (
        "col.case",
        "col.item",
        "col.status",
        "col.village",
        "col.created",
        "col.deadline",
        "col.statutory",
        "col.light",
        *(("col.window",) if actor.sees_all else ()),
    )
    listing = table(headers, body, "queue") if rows else f"<p>{esc(t('console.empty'))}</p>"
    scope = "console.scope_all" if actor.sees_all else "console.scope_window"
    note = t(scope) + (t("console.limit", n=QUEUE_LIMIT) if len(rows) >= QUEUE_LIMIT else "")
    return f'{whoami(actor)}{listing}<p class="note">{esc(note)}</p>'


def case_page(view: CaseView, actor: Actor, prefix: str, token: str, message: tuple[str, str] | None) -> str:
    """One case: where it stands, its materials, the actions ``actor`` may take, its history."""
    found = view.case
    shown = _shown(message)
    facts = table(
        ("col.applicant", "col.id_number", "col.item", "col.status", "col.village", "col.window"),
        [
            [
                esc(view.applicant),
                esc(view.id_number),
                esc(view.item.name if view.item else found["item_code"]),
                esc(t(f"status.{found['status']}")),
                esc(found["village_code"]),
                esc(found["window"]),
            ]
        ],
    )
    limits = table(
        ("col.created", "col.deadline", "col.statutory", "col.light", "col.reason"),
        [
            [
                when_iso(found["created_at"]),
                esc(found["deadline"]),
                esc(found["statutory_deadline"]),
                badge("l", view.light),
                esc(found["reason"]),
            ]
        ],
    )
    target = href(*_parts(prefix), "case", found["case_id"])
    return (
        f"{shown}{whoami(actor)}{facts}{limits}"
        f"<h2>{esc(t('console.materials'))}</h2>{_materials(view)}"
        f"<h2>{esc(t('console.actions'))}</h2>{_actions(view, target, token)}"
        f"<h2>{esc(t('case.events'))}</h2>{_history(found['events'])}"
    )


def _materials(view: CaseView) -> str:
    missing = _missing(view)
    listed = view.item.materials if view.item else ()
    rows: list[list[Cell]] = [
        [
            esc(m.name),
            esc(m.form),
            esc(t("console.required") if m.required else t("console.optional")),
            (esc(t("console.missing")), "l-yellow") if m.name in missing else esc(None),
        ]
        for m in listed
    ]
    rows += [
        [esc(name), esc(None), esc(None), (esc(t("console.missing")), "l-yellow")]
        for name in sorted(missing - {m.name for m in listed})
    ]
    return table(("console.material", "console.form", "console.kind", "console.state"), rows, "materials")


def _actions(view: CaseView, target: str, token: str) -> str:
    if not view.allowed:
        return f'<p class="note">{esc(t("console.no_actions"))}</p>'
    forms = "".join(_form(name, view, target, token) for name in view.allowed)
    return f'<div class="actions">{forms}</div>'


def _form(name: str, view: CaseView, target: str, token: str) -> str:
    action, _, department = name.partition(DEPARTMENT_ACTION)
    title = t(f"console.action.{action}") + (f"：{department}" if department else "")
    fields = f'<input type="hidden" name="token" value="{esc(token)}">' + _FIELDS[action](view, department)
    return (
        f'<form class="action {esc(action)}" method="post" action="{target}/{action}">'
        f"<h3>{esc(title)}</h3>{fields}"
        f'<button type="submit">{esc(t("console.submit"))}</button></form>'
    )


def _correction(view: CaseView, department: str) -> str:
    """Every material to tick, what the case lacks already ticked, and the one note."""
    missing = _missing(view)
    return (
        f'<p class="note">{esc(t("console.pick"))}</p>'
        + "".join(
            f'<label><input type="checkbox" name="m{i}" value="1"{" checked" if m.name in missing else ""}> '
            f"{esc(m.name)}（{esc(m.form)}）</label>"
            for i, m in enumerate(view.item.materials if view.item else ())
        )
        + _text("note", "console.note", required=False)
    )


def _decision(view: CaseView, department: str) -> str:
    named = f'<input type="hidden" name="department" value="{esc(department)}">' if department else ""
    return (
        named
        + _radios("verdict", [(v, f"console.{v}") for v in ("approve", "reject")])
        + _text("reason", "col.reason")
    )


def _pause(view: CaseView, department: str) -> str:
    steps = view.item.excluded_steps if view.item else ()
    return _choice("step", "console.step", [(step, step) for step in steps]) + _text(
        "note", "console.pause_note", required=False
    )


def _rating(view: CaseView, department: str) -> str:
    scores = [(str(n), f"console.score.{n}") for n in range(5, 0, -1)]
    return _radios("score", scores) + _text("comment", "console.comment", required=False)


def _rectification(view: CaseView, department: str) -> str:
    """The case's open records, each by its kind and date, and what was done."""
    records = [
        (
            r["record"],
            t("console.record_due", kind=t(f"console.record_kind.{r['kind']}"), day=r["rectify_by"]),
        )
        for r in view.records
    ]
    return _choice("record", "console.record", records) + _text("outcome", "console.outcome")


def _asks(name: str, label: str) -> Callable[[CaseView, str], str]:
    """A form that asks for one text."""
    return lambda view, department: _text(name, label)


# The fields of each action's form (after the token), from the case and, for a joint item's
# decision, the department deciding.
_FIELDS: dict[str, Callable[[CaseView, str], str]] = {
    "accept": lambda view, department: "",
    "correction": _correction,
    "decide": _decision,
    "escalate": _asks("opinion", "console.opinion"),
    "return": _asks("reason", "col.reason"),
    "refuse": _asks("reason", "col.reason"),
    "pause": _pause,
    "resume": lambda view, department: "",
    "deliver": lambda view, department: "",
    "rate": _rating,
    "complain": _asks("text", "console.complaint"),
    "rectify": _rectification,
}


def _radios(name: str, options: Sequence[tuple[str, str]]) -> str:
    """One required choice of (value, catalog key of its label) pairs."""
    return "".join(
        f'<label><input type="radio" name="{name}" value="{esc(value)}" required> {esc(t(label))}</label>'
        for value, label in options
    )


def _choice(name: str, label: str, options: Sequence[tuple[str, str]]) -> str:
    """A drop-down of (value, shown text) pairs, the first chosen."""
    listed = "".join(f'<option value="{esc(value)}">{esc(shown)}</option>' for value, shown in options)
    return f'<label>{esc(t(label))}<select name="{name}" required>{listed}</select></label>'


def _text(name: str, label: str, required: bool = True) -> str:
    need = " required" if required else ""
    return f'<label>{esc(t(label))}<textarea name="{name}" maxlength="500"{need}></textarea></label>'


def rectifications(
    actor: Actor, records: Sequence[dict[str, Any]], prefix: str, token: str, message: tuple[str, str] | None
) -> str:
    """The center's open rectification records, the earliest due first: a case's to close on
    its page, a window complaint's here."""
    target = href(*_parts(prefix), "rectifications")
    rows: list[list[Cell]] = [
        [
            esc(r["record"]),
            link(href(*_parts(prefix), "case", r["case_id"]), r["case_id"]) if r["case_id"] else esc(None),
            esc(t(f"console.record_kind.{r['kind']}")),
            esc(r["window"]),
            (esc(r["rectify_by"]), "l-overdue") if r["overdue"] else esc(r["rectify_by"]),
            esc(None) if r["case_id"] else _close_window_record(r["record"], target, token),
        ]
        for r in records
    ]
    headers = (
        "console.record",
        "col.case",
        "console.record_type",
        "col.window",
        "console.rectify_by",
        "console.outcome",
    )
    listing = table(headers, rows, "rectifications") if rows else f"<p>{esc(t('console.no_records'))}</p>"
    return f'{_shown(message)}{whoami(actor)}{listing}<p class="note">{esc(t("console.records_note"))}</p>'


def _close_window_record(record: str, target: str, token: str) -> str:
    return (
        f'<form class="action rectify-window" method="post" action="{target}">'
        f'<input type="hidden" name="token" value="{esc(token)}">'
        f'<input type="hidden" name="record" value="{esc(record)}">'
        f"{_text('outcome', 'console.outcome')}"
        f'<button type="submit">{esc(t("console.submit"))}</button></form>'
    )


def _shown(message: tuple[str, str] | None) -> str:
    """What became of the last form: done, or why not (one line)."""
    if message is None:
        return ""
    css, text = message
    return f'<p class="{css}" role="status">{esc(text)}</p>'


def _history(events: Sequence[dict[str, Any]]) -> str:
    rows: list[list[Cell]] = [
        [
            when_iso(e["recorded_at"]),
            esc(t(f"event.{e['type']}")),
            esc(e["payload"].get("staff")),
            esc(e["origin_node"]),
            (esc(event_note(e["payload"])), "details"),
        ]
        for e in events
    ]
    return table(("col.time", "col.event", "console.staff", "col.origin", "col.details"), rows, "events")


def _missing(view: CaseView) -> set[str]:
    """The materials the case still lacks, while it waits to be accepted (once accepted, they
    were handed in at the window)."""
    waiting = view.case["status"] in ("submitted", "correction_requested")
    return set(view.case["missing_materials"]) if waiting else set()


def _parts(prefix: str) -> list[str]:
    return [part for part in prefix.split("/") if part]
