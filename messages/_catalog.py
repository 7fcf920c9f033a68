import functools
import os
import tomllib
from pathlib import Path

LANGUAGES = ("zh-CN", "en")
DEFAULT = "zh-CN"
_HERE = Path(__file__).resolve().parent


def language() -> str:
    """The language asked for by the environment (see the package's docstring)."""
    chosen = os.environ.get("SERVICENET_LANG", "").strip()
    if chosen:
        return chosen if chosen in LANGUAGES else DEFAULT
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        locale = os.environ.get(name, "")
        if locale:
            return "en" if locale.lower().startswith("en") else DEFAULT
    return DEFAULT


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """Every message of one language, by flat dotted key."""
    with (_HERE / f"{lang}.toml").open("rb") as file:
        return dict(_flatten(tomllib.load(file)))


def t(key: str, /, lang: str | None = None, **fields: object) -> str:
    """The message for ``key`` in ``lang`` (default: :func:`language`), fields filled in.
    A key missing from the catalog shows as itself (tests/test_messages.py keeps none missing)."""
    text = catalog(lang or language()).get(key, key)
    return text.format(**fields) if fields else text


def _flatten(table: dict[str, object], prefix: str = "") -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            pairs.extend(_flatten(value, f"{key}."))
        else:
            pairs.append((key, str(value)))
    return pairs
