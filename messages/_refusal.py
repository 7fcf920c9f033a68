from messages._catalog import t

# A refusal's fields that are themselves catalog keys: a status or an event is worded too.
_WORDED = {"status": "status", "event": "event"}


def refusal(error: str, code: str, fields: dict[str, object]) -> str:
    """A refusal in the user's language, by its code (casework's errors, relay.staff's
    outcomes: the catalog's ``refusal.CODE`` filled from ``fields``). Without a code: ``error``,
    the English line, as it is."""
    if not code:
        return error
    worded = {
        name: t(f"{_WORDED[name]}.{value}") if name in _WORDED else value for name, value in fields.items()
    }
    return t(f"refusal.{code}", None, **worded)
