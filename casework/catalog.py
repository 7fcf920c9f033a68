"""The service-item catalog: what can be asked for, where it is accepted and decided."""

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from casework.errors import InvalidInput

_LEVELS = ("village", "township", "district")


@dataclass(frozen=True, slots=True)
class Material:
    name: str
    required: bool


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
            "materials": [{"name": m.name, "required": m.required} for m in self.materials],
            "statutory_days": self.statutory_days,
            "committed_days": self.committed_days,
            "fee": self.fee,
            "joint_departments": list(self.joint_departments),
        }


@dataclass(frozen=True, slots=True)
class Catalog:
    version: str
    items: dict[str, Item]

    def require(self, code: str) -> Item:
        """The item with this code, or raise InvalidInput."""
        item = self.items.get(code)
        if item is None:
            raise InvalidInput(f"unknown item {code!r}: see the catalog for the items that can be taken")
        return item

    def takeable_at(self, level: str) -> list[Item]:
        """Items a node of this level can take from an applicant."""
        return [item for item in self.items.values() if item.accept_level == level]


def parse_catalog(document: dict[str, Any]) -> Catalog:
    """Validate a catalog document; each bad field raises InvalidInput naming it."""
    version = document.get("version")
    if not isinstance(version, str) or not version:
        raise InvalidInput("catalog: 'version' must be a non-empty string")
    raw_items = document.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise InvalidInput("catalog: 'items' must be a non-empty list")
    items: dict[str, Item] = {}
    for index, raw in enumerate(raw_items):
        item = _parse_item(raw, f"catalog item {index}")
        if item.code in items:
            raise InvalidInput(f"catalog: item code {item.code!r} appears twice")
        items[item.code] = item
    return Catalog(version, items)


def default_catalog() -> Catalog:
    """The catalog shipped with the software (built from the 33-item draft)."""
    text = resources.files("casework").joinpath("data/catalog.json").read_text(encoding="utf-8")
    return parse_catalog(json.loads(text))


def _parse_item(raw: Any, where: str) -> Item:
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: must be an object")

    def text(key: str) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{where}: {key!r} must be a non-empty string")
        return value.strip()

    def days(key: str) -> int:
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidInput(f"{where}: {key!r} must be a whole number of working days, 0 or more")
        return value

    code = text("code")
    where = f"catalog item {code!r}"
    accept, decide = text("accept_level"), text("decide_level")
    if accept not in _LEVELS or decide not in _LEVELS[1:]:
        raise InvalidInput(f"{where}: accept_level/decide_level must be village/township/district")
    if _LEVELS.index(decide) < _LEVELS.index(accept):
        raise InvalidInput(f"{where}: decide_level is below accept_level")
    statutory, committed = days("statutory_days"), days("committed_days")
    if committed > statutory:
        raise InvalidInput(f"{where}: committed_days exceeds statutory_days")
    return Item(
        code=code,
        name=text("name"),
        item_type=text("item_type"),
        department=text("department"),
        accept_level=accept,
        decide_level=decide,
        materials=tuple(_parse_materials(raw.get("materials"), where)),
        statutory_days=statutory,
        committed_days=committed,
        fee=_fee(raw.get("fee", 0), where),
        joint_departments=tuple(str(d) for d in raw.get("joint_departments", [])),
    )


def _fee(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise InvalidInput(f"{where}: 'fee' must be a number of yuan, 0 or more")
    return float(raw)


def _parse_materials(raw: Any, where: str) -> list[Material]:
    if not isinstance(raw, list):
        raise InvalidInput(f"{where}: 'materials' must be a list")
    materials = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidInput(f"{where}: each material needs a 'name'")
        materials.append(Material(entry["name"], bool(entry.get("required", True))))
    return materials
