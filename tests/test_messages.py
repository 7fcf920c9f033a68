"""The message catalog: every language holds the same keys with the same fields, every key the
code asks for exists, and no program module holds user-facing Chinese words of its own."""

import ast
import os
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest

from casework.lifecycle import EVENT_TYPES
from messages import LANGUAGES, catalog, language, t

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")
# Chinese that is data, not the program's words: sample applicants and notes of the demo and
# the benches, and the catalog's own terms for a material's form (原件, 复印件) and for the
# signed authorisation recorded among a case's materials (代办授权委托书).
DATA = ("bench/", "demo_network/", "casework/catalog.py")


def program_modules() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / name for name in listed.stdout.split() if not name.startswith("tests/")]


def string_constants(path: Path) -> list[ast.Constant]:
    """The module's string literals, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_language_has_the_same_keys_and_fields() -> None:
    default = catalog("zh-CN")
    for lang in LANGUAGES:
        other = catalog(lang)
        assert other.keys() == default.keys(), f"{lang}: {sorted(other.keys() ^ default.keys())}"
        assert [k for k in default if fields(default[k]) != fields(other[k])] == [], lang


def test_every_key_the_code_asks_for_exists() -> None:
    keys = catalog("zh-CN").keys()
    asked = {
        (path.relative_to(ROOT).as_posix(), node.args[0].value)
        for path in program_modules()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "t"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert asked, "no t(...) calls found: the scan is broken"
    assert sorted((where, key) for where, key in asked if key not in keys) == []


def test_no_program_module_holds_chinese_words_of_its_own() -> None:
    found = [
        f"{path.relative_to(ROOT).as_posix()}:{node.lineno}"
        for path in program_modules()
        if not path.relative_to(ROOT).as_posix().startswith(DATA)
        for node in string_constants(path)
        if CJK.search(node.value)
    ]
    assert found == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SERVICENET_LANG": "en", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "C.UTF-8", "LANG": "en_US.UTF-8"}, "zh-CN"),
        ({}, "zh-CN"),
        ({"SERVICENET_LANG": "fr"}, "zh-CN"),
    ],
)
def test_the_language_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name in ("SERVICENET_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert language() == expected


def test_a_message_fills_its_fields_in_the_language_asked() -> None:
    assert t("ago.minutes", lang="zh-CN", n=3) == "3分钟前"
    assert t("ago.minutes", lang="en", n=3) == "3 min ago"
    assert t("status.accepted", lang="en") == "Accepted"


def test_every_event_type_has_words() -> None:
    """Pages name each event of a case's history by its type (``event.<type>``)."""
    for lang in LANGUAGES:
        assert sorted(k for k in EVENT_TYPES if f"event.{k}" not in catalog(lang)) == [], lang


def test_every_refusal_code_has_its_words() -> None:
    """A domain or roster refusal raised with a code (CaseworkError's second argument) is worded
    in the catalog as refusal.CODE, and so is every text staff must give (relay.actions.said)."""
    keys = catalog("zh-CN").keys()
    coded, said = set(), set()
    for path in program_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = (
                getattr(node.func, "id", getattr(node.func, "attr", None))
                if isinstance(node, ast.Call)
                else None
            )
            if not (
                isinstance(node, ast.Call) and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
            ):
                continue
            if name in ("IllegalTransition", "InvalidInput"):
                coded.add(node.args[1].value)
            elif name in ("said", "_said"):
                said.add(f"say.{str(node.args[1].value).removeprefix('the ')}")
    assert {"supervisor", "not_served", "wrong_status", "say.reason"} <= coded | said, "the scan is broken"
    assert sorted(code for code in coded | said if f"refusal.{code}" not in keys) == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_command_lines_speak_the_language_asked(tmp_path: Path, lang: str) -> None:
    """A command's help (Typer's panel titles too) and its messages are Chinese where no language
    is asked for, English with SERVICENET_LANG=en."""
    unset = ("SERVICENET_LANG", "LC_ALL", "LC_MESSAGES", "LANG")
    env = {k: v for k, v in os.environ.items() if k not in unset} | {"COLUMNS": "300"}
    env |= {"SERVICENET_LANG": "en"} if lang == "en" else {}
    command = [sys.executable, "-m", "village_agent", "complain", "--home", str(tmp_path), "C1"]
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, env=env, check=True)
    assert (
        t("cli.cmd.complain", lang=lang) in shown.stdout and t("cli.opt.complaint", lang=lang) in shown.stdout
    )
    assert f"─ {t('cli.typer.options', lang=lang)} ─" in shown.stdout  # Typer's own panel title too
    refused = subprocess.run([*command, "--text", " "], capture_output=True, text=True, env=env)
    said = t("cli.error", lang=lang, message=t("cli.village.empty_complaint", lang=lang))
    assert refused.returncode == 2 and refused.stderr == said + "\n"


def test_click_usage_errors_are_one_line_in_the_language_asked(tmp_path: Path) -> None:
    """A missing or unknown option, an unknown command, a value that is no number: each is told
    as the node's own refusals are, one line in the user's language with where help is, not in
    Click's English usage box; exit status 2 as before."""
    env = {k: v for k, v in os.environ.items() if k not in ("SERVICENET_HOME", "SERVICENET_LANG")}
    tool = [sys.executable, "-m", "village_agent"]
    home = ["--home", str(tmp_path)]

    def said(*args: str, lang: str = "zh-CN") -> str:
        done = subprocess.run(
            [*tool, *args], capture_output=True, text=True, env=env | {"SERVICENET_LANG": lang}
        )
        assert done.returncode == 2, done.stderr
        return done.stderr

    def line(what: str, command: str, lang: str = "zh-CN") -> str:
        path = " ".join(filter(None, ("python -m village_agent", command, "--help")))  # as Click names it
        return t("cli.error", lang, message=t("cli.usage.line", lang, what=what, command=path)) + "\n"

    missing = t("cli.usage.missing_option", name="--home") + t("cli.usage.or_env", env="SERVICENET_HOME")
    assert said("cases") == line(missing, "cases")
    assert said("cases", *home, "--colour") == line(t("cli.usage.no_such_option", option="--colour"), "cases")
    unknown = t("cli.usage.no_such_command", command="sinc") + t("cli.usage.did_you_mean", options="sync")
    assert said("sinc") == line(unknown, "")
    not_a_number = t("cli.usage.bad_value", name="--timeout", reason=t("cli.usage.not_a_number"))
    assert said("sync", *home, "--timeout", "soon") == line(not_a_number, "sync")
    english = t("cli.usage.missing_option", "en", name="--home")
    english += t("cli.usage.or_env", "en", env="SERVICENET_HOME")
    assert said("cases", lang="en") == line(english, "cases", "en")


def test_a_folder_without_a_node_is_refused_in_the_language_asked(tmp_path: Path) -> None:
    """--home naming a folder with no node in it: a coded refusal, worded by the catalog."""
    env = {k: v for k, v in os.environ.items() if k not in ("SERVICENET_HOME", "SERVICENET_LANG")}
    tool = [sys.executable, "-m", "district_node"]
    done = subprocess.run([*tool, "cases", "--home", str(tmp_path)], capture_output=True, text=True, env=env)
    said = t("cli.error", message=t("refusal.no_node", home=str(tmp_path)))
    assert (done.returncode, done.stderr) == (2, said + "\n")
