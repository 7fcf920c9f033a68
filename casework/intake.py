"""Checks made when a village agent takes a request, before anything is recorded."""

from dataclasses import dataclass, field
from typing import Any

from casework.catalog import Catalog, Item
from casework.errors import InvalidInput
from casework.ids import validate_resident_id
from casework.lifecycle import MAX_TEXT

MANDATE_FORMS = ("in_person", "written")  # 当面授权 (the applicant present) or a signed 授权委托书


@dataclass(frozen=True, slots=True)
class Mandate:
    """The applicant's authorisation of the agent to act for them (代办授权)."""

    agent: str  # the village agent who takes and follows the request
    form: str = "in_person"

    def to_dict(self) -> dict[str, str]:
        return {"agent": self.agent, "form": self.form}

    @classmethod
    def from_dict(cls, raw: Any) -> "Mandate | None":
        if not isinstance(raw, dict):
            return None
        return cls(str(raw.get("agent", "")), str(raw.get("form", "")))


@dataclass(frozen=True, slots=True)
class Request:
    item_code: str
    applicant_name: str
    applicant_id: str
    phone: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    materials: tuple[str, ...] = ()
    mandate: Mandate | None = None


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    request: Request
    item: Item
    missing_materials: list[str]


def check_request(catalog: Catalog, request: Request, level: str = "village") -> CheckedRequest:
    """Validate a request against the catalog; InvalidInput says the first thing wrong."""
    item = catalog.require(request.item_code)
    if item.accept_level != level:
        said = f"item {item.code} is accepted at the {item.accept_level} window, not here"
        raise InvalidInput(said, "accepted_elsewhere", item=item.code, level=item.accept_level)
    name = request.applicant_name.strip()
    if not name:
        raise InvalidInput("applicant name is required", "no_name")
    if len(name) > 64:
        raise InvalidInput("applicant name is longer than 64 characters", "long_name")
    number = validate_resident_id(request.applicant_id)
    mandate = request.mandate
    if mandate is None or not mandate.agent.strip():
        raise InvalidInput(
            "the applicant's authorisation of the agent (mandate) is not recorded", "no_mandate"
        )
    if mandate.form not in MANDATE_FORMS:
        said = f"mandate form {mandate.form[:16]!r} must be one of {', '.join(MANDATE_FORMS)}"
        raise InvalidInput(said, "mandate_form", form=mandate.form[:16], forms=", ".join(MANDATE_FORMS))
    phone = request.phone.strip()
    if phone and not (phone.isdigit() and 7 <= len(phone) <= 15):
        raise InvalidInput("phone number must be 7 to 15 digits", "phone")
    _check_fields(request)
    cleaned = Request(item.code, name, number, phone, dict(request.fields), request.materials, mandate)
    return CheckedRequest(cleaned, item, item.missing_materials(set(request.materials)))


def _check_fields(request: Request) -> None:
    """What the agent types into an item's fields, and the materials' names, are short texts."""
    for key, value in request.fields.items():
        if len(key) > 64 or len(value) > MAX_TEXT:
            said = f"field {key[:32]!r} is longer than {MAX_TEXT} characters: shorten it"
            raise InvalidInput(said, "long_field", field=key[:32], n=MAX_TEXT)
    if any(len(name) > MAX_TEXT for name in request.materials):
        said = f"a material's name is longer than {MAX_TEXT} characters: shorten it"
        raise InvalidInput(said, "long_material", n=MAX_TEXT)
