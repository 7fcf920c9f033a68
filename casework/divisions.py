"""The administrative divisions a district network is made of (statistical division codes)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from casework.errors import InvalidInput

LEVELS = ("district", "township", "village")
_CODE_LENGTH = {"district": 6, "township": 9, "village": 12}


@dataclass(frozen=True, slots=True)
class Division:
    code: str
    name: str
    parent_code: str
    level: str


def level_of_code(code: str) -> str:
    """The level a division code's length says it is, or raise InvalidInput."""
    for level, length in _CODE_LENGTH.items():
        if len(code) == length and code.isdigit():
            return level
    raise InvalidInput(f"{code!r} is not a division code (6, 9 or 12 digits)", "not_a_code", division=code)


def township_of(village_code: str) -> str:
    return village_code[:9]


def district_of(code: str) -> str:
    return code[:6]


class Divisions:
    """One district with its townships and villages, as read from a divisions file."""

    def __init__(self, rows: Iterable[Division]) -> None:
        self._by_code = {row.code: row for row in rows}
        districts = [d for d in self._by_code.values() if d.level == "district"]
        if len(districts) != 1:
            said = f"divisions must hold exactly one district, found {len(districts)}"
            raise InvalidInput(said, "divisions_district", found=len(districts))
        self.district = districts[0]

    @classmethod
    def from_csv(cls, path: Path) -> Divisions:
        """Read a file with the columns code,name,parent_code,level."""
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                return cls(_parse(csv.DictReader(handle), path))
        except OSError as exc:
            said = f"cannot read divisions file {path}: {exc.strerror}"
            raise InvalidInput(said, "divisions_unreadable", path=str(path), reason=exc.strerror) from exc

    def get(self, code: str) -> Division | None:
        return self._by_code.get(code)

    def require(self, code: str, *levels: str) -> Division:
        """The division with this code at one of the levels, or raise InvalidInput."""
        division = self._by_code.get(code)
        district = self.district
        if division is None:
            said = f"{code} is not a division of {district.name} ({district.code})"
            raise InvalidInput(
                said, "not_a_division", division=code, district=district.name, district_code=district.code
            )
        if levels and division.level not in levels:
            said = f"{code} is a {division.level}, expected {' or '.join(levels)}"
            raise InvalidInput(said, "division_level", division=code, level=division.level, levels=levels)
        return division

    def of_level(self, level: str) -> list[Division]:
        return [d for d in self._by_code.values() if d.level == level]

    def children(self, code: str) -> list[Division]:
        return [d for d in self._by_code.values() if d.parent_code == code]


def _parse(reader: csv.DictReader[str], path: Path) -> list[Division]:
    if reader.fieldnames is None or not {"code", "name", "parent_code", "level"} <= set(reader.fieldnames):
        raise InvalidInput(
            f"{path}: expected the columns code,name,parent_code,level", "divisions_columns", path=str(path)
        )
    rows = []
    for line, record in enumerate(reader, start=2):
        level = (record["level"] or "").strip()
        code = (record["code"] or "").strip()
        if level not in LEVELS or len(code) != _CODE_LENGTH[level] or not code.isdigit():
            said = f"{path}:{line}: bad code {code!r} or level {level!r}"
            raise InvalidInput(
                said, "divisions_row", path=str(path), line=line, division=repr(code), given_level=repr(level)
            )
        rows.append(Division(code, record["name"].strip(), record["parent_code"].strip(), level))
    return rows
