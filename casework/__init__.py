"""The pure domain of servicenet: catalog, divisions, ID checks, the case lifecycle and its deadlines.

Nothing here does I/O of its own or reads the clock.
"""

from casework.calendar import WorkCalendar, YearRules, default_calendar, from_chinesecalendar
from casework.catalog import Catalog, Item, Material, default_catalog, parse_catalog
from casework.deadlines import Pause, Status, deadline, status
from casework.divisions import Division, Divisions, district_of, level_of_code, township_of
from casework.errors import CaseworkError, IllegalTransition, InvalidInput
from casework.ids import mask_foreign_ids, mask_resident_id, shown_resident_id, validate_resident_id
from casework.intake import CheckedRequest, Mandate, Request, check_request
from casework.lifecycle import CaseState, answer_command, evolve, submit

__all__ = [
    "CaseState",
    "CaseworkError",
    "Catalog",
    "CheckedRequest",
    "Division",
    "Divisions",
    "IllegalTransition",
    "InvalidInput",
    "Item",
    "Mandate",
    "Material",
    "Pause",
    "Request",
    "Status",
    "WorkCalendar",
    "YearRules",
    "answer_command",
    "check_request",
    "deadline",
    "default_calendar",
    "default_catalog",
    "district_of",
    "evolve",
    "from_chinesecalendar",
    "level_of_code",
    "mask_foreign_ids",
    "mask_resident_id",
    "parse_catalog",
    "shown_resident_id",
    "status",
    "submit",
    "township_of",
    "validate_resident_id",
]
