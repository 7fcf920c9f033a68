"""Resident identity numbers (GB 11643-1999)."""

import re

from casework.errors import InvalidInput

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SHAPE = re.compile(r"\d{17}[\dX]")


def validate_resident_id(value: str) -> str:
    """Return the ID number normalised (upper-case X) or raise InvalidInput saying why."""
    number = value.strip().upper()
    if not _SHAPE.fullmatch(number):
        raise InvalidInput("resident ID number must be 17 digits followed by a digit or X", "id_shape")
    total = sum(int(digit) * weight for digit, weight in zip(number, _WEIGHTS, strict=False))
    if _CHECK[total % 11] != number[17]:
        raise InvalidInput(
            "resident ID number has a wrong check digit: check it against the ID card", "id_check"
        )
    return number


def mask_resident_id(number: str) -> str:
    """Keep the first 6 and last 4 characters: enough to recognise, not enough to misuse."""
    return number[:6] + "*" * (len(number) - 10) + number[-4:] if len(number) > 10 else "*" * len(number)


def shown_resident_id(number: str, district_code: str) -> str:
    """An ID number as a node's command output shows it: whole for a resident registered in
    the node's own district (its first six digits), masked for anyone else."""
    return number if number.startswith(district_code) else mask_resident_id(number)


_ANY_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def mask_foreign_ids(text: str, district_code: str) -> str:
    """Free text (form fields, notes) with every ID number registered outside the district masked."""
    return _ANY_ID.sub(lambda found: shown_resident_id(found[0], district_code), text)
