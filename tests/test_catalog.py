"""The catalog's guide elements (办事指南): the shipped items have them, bad ones are refused."""

from typing import Any

import pytest

from casework import InvalidInput, default_catalog, parse_catalog
from casework.catalog import FORMS
from messages import refusal

CODE = "twp-dibao-apply"


def shipped(code: str = CODE) -> dict[str, Any]:
    return default_catalog().items[code].to_dict()


def test_every_shipped_item_has_the_guide_elements() -> None:
    """Each shipped item names its basis, procedure, where to ask and where to complain."""
    catalog = default_catalog()
    assert catalog.version == "2026.2"
    for item in catalog.items.values():
        assert item.basis and item.procedure and item.consultation and item.complaint_channel, item.code
        assert all(m.form in FORMS for m in item.materials), item.code


def test_excluded_steps_are_steps_of_the_procedure() -> None:
    """Every step kept out of the time limit is one the procedure shows (公示, 鉴定)."""
    items = default_catalog().items
    for item in items.values():
        for step in item.excluded_steps:
            assert any(step in line for line in item.procedure), (item.code, step)
    assert items[CODE].excluded_steps == ("公示",)
    assert items["twp-disab-cert"].excluded_steps == ("评残鉴定",)
    assert items["twp-legal-aid"].excluded_steps == ()


def test_guide_elements_survive_a_round_trip() -> None:
    """to_dict() of a parsed item parses back to the same item, forms and channels included."""
    item = default_catalog().items[CODE]
    again = parse_catalog({"version": "x", "items": [item.to_dict()]}).items[CODE]
    assert again == item
    assert item.to_dict()["complaint"] == item.complaint_channel
    assert {"name", "required", "form"} == set(item.to_dict()["materials"][0])


def test_old_shape_item_still_parses_with_empty_elements() -> None:
    """An item of an older catalog, without the guide elements, parses with their defaults."""
    new_keys = ("basis", "conditions", "procedure", "consultation", "complaint", "excluded_steps", "typical")
    old = {k: v for k, v in shipped().items() if k not in new_keys}
    old["materials"] = [{"name": m["name"], "required": m["required"]} for m in old["materials"]]
    item = parse_catalog({"version": "2026.1", "items": [old]}).items[CODE]
    assert (item.basis, item.conditions, item.procedure, item.excluded_steps) == ("", (), (), ())
    assert (item.consultation, item.complaint_channel, item.typical) == ("", "", ())
    assert {m.form for m in item.materials} == {"原件"}


def with_form(form: object) -> dict[str, Any]:
    item = shipped()
    item["materials"][0]["form"] = form
    return item


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (with_form("扫描件"), "material '最低生活保障申请书' 'form' must be 原件, 复印件 or 原件和复印件"),
        (with_form(None), "'form' must be"),
        (shipped() | {"excluded_steps": ["公示", "公示"]}, "'excluded_steps' names '公示' twice"),
        (shipped() | {"excluded_steps": [""]}, "'excluded_steps' must be a list of non-empty strings"),
        (shipped() | {"excluded_steps": "公示"}, "'excluded_steps' must be a list"),
        (shipped() | {"conditions": "年满60周岁"}, "'conditions' must be a list of non-empty strings"),
        (shipped() | {"procedure": ["受理", 2]}, "'procedure' must be a list"),
        (shipped() | {"basis": ["社会救助暂行办法"]}, "'basis' must be a string"),
        (shipped() | {"complaint": 12345}, "'complaint' must be a string"),
        (shipped() | {"typical": "fee"}, "'typical' must be a list"),
    ],
)
def test_bad_guide_element_is_refused_in_one_line_naming_the_item(item: dict[str, Any], message: str) -> None:
    """A bad form, step list or channel is refused with one line naming the item and the field."""
    with pytest.raises(InvalidInput, match=message) as refused:
        parse_catalog({"version": "x", "items": [item]})
    assert str(refused.value).startswith(f"catalog item {CODE!r}: ")
    assert "\n" not in str(refused.value)
    worded = refusal(str(refused.value), refused.value.code, refused.value.fields)  # as the CLI shows it
    assert worded.startswith(f"目录事项 {CODE!r}：") and "\n" not in worded
