"""The intake app's pages about cases: the receipt for the villager, the case list with what
each case waits for, one case with the forms that answer it. HTML from data already read."""

from typing import Any

from casework import Item
from casework.lifecycle import CMD_DELIVER, CMD_RATE, CMD_SUPPLEMENT, SCORES, SUBMITTED
from messages import t
from relay.web import Cell, esc, event_note, href, table, when_iso
from village_agent.ui._views import csrf_field, error_box, fee, joined, limit, w

LIST_LIMIT = 200  # as note.limit says
OPEN = ("submitted", "accepted", "correction_requested", "escalated")
DECIDED = ("approved", "rejected")


def next_step(case: dict[str, Any]) -> tuple[str, str]:
    """What the case waits for here, in words to read out: ("todo" | "wait" | "done", text)."""
    status, followed, missing = case["status"], case["followed"], case["missing_materials"]
    sent = ("wait", t("village_app.next_sent"))
    if status == "withdrawn":
        return "done", t("village_app.next_withdrawn")
    if status in DECIDED:
        return sent if CMD_DELIVER in followed.waiting else ("todo", t("village_app.next_deliver"))
    if status == "delivered":
        if followed.rated:
            return "done", t("village_app.next_done")
        return sent if CMD_RATE in followed.waiting else ("todo", t("village_app.next_rate"))
    if status == "correction_requested":
        if CMD_SUPPLEMENT in followed.waiting:
            return sent
        return "todo", t("village_app.next_correction", materials=joined(missing))
    if missing:
        return "todo", t("village_app.next_bring", materials=joined(missing))
    if status == "submitted":
        return "wait", t("village_app.next_wait_unaccepted")
    return "wait", t("village_app.next_wait", deadline=case["deadline"] or t("none"))


def case_list(rows: list[dict[str, Any]], names: dict[str, str]) -> str:
    """Every case with something to do here, then the newest LIST_LIMIT cases."""
    todo = [row for row in rows if next_step(row)[0] == "todo"]
    note = f'<p class="note">{esc(t("note.limit"))}</p>' if len(rows) > LIST_LIMIT else ""
    return (
        f"<h2>{w('todo')}</h2>{_table(todo, names) if todo else '<p>' + w('todo_none') + '</p>'}"
        f"<h2>{w('all_cases')}</h2>"
        f"{_table(rows[:LIST_LIMIT], names) + note if rows else '<p>' + w('cases_none') + '</p>'}"
    )


def _table(rows: list[dict[str, Any]], names: dict[str, str]) -> str:
    headers = ["col_case", "col_item", "col_applicant", "col_status", "col_next", "col_updated"]
    cells: list[list[Cell]] = []
    for row in rows:
        kind, text = next_step(row)
        cells.append(
            [
                f'<a href="{href("case", row["case_id"])}">{esc(row["case_id"])}</a>',
                (esc(names.get(row["item_code"], row["item_code"])), "wrap"),
                esc(row["applicant_name"]),
                _status(row),
                (esc(text), f"wrap {kind}"),
                esc(when_iso(row["updated_at"])[:16]),
            ]
        )
    return table([f"village_app.{key}" for key in headers], cells, "cases")


def _status(row: dict[str, Any]) -> str:
    """The status in words, marked while some of the case has not left the laptop."""
    queued = f' <span class="queued">{w("queued_mark")}</span>' if row["queued"] else ""
    return esc(t(f"status.{row['status']}")) + queued


def missing_box(missing: list[str]) -> str:
    """Every material still missing, at once, to read out to the villager (一次性告知)."""
    if not missing:
        return f'<p class="notice">{w("missing_none")}</p>'
    listed = "".join(f"<li>{esc(name)}</li>" for name in missing)
    return f'<div class="missing" role="alert"><p>{w("missing_title")}</p><ol>{listed}</ol></div>'


def receipt(case: dict[str, Any], item: Item | None, village: str, agent: str) -> str:
    taken: dict[str, Any] = next((e["payload"] for e in case["events"] if e["type"] == SUBMITTED), {})
    handed_in = [m.get("name", "") for m in taken.get("materials", []) if isinstance(m, dict)]
    handed = (
        "<ol>" + "".join(f"<li>{esc(name)}</li>" for name in handed_in) + "</ol>"
        if handed_in
        else w("receipt_nothing")
    )
    rows = [
        ("receipt_case", esc(case["case_id"])),
        ("item", esc(item.name if item else case["item_code"])),
        ("applicant", esc(case["applicant_name"])),
        ("receipt_village", esc(village)),
        ("receipt_agent", esc(agent)),
        ("receipt_taken", esc(when_iso(case["created_at"]))),
        ("receipt_handed_in", handed),
    ]
    if item is not None:
        days = limit(item)
        if item.committed_days:
            days = t("village_app.receipt_limit_text", days=item.committed_days)
        consultation = item.consultation or village
        rows += [
            ("receipt_limit", esc(days)),
            ("fee", esc(fee(item))),
            ("receipt_follow_up", w("receipt_follow_up_text", consultation=consultation)),
            ("receipt_complain", esc(item.complaint_channel or t("none"))),
        ]
    shown = "".join(f"<tr><th>{w(key)}</th><td>{value}</td></tr>" for key, value in rows)
    return (
        f'<p class="noprint"><button type="button" class="primary" data-print accesskey="p">'
        f'{w("receipt_print")}</button> <a href="{href("case", case["case_id"])}">{w("case_title")}</a></p>'
        f'<div class="receipt"><table>{shown}</table>{missing_box(list(taken.get("missing_materials", [])))}'
        f'<div class="sign"><span>{w("receipt_sign_applicant")}</span><span>{w("receipt_sign_agent")}</span>'
        "</div></div>"
    )


