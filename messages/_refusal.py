from messages._catalog import t

# A refusal's fields that are themselves catalog keys: a status, an event, a staff role or a
# node's level is worded too.
_WORDED = {
    "status": "status",
    "event": "event",
    "role": "role",
    "level": "cli.level",
    "wanted_level": "cli.level",
    "levels": "cli.level",
    "weekday": "weekday",
}


def refusal(error: str, code: str, fields: dict[str, object]) -> str:
    """A refusal in the user's language, by its code (casework's errors, relay.staff's
    outcomes: the catalog's ``refusal.CODE`` filled from ``fields``). Without a code: ``error``,
    the English line, as it is."""
    if not code:
        return error
    worded = {name: _worded(name, value) for name, value in fields.items()}
    return t(f"refusal.{code}", None, **worded)


def _worded(name: str, value: object) -> object:
    """A field's value in words where the catalog has them (a status, a role), else as it is;
    a tuple of them (levels) as "a or b"."""
    if name not in _WORDED:
        return value
    if isinstance(value, tuple):
        return t("refusal.or").join(str(_worded(name, each)) for each in value)
    key = f"{_WORDED[name]}.{value}"
    words = t(key)
    return value if words == key else words
