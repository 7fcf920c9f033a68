"""An event of a case's history in words, for the pages' history tables: the materials handed
in or missing by name, a decision, a rating's score, the words a person wrote (a reason, note,
opinion …) and, where asked, who acted. Never checksums, ids, keys, nor the applicant's
personal data (name, ID number, phone, form fields) a submission carries."""

from typing import Any

from messages import t

NOTE_CHARS = 300  # a pasted essay does not stretch the table
_WRITTEN = ("reason", "opinion", "step", "note", "text", "outcome", "comment")  # in this order


def event_note(payload: dict[str, Any], who: bool = False) -> str:
    """The event's ``payload`` in one line of words (not yet escaped); with ``who``, the staff
    member and window that acted too (a page without a staff column of its own)."""
    parts = [*_decision(payload), *_materials(payload), *_written(payload)]
    if who and isinstance(payload.get("staff"), str) and payload["staff"]:
        window = payload.get("window")
        by = t("history.by_window", staff=payload["staff"], window=window) if window else None
        parts.append(by or t("history.by", staff=payload["staff"]))
    text = t("history.parts").join(parts)
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 1] + "…"


def _decision(payload: dict[str, Any]) -> list[str]:
    parts = []
    if isinstance(payload.get("approved"), bool):
        parts.append(t("history.approved" if payload["approved"] else "history.rejected"))
    if isinstance(payload.get("department"), str) and payload["department"]:
        parts.append(t("history.department", department=payload["department"]))
    if isinstance(payload.get("score"), int) and not isinstance(payload["score"], bool):
        parts.append(t("history.score", score=payload["score"]))
    return parts


def _materials(payload: dict[str, Any]) -> list[str]:
    given = payload.get("materials")
    named = (
        [str(m["name"]) for m in given if isinstance(m, dict) and m.get("name")]
        if isinstance(given, list)
        else []
    )
    parts = [t("history.materials", names=_listed(named))] if named else []
    for key in ("missing_materials", "missing"):
        missing = payload.get(key)
        if isinstance(missing, list) and missing:
            parts.append(t("history.missing", names=_listed(missing)))
    return parts


def _written(payload: dict[str, Any]) -> list[str]:
    parts = [
        t(f"history.{key}", text=payload[key].strip())
        for key in _WRITTEN
        if isinstance(payload.get(key), str) and payload[key].strip()
    ]
    if isinstance(payload.get("of"), str) and payload["of"]:
        parts.append(t("history.record", record=payload["of"]))
    return parts


def _listed(names: list[Any]) -> str:
    return t("history.separator").join(str(name) for name in names)
