"""The command-line contract of shared/docs/cli.md: setup refusals and JSON shapes."""

import json
import re
from pathlib import Path

import pytest

from messages import t
from tests.netkit import IDS, Network, requests_file

pytestmark = pytest.mark.e2e


@pytest.fixture
def net(homes: Network) -> Network:
    """A district with township 500117001 and village 500117001005, no servers."""
    return homes


def test_enroll_refuses_codes_outside_divisions_or_at_wrong_level(net: Network) -> None:
    """Enrolling an unknown code or the district itself is refused in one line, in the
    catalog's words."""
    outside = t("refusal.not_a_division", division="500117999", district="合川区", district_code="500117")
    node_levels = t("cli.level.township") + t("refusal.or") + t("cli.level.village")
    district = t(
        "refusal.division_level", division="500117", level=t("cli.level.district"), levels=node_levels
    )
    for code, words in (("500117999", outside), ("500117", district)):
        done = net.node("500117", "enroll", "--code", code, "--out", str(net.root / "x"), check=False)
        assert done.returncode == 2 and not (net.root / "x").exists()
        assert done.stderr.decode() == t("cli.error", message=words) + "\n"


def test_init_refuses_divisions_of_another_district(tmp_path: Path) -> None:
    """A district initialised with another district's divisions file is refused, no node made."""
    divisions = str(Path(__file__).parent.parent / "casework/data/hechuan-500117.csv")
    said = t("cli.district.other_district", file=divisions, found="500117", code="500118")
    with pytest.raises(AssertionError, match=re.escape(said)):
        Network(tmp_path / "n").cli(
            "district", "500118", "init", "--code", "500118", "--divisions", divisions
        )
    assert not (tmp_path / "n" / "500118").exists()


def test_village_bundle_refused_by_township_init(net: Network) -> None:
    """A village's bundle cannot make a township node."""
    done = net.cli(
        "township",
        "x",
        "init",
        "--bundle",
        str(net.root / "500117001005.bundle"),
        "--district",
        "127.0.0.1:1",
        check=False,
    )
    levels = {"level": t("cli.level.village"), "wanted_level": t("cli.level.township")}
    said = t("refusal.bundle_level", source=str(net.root / "500117001005.bundle"), **levels)
    assert done.returncode == 2 and done.stderr.decode() == t("cli.error", message=said) + "\n"


def test_catalog_json_lists_what_the_village_can_take(net: Network) -> None:
    """catalog --json: each item with code, levels, materials and working-day limits."""
    items = net.node("500117001005", "catalog", "--json")
    assert items and all(item["accept_level"] == "village" for item in items)
    first = items[0]
    assert {
        "code",
        "name",
        "accept_level",
        "decide_level",
        "materials",
        "statutory_days",
        "committed_days",
        "version",
    } <= set(first)
    assert {"name", "required"} <= set(first["materials"][0])


def test_import_takes_good_lines_and_names_bad_ones(net: Network) -> None:
    """import: each line taken or refused on its own; refusals name the line and the reason."""
    path = requests_file(net.root / "drive.jsonl", 5)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("not json\n")
        handle.write(
            json.dumps(
                {"item": "twp-pension-enroll", "applicant_name": "赵六", "applicant_id": IDS[0][:-1] + "0"}
            )
            + "\n"
        )
    report = net.node("500117001005", "import", str(path), "--json")
    assert report["imported"] == 5
    assert [(r["line"], r["error"][:8]) for r in report["refused"]] == [(6, "not a JS"), (7, "resident")]
    assert len(net.cases("500117001005")) == 5


def test_guide_tells_what_to_bring_and_how_long(net: Network) -> None:
    """guide --json: the item's materials, time limits, fee and who decides, for the villager."""
    found = net.node("500117001005", "guide", "twp-dibao-apply", "--json")
    assert (found["decide_level"], found["committed_days"], found["statutory_days"]) == ("district", 20, 30)
    assert found["fee"] == 0 and len(found["materials"]) == 5
    unknown = net.node("500117001005", "guide", "no-such-item", check=False)
    said = t("cli.error", message=t("refusal.unknown_item", item="no-such-item"))
    assert unknown.returncode == 2 and unknown.stderr.decode() == said + "\n"


def test_guide_text_shows_the_steps_and_where_to_complain(net: Network) -> None:
    """guide (text): the numbered procedure, the steps not counted, material forms, the channels."""
    item = net.node("500117001005", "guide", "twp-dibao-apply", "--json")
    assert item["basis"] and item["excluded_steps"] == ["公示"]
    text = net.node("500117001005", "guide", "twp-dibao-apply").stdout.decode()
    for number, step in enumerate(item["procedure"], start=1):
        assert f"  {number}. {step}\n" in text
    for label, value in (
        ("complaint", item["complaint"]),
        ("consultation", item["consultation"]),
        ("excluded", "公示"),
    ):
        assert t("cli.guide.element", label=t(f"cli.guide.{label}"), value=value) + "\n" in text
    material = t("cli.guide.material", name="最低生活保障申请书", form="原件", need=t("cli.guide.required"))
    assert material in text and t("cli.guide.free") in text and item["basis"] in text


def test_a_command_on_a_case_the_village_does_not_hold_is_refused_in_its_words(net: Network) -> None:
    """deliver with a mistyped case number: one line naming the number, nothing recorded."""
    done = net.node("500117001005", "deliver", "500117001005-x", check=False)
    said = t("cli.error", message=t("refusal.no_village_case", case_id="500117001005-x"))
    assert done.returncode == 2 and done.stderr.decode() == said + "\n"
    assert net.cases("500117001005") == []
