"""Finding an item the villager asks for: by words of its name, by keyword (its materials,
conditions, department), or by the pinyin initials of its name (ylbx: 养老保险).

Initials come from pypinyin: the catalog is published by the district and changes, so the
initials cannot be written down once; pypinyin knows each character's reading (and the
readings of common words, 银行 yin hang) from its own tables, with no network."""

import functools
import re

from pypinyin import Style, lazy_pinyin

from casework import Item

_LETTERS = re.compile(r"[a-z]+")
_RUNS = re.compile(r"[0-9A-Za-z]+")


def find(items: list[Item], query: str) -> list[Item]:
    """The items that match, best first: name, then initials, then other words; all of them
    for an empty query."""
    words = "".join(query.split()).lower()
    if not words:
        return list(items)
    ranked = [(rank, index, item) for index, item in enumerate(items) if (rank := _rank(item, words)) < 3]
    return [item for _, _, item in sorted(ranked, key=lambda found: found[:2])]


def _rank(item: Item, words: str) -> int:
    if words in item.name.lower() or words == item.code.lower():
        return 0
    if _LETTERS.fullmatch(words) and words in initials(item.name):
        return 1
    return 2 if words in _keywords(item) else 3


@functools.cache
def initials(name: str) -> str:
    """The first letter of each character's pinyin (and of each run of Latin letters or digits)."""
    parts = lazy_pinyin(name, style=Style.FIRST_LETTER)
    return "".join(run[0].lower() for part in parts for run in _RUNS.findall(part))


def _keywords(item: Item) -> str:
    text = [item.department, item.item_type, *item.conditions, *(m.name for m in item.materials)]
    return " ".join(text).lower()
