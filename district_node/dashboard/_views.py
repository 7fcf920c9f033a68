"""The dashboard's pages as HTML, from data already read (see _data and relay.supervision)."""

from collections.abc import Mapping, Sequence
from typing import Any

from casework import Catalog, mask_resident_id
from district_node.coverage import TownshipCoverage
from district_node.dashboard._data import on_time
from messages import t
from relay.web import (
    Cell,
    ago,
    badge,
    count,
    esc,
    event_note,
    figures,
    href,
    link,
    percent,
    table,
    when_iso,
)

FINISHED = ("approved", "rejected", "delivered")
SEVERITY = {"overdue": 0, "red": 1, "yellow": 2}


class Names:
    """Names of divisions and items for the tables (codes where none is known)."""

    def __init__(self, divisions: Mapping[str, str], catalog: Catalog) -> None:
        self.divisions, self.catalog = divisions, catalog

    def place(self, code: str) -> str:
        return self.divisions.get(code, code)

    def item(self, code: str) -> str:
        found = self.catalog.items.get(code)
        return found.name if found else code


def overview(cover: Sequence[TownshipCoverage], report: dict[str, Any], now: int, names: Names) -> str:
    villages = [v for township in cover for v in township.villages]
    enrolled = sum(1 for v in villages if v.state != "not_enrolled")
    centers = sum(1 for township in cover if township.center.state != "not_enrolled")
    warned = report["warnings_total"]
    records = report["rectifications"]
    headline = figures(
        [
            ("figure.coverage", percent(enrolled / len(villages) if villages else None)),
            ("overview.townships", f"{centers}／{len(cover)}"),
            ("overview.villages", f"{enrolled}／{len(villages)}"),
            ("figure.on_time", percent(report["on_time_rate"])),
            ("figure.satisfaction", percent(report["satisfaction"]["rate"])),
            ("figure.warnings", f"{warned['yellow']}／{warned['red']}／{warned['overdue']}"),
            ("figure.rectifications", f"{records['open']}／{records['overdue']}"),
            ("figure.today", esc(report["today"])),
        ]
    )
    return (
        f"<h2>{esc(t('overview.coverage'))}</h2>{headline}"
        f"<h2>{esc(t('overview.by_township'))}</h2>{_townships(cover, report, now)}"
        f'<p class="note">{esc(t("note.activity"))}</p>'
        f"<h2>{esc(t('overview.warnings'))}</h2>{warning_table(report['warnings'], names)}"
        f"{_shown(report['warnings'], sum(warned.values()))}"
        f"<h2>{esc(t('overview.items'))}</h2>{_groups(report, 'by_item', names)}"
        f"<h2>{esc(t('overview.windows'))}</h2>{_groups(report, 'by_window', names)}"
    )


def _townships(cover: Sequence[TownshipCoverage], report: dict[str, Any], now: int) -> str:
    warned = report["warnings_by_township"]
    rows: list[list[Cell]] = []
    for township in cover:
        center, lights = township.center, warned.get(township.center.code, {})
        satisfaction = report["satisfaction"]["by_owner"].get(center.code, {})
        rows.append(
            [
                link(href("township", center.code), center.name),
                badge("s", center.state),
                ago(center.last_seen, now),
                count(center.backlog or 0),
                count(len(township.villages)),
                count(len(township.villages) - township.count("not_enrolled")),
                count(township.count("active_day")),
                count(township.count("active_day", "active_week")),
                count(township.count("silent"), "silent"),
                count(township.count("never")),
                count(sum(n for s, n in township.statuses.items() if s not in (*FINISHED, "withdrawn"))),
                count(lights.get("yellow", 0), "yellow"),
                count(lights.get("red", 0), "red"),
                count(lights.get("overdue", 0), "overdue"),
                percent(on_time(report["by_owner"].get(center.code))),
                percent(satisfaction.get("rate")),
            ]
        )
    headers = (
        "col.township",
        "col.node_state",
        "col.last_seen",
        "col.backlog",
        "col.villages",
        "col.enrolled",
        "col.active_day",
        "col.active_week",
        "col.silent",
        "col.never",
        "col.open",
        "col.yellow",
        "col.red",
        "col.overdue",
        "col.on_time",
        "col.satisfaction",
    )
    return table(headers, rows, "townships")