def case_page(case: dict[str, Any], item: Item | None, token: str, notice: str, problem: str) -> str:
    kind, text = next_step(case)
    facts = [
        ("item", esc(item.name if item else case["item_code"])),
        ("applicant", esc(case["applicant_name"])),
        ("col_status", esc(t(f"status.{case['status']}"))),
        ("col_next", esc(text)),
        ("col_taken", esc(when_iso(case["created_at"]))),
    ]
    if case["reason"]:
        facts.append(("case_reason", esc(case["reason"])))
    shown = "".join(f"<tr><th>{w(key)}</th><td>{value}</td></tr>" for key, value in facts)
    return (
        f"{error_box(problem)}{f'<p class=notice role=status>{esc(notice)}</p>' if notice else ''}"
        f'<div class="receipt"><table>{shown}</table></div>'
        f"{missing_box(case['missing_materials']) if kind == 'todo' and case['missing_materials'] else ''}"
        f'<p><a class="primary" href="{href("case", case["case_id"], "receipt")}" accesskey="r">'
        f'{w("case_receipt")}</a></p><div class="actions">{_actions(case, token)}</div>'
        f"<h2>{w('history')}</h2>{_history(case['events'])}"
    )


def _history(events: list[dict[str, Any]]) -> str:
    """What happened to the case, in words: the owner's events and the agent's commands."""
    rows: list[list[Cell]] = [
        [
            esc(when_iso(e["recorded_at"])[:16]),
            esc(_event_words(e["type"])),
            (esc(event_note(e["payload"])), "wrap"),
        ]
        for e in events
    ]
    return table(["village_app.col_time", "village_app.col_event", "village_app.col_note"], rows)


def _event_words(kind: str) -> str:
    if kind.startswith("cmd."):
        return t(f"village_app.command.{kind[4:]}")
    return t(f"event.{kind}")


def _actions(case: dict[str, Any], token: str) -> str:
    status, followed = case["status"], case["followed"]
    forms = []
    if status == "correction_requested" and CMD_SUPPLEMENT not in followed.waiting:
        forms.append(_supplement(case, token))
    if status in DECIDED and CMD_DELIVER not in followed.waiting:
        forms.append(_form(case, "deliver", token, f"<p>{w('deliver_text')}</p>"))
    if status in (*DECIDED, "delivered") and not followed.rated and CMD_RATE not in followed.waiting:
        forms.append(_form(case, "rate", token, _scores()))
    if status in OPEN:
        forms.append(_form(case, "withdraw", token, _text("reason", "withdraw_reason", required=False)))
    forms.append(_form(case, "complain", token, _text("text", "complain_text", required=True)))
    return "".join(forms)


def _form(case: dict[str, Any], action: str, token: str, inside: str, files: bool = False) -> str:
    kind = ' enctype="multipart/form-data"' if files else ""
    return (
        f'<form method="post" action="{href("case", case["case_id"], action)}"{kind}>'
        f"<fieldset><legend>{w(f'{action}_title')}</legend>{csrf_field(token)}{inside}"
        f'<button type="submit" class="primary">{w(f"{action}_submit")}</button></fieldset></form>'
    )


def _supplement(case: dict[str, Any], token: str) -> str:
    inputs = "".join(
        f'<label for="s{index}">{w("scan_of", name=name)}</label>'
        f'<input type="file" id="s{index}" name="m{index}" accept="image/*,application/pdf">'
        for index, name in enumerate(case["missing_materials"])
    )
    return _form(case, "supplement", token, inputs, files=True)


def _scores() -> str:
    return "".join(
        f'<label class="choice"><input type="radio" name="score" value="{score}" required> '
        f"{w(f'score_{score}')}</label>"
        for score in sorted(SCORES, reverse=True)
    ) + _text("comment", "rate_comment", required=False)


def _text(name: str, label: str, required: bool) -> str:
    need = " required" if required else ""
    return (
        f'<label for="{name}">{w(label)}</label>'
        f'<textarea id="{name}" name="{name}" rows="2" maxlength="500"{need}></textarea>'
    )
