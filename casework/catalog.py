"""The service-item catalog: what can be asked for, where it is accepted and decided."""

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from casework.errors import InvalidInput

_LEVELS = ("village", "township", "district")
FORMS = ("原件", "复印件", "原件和复印件")
# The material a signed authorisation of the agent (a mandate given in writing) is recorded as.
MANDATE_DOCUMENT = "代办授权委托书"


@dataclass(frozen=True, slots=True)
class Material:
    name: str
    required: bool
    form: str = "原件"  # one of FORMS: what the applicant hands in


@dataclass(frozen=True, slots=True)
class Item:
    code: str
    name: str
    item_type: str
    department: str
    accept_level: str
    decide_level: str
    materials: tuple[Material, ...]
    statutory_days: int
    committed_days: int
    fee: float
    joint_departments: tuple[str, ...]
    # The guide's (办事指南) further elements: optional in a catalog document, so older versions parse.
    basis: str = ""  # 设定依据
    conditions: tuple[str, ...] = ()  # 申请条件
    procedure: tuple[str, ...] = ()  # 办理流程, in order
    consultation: str = ""  # 咨询方式
    complaint_channel: str = ""  # 投诉方式 (JSON key "complaint")
    excluded_steps: tuple[str, ...] = ()  # steps the law keeps out of the time limit, e.g. 公示
    typical: tuple[str, ...] = ()  # JSON keys whose values are plausible typical values, not sourced

    def missing_materials(self, handed_in: set[str]) -> list[str]:
        """Every required material not handed in, in the catalog's order (一次性告知)."""
        return [m.name for m in self.materials if m.required and m.name not in handed_in]

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "item_type": self.item_type,
            "department": self.department,
            "accept_level": self.accept_level,
            "decide_level": self.decide_level,
            "basis": self.basis,
            "conditions": list(self.conditions),
            "materials": [{"name": m.name, "required": m.required, "form": m.form} for m in self.materials],
            "procedure": list(self.procedure),
            "statutory_days": self.statutory_days,
            "committed_days": self.committed_days,
            "excluded_steps": list(self.excluded_steps),
            "fee": self.fee,
            "joint_departments": list(self.joint_departments),
            "consultation": self.consultation,
            "complaint": self.complaint_channel,
            "typical": list(self.typical),
        }


@dataclass(frozen=True, slots=True)
class Catalog:
    version: str
    items: dict[str, Item]

    def require(self, code: str) -> Item:
        """The item with this code, or raise InvalidInput."""
        item = self.items.get(code)
        if item is None:
            said = f"unknown item {code!r}: see the catalog for the items that can be taken"
            raise InvalidInput(said, "unknown_item", item=code)
        return item

    def takeable_at(self, level: str) -> list[Item]:
        """Items a node of this level can take from an applicant."""
        return [item for item in self.items.values() if item.accept_level == level]


def parse_catalog(document: dict[str, Any]) -> Catalog:
    """Validate a catalog document; each bad field raises InvalidInput naming it."""
    version = document.get("version")
    if not isinstance(version, str) or not version:
        raise InvalidInput("catalog: 'version' must be a non-empty string", "catalog_version")
    raw_items = document.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise InvalidInput("catalog: 'items' must be a non-empty list", "catalog_items")
    items: dict[str, Item] = {}
    for index, raw in enumerate(raw_items):
        item = _parse_item(raw, f"#{index + 1}")
        if item.code in items:
            said = f"catalog: item code {item.code!r} appears twice"
            raise InvalidInput(said, "catalog_item_twice", item=repr(item.code))
        items[item.code] = item
    return Catalog(version, items)


def default_catalog() -> Catalog:
    """The catalog shipped with the software (built from the 33-item draft)."""
    text = resources.files("casework").joinpath("data/catalog.json").read_text(encoding="utf-8")
    return parse_catalog(json.loads(text))


def _bad_item(item: str, code: str, english: str, **fields: object) -> InvalidInput:
    """A refusal naming the catalog item (``item``: its code quoted, or its place in the list)."""
    return InvalidInput(f"catalog item {item}: {english}", code, item=item, **fields)


def _parse_item(raw: Any, item: str) -> Item:
    if not isinstance(raw, dict):
        raise _bad_item(item, "catalog_item_object", "must be an object")

    def text(key: str) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise _bad_item(item, "catalog_text", f"'{key}' must be a non-empty string", key=key)
        return value.strip()

    def days(key: str) -> int:
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            said = f"'{key}' must be a whole number of working days, 0 or more"
            raise _bad_item(item, "catalog_days", said, key=key)
        return value

    code = text("code")
    item = repr(code)
    accept, decide = text("accept_level"), text("decide_level")
    if accept not in _LEVELS or decide not in _LEVELS[1:]:
        said = "accept_level/decide_level must be village/township/district"
        raise _bad_item(item, "catalog_levels", said)
    if _LEVELS.index(decide) < _LEVELS.index(accept):
        raise _bad_item(item, "catalog_decide_below", "decide_level is below accept_level")
    statutory, committed = days("statutory_days"), days("committed_days")
    if committed > statutory:
        raise _bad_item(item, "catalog_committed", "committed_days exceeds statutory_days")
    return Item(
        code=code,
        name=text("name"),
        item_type=text("item_type"),
        department=text("department"),
        accept_level=accept,
        decide_level=decide,
        materials=tuple(_parse_materials(raw.get("materials"), item)),
        statutory_days=statutory,
        committed_days=committed,
        fee=_fee(raw.get("fee", 0), item),
        joint_departments=tuple(str(d) for d in raw.get("joint_departments", [])),
        basis=_optional_text(raw, "basis", item),
        conditions=_texts(raw, "conditions", item),
        procedure=_texts(raw, "procedure", item),
        consultation=_optional_text(raw, "consultation", item),
        complaint_channel=_optional_text(raw, "complaint", item),
        excluded_steps=_texts(raw, "excluded_steps", item, unique=True),
        typical=_texts(raw, "typical", item, unique=True),
    )


def _optional_text(raw: dict[str, Any], key: str, item: str) -> str:
    """An optional guide element: absent means "" (not given)."""
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise _bad_item(item, "catalog_string", f"'{key}' must be a string", key=key)
    return value.strip()


def _texts(raw: dict[str, Any], key: str, item: str, unique: bool = False) -> tuple[str, ...]:
    """An optional list of non-empty strings (in order); absent means ()."""
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _bad_item(item, "catalog_texts", f"'{key}' must be a list of non-empty strings", key=key)
    texts = tuple(v.strip() for v in value)
    if unique and len(set(texts)) < len(texts):
        twice = next(t for t in texts if texts.count(t) > 1)
        raise _bad_item(item, "catalog_named_twice", f"'{key}' names {twice!r} twice", key=key, name=twice)
    return texts


def _fee(raw: Any, item: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise _bad_item(item, "catalog_fee", "'fee' must be a number of yuan, 0 or more")
    return float(raw)


def _parse_materials(raw: Any, item: str) -> list[Material]:
    if not isinstance(raw, list):
        raise _bad_item(item, "catalog_materials", "'materials' must be a list")
    materials = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _bad_item(item, "catalog_material_name", "each material needs a 'name'")
        form = entry.get("form", FORMS[0])
        if form not in FORMS:
            forms = f"{', '.join(FORMS[:-1])} or {FORMS[-1]}"
            said = f"material {entry['name']!r} 'form' must be {forms}"
            raise _bad_item(
                item, "catalog_material_form", said, material=entry["name"], forms=", ".join(FORMS)
            )
        materials.append(Material(entry["name"], bool(entry.get("required", True)), form))
    return materials