def warning_table(warnings: Sequence[dict[str, Any]], names: Names) -> str:
    ordered = sorted(warnings, key=lambda w: (SEVERITY.get(w["light"], 9), w["statutory_deadline"] or ""))
    rows = [
        [
            link(href("case", w["case_id"]), w["case_id"]),
            link(href("item", w["item_code"]), names.item(w["item_code"])),
            link(href("township", w["village_code"][:9]), names.place(w["village_code"][:9])),
            esc(names.place(w["owner"])),
            _window(w["window"], w["owner"]),
            esc(t(f"status.{w['status']}")),
            esc(w["deadline"]),
            esc(w["statutory_deadline"]),
            badge("l", w["light"]),
        ]
        for w in ordered
    ]
    headers = (
        "col.case",
        "col.item",
        "col.township",
        "col.owner",
        "col.window",
        "col.status",
        "col.deadline",
        "col.statutory",
        "col.light",
    )
    return table(headers, rows, "warnings")


def _shown(listed: Sequence[dict[str, Any]], total: int) -> str:
    """A note under a warnings table that lists fewer cases than are warned, else nothing."""
    if len(listed) >= total:
        return ""
    return f'<p class="note">{esc(t("note.warnings_cut", shown=len(listed), total=total))}</p>'


def _groups(report: dict[str, Any], group: str, names: Names) -> str:
    """Counts per item or per window, with lights, on-time and satisfaction rates."""
    rows: list[list[Cell]] = []
    for key, counts in report[group].items():
        satisfaction = report["satisfaction"][group].get(key, {})
        label = (
            link(href("item", key), names.item(key)) if group == "by_item" else _window(key, "") or esc(key)
        )
        rows.append(
            [
                label,
                count(sum(counts.values())),
                count(counts.get("yellow", 0), "yellow"),
                count(counts.get("red", 0), "red"),
                count(counts.get("overdue", 0), "overdue"),
                percent(on_time(counts)),
                percent(satisfaction.get("rate")),
                count(satisfaction.get("ratings", 0)),
            ]
        )
    first = "col.item" if group == "by_item" else "col.window"
    headers = (first, "col.cases", "col.yellow", "col.red", "col.overdue", "col.on_time", "col.satisfaction")
    return table((*headers, "col.ratings"), rows, group)


def _window(window: str | None, owner: str) -> str:
    return link(href("window", window, owner=owner), window) if window else esc(None)


def township(
    cover: TownshipCoverage,
    report: dict[str, Any],
    warned: Sequence[dict[str, Any]],
    cases: Sequence[dict[str, Any]],
    now: int,
    names: Names,
) -> str:
    """One township: its node, its warned cases (read for it, not cut from the district's
    list), its villages and its newest cases."""
    center, row = cover.center, cover.center.node
    node_table = table(
        (
            "col.code",
            "col.node_state",
            "col.last_seen",
            "col.last_push",
            "col.backlog",
            "col.software",
            "col.catalog",
            "col.clock",
        ),
        [
            [
                esc(center.code),
                badge("s", center.state),
                ago(center.last_seen, now),
                ago(cover.last_push, now),
                count(center.backlog or 0),
                esc(row.software_version if row else None),
                esc(row.catalog_version if row else None),
                esc(row.clock_offset_ms if row else None),
            ]
        ],
    )
    villages = table(
        ("col.village", "col.code", "col.node_state", "col.last_activity", "col.cases"),
        [
            [esc(v.name), esc(v.code), badge("s", v.state), ago(v.last_seen, now), count(v.cases)]
            for v in cover.villages
        ],
        "villages",
    )
    total = sum(report["warnings_by_township"].get(center.code, {}).values())
    return (
        f"<h2>{esc(t('township.node'))}</h2>{node_table}"
        f"<h2>{esc(t('overview.warnings'))}</h2>{warning_table(warned, names)}{_shown(warned, total)}"
        f"<h2>{esc(t('township.villages'))}</h2>{villages}"
        f'<p class="note">{esc(t("note.activity"))}</p>'
        f"<h2>{esc(t('township.cases'))}</h2>{case_table(cases, names)}"
        f'<p class="note">{esc(t("note.limit"))}</p>'
    )


def case_table(cases: Sequence[dict[str, Any]], names: Names) -> str:
    rows = [
        [
            link(href("case", case["case_id"]), case["case_id"]),
            link(href("item", case["item_code"]), names.item(case["item_code"])),
            esc(t(f"status.{case['status']}")),
            esc(names.place(case["owner"])),
            esc(names.place(case["village_code"])),
            _window(case["window"], case["owner"]),
            esc(case["deadline"]),
            badge("l", case["light"]),
        ]
        for case in cases
    ]
    headers = (
        "col.case",
        "col.item",
        "col.status",
        "col.owner",
        "col.village",
        "col.window",
        "col.deadline",
        "col.light",
    )
    return table(headers, rows, "cases")


def group_page(
    key: str, group: str, cases: Sequence[dict[str, Any]], report: dict[str, Any], names: Names
) -> str:
    """An item's or a window's page: its counts and rates, then its cases."""
    counts = report[group].get(key, {})
    satisfaction = report["satisfaction"][group].get(key, {})
    found = names.catalog.items.get(key) if group == "by_item" else None
    facts = [("col.cases", str(sum(counts.values())))]
    if found is not None:
        level = esc(t(f"level.{found.decide_level}"))
        facts += [
            ("col.code", esc(key)),
            ("col.decide_level", level),
            ("col.limits", f"{found.statutory_days}／{found.committed_days}"),
        ]
    facts += [
        ("col.yellow", str(counts.get("yellow", 0))),
        ("col.red", str(counts.get("red", 0))),
        ("col.overdue", str(counts.get("overdue", 0))),
        ("col.on_time", percent(on_time(counts))),
        ("col.satisfaction", percent(satisfaction.get("rate"))),
    ]
    note = "" if group == "by_item" else f'<p class="note">{esc(t("note.window"))}</p>'
    return (
        f"{figures(facts)}{note}<h2>{esc(t('col.cases'))}</h2>{case_table(cases, names)}"
        f'<p class="note">{esc(t("note.limit"))}</p>'
    )


def case_page(found: dict[str, Any], applicant: tuple[str, str], light: str, names: Names) -> str:
    """One case: who applied (the only page that shows it, the ID number masked), where it
    stands, and every event."""
    name, id_number = applicant
    facts = table(
        ("col.applicant", "col.id_number", "col.item", "col.status", "col.owner", "col.village"),
        [
            [
                esc(name),
                esc(mask_resident_id(id_number)),
                link(href("item", found["item_code"]), names.item(found["item_code"])),
                esc(t(f"status.{found['status']}")),
                esc(names.place(found["owner"])),
                esc(names.place(found["village_code"])),
            ]
        ],
    )
    limits = table(
        (
            "col.window",
            "col.created",
            "col.updated",
            "col.deadline",
            "col.statutory",
            "col.light",
            "col.reason",
        ),
        [
            [
                _window(found["window"], found["owner"]),
                when_iso(found["created_at"]),
                when_iso(found["updated_at"]),
                esc(found["deadline"]),
                esc(found["statutory_deadline"]),
                badge("l", light),
                esc(found["reason"]),
            ]
        ],
    )
    events = table(
        ("col.time", "col.event", "col.origin", "col.details"),
        [
            [
                when_iso(e["recorded_at"]),
                esc(t(f"event.{e['type']}")),
                esc(names.place(e["origin_node"])),
                (esc(event_note(e["payload"], who=True)), "details"),
            ]
            for e in found["events"]
        ],
        "events",
    )
    return f"{facts}{limits}<h2>{esc(t('case.events'))}</h2>{events}"
