"""village-agent: the village service point's command line (runs on the agent's laptop)."""

import json
import os
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from casework import CaseworkError, InvalidInput, Request
from casework.lifecycle import CMD_COMPLAIN, CMD_DELIVER, CMD_RATE, CMD_SUPPLEMENT, CMD_WITHDRAW
from messages import refusal, t
from relay.auditcli import add_audit_commands
from relay.certcli import add_renew_command
from relay.console import (
    AsJson,
    Home,
    InsecureLoopback,
    WordedGroup,
    add_common_commands,
    add_sync_command,
    emit,
    fail,
    join_network,
    new_home,
    out,
    read_bundle,
    refused,
    run,
    run_service,
    serve_node,
    start,
    with_node,
)
from relay.enrollment import enroll_with_token
from relay.keyfile import KEY_FILE, change_passphrase, create_key, load_key
from relay.node import Node
from village_agent import service

TOKEN_ENV = "SERVICENET_ENROLL_TOKEN"  # init's one-time token, for scripts

app = typer.Typer(
    help=t("cli.app.village"),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=WordedGroup,
)
add_common_commands(app)
add_audit_commands(app)
add_sync_command(app)
add_renew_command(app, "village")


@app.command(help=t("cli.cmd.init_village"))
def init(
    home: Home,
    township: Annotated[str, typer.Option(help=t("cli.opt.township"))],
    bundle: Annotated[Path | None, typer.Option(help=t("cli.opt.bundle_village"))] = None,
    token: Annotated[str | None, typer.Option(help=t("cli.opt.token"))] = None,
    enroll: Annotated[str | None, typer.Option(help=t("cli.opt.enroll"))] = None,
    operator: Annotated[str, typer.Option(help=t("cli.opt.agent"))] = "",
    insecure_loopback: InsecureLoopback = False,
) -> None:
    """Set up this laptop as the village's service point: from a bundle made by the district,
    or with a one-time token from the township (the key is made here and never leaves)."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if token == "-":
        token = sys.stdin.readline().strip()
    if (bundle is None) == (token is None):
        fail(t("cli.village.bundle_or_token"))
    if bundle is not None:
        joined = read_bundle(bundle, "village")
    else:
        if not enroll:
            fail(t("cli.village.token_needs_enroll"))
        with _undone_on_failure(home):  # refused, nothing is left behind
            new_home(home)  # refused before the token is used up
            try:  # the passphrase chosen (checked, on a rerun) before the token is used up too
                load_key(home) if (home / KEY_FILE).exists() else create_key(home)
            except CaseworkError as exc:
                refused(exc)
            joined = run(enroll_with_token(enroll, token or ""))
    join_network(home, joined, township, None, operator or "agent", insecure_loopback)
    out.print(t("cli.village.created", code=joined.code, name=joined.name, home=home), markup=False)


@contextmanager
def _undone_on_failure(home: Path) -> Iterator[None]:
    """Remove the data key made, and the home folder made, if what follows fails."""
    made_home, made_key = not home.exists(), not (home / KEY_FILE).exists()
    try:
        yield
    except BaseException:
        if made_key:
            (home / KEY_FILE).unlink(missing_ok=True)
        if made_home and home.exists() and not any(home.iterdir()):
            home.rmdir()
        raise


@app.command(help=t("cli.cmd.passphrase"))
def passphrase(home: Home) -> None:
    """Change the passphrase of this village's data key (asked at the terminal; in scripts,
    SERVICENET_PASSPHRASE and SERVICENET_NEW_PASSPHRASE). The data stays as it is."""
    try:
        change_passphrase(home)
    except CaseworkError as exc:
        refused(exc)
    out.print(t("cli.village.passphrase_changed", file=home / KEY_FILE), markup=False)


@app.command(help=t("cli.cmd.catalog"))
def catalog(home: Home, as_json: AsJson = False) -> None:
    """The items this village can take, with the materials each needs."""
    items, version = run(with_node(home, _catalog))
    data = [{**item, "version": version} for item in items]

    def human() -> None:
        for item in items:
            needs = t("cli.village.list_separator").join(m["name"] for m in item["materials"])
            fields = {
                "code": item["code"],
                "name": item["name"],
                "days": item["committed_days"],
                "needs": needs,
            }
            out.print(t("cli.village.catalog_line", **fields), markup=False)

    emit(data, as_json, human)


@app.command(help=t("cli.cmd.guide"))
def guide(home: Home, item: str, as_json: AsJson = False) -> None:
    """The item's guide to read out or print for the villager: its legal basis, who may
    apply, the steps, what to bring, how long it takes, what it costs, who decides, where to ask
    and where to complain."""
    found = run(with_node(home, lambda node: _guide(node, item)))
    emit(found, as_json, lambda: _print_guide(found))


@app.command(help=t("cli.cmd.intake"))
def intake(
    home: Home,
    item: Annotated[str, typer.Option(help=t("cli.opt.item"))],
    applicant_name: Annotated[str, typer.Option(help=t("cli.opt.applicant_name"))],
    applicant_id: Annotated[str, typer.Option(help=t("cli.opt.applicant_id"))],
    phone: Annotated[str, typer.Option(help=t("cli.opt.phone"))] = "",
    field: Annotated[list[str] | None, typer.Option(help=t("cli.opt.field"))] = None,
    material: Annotated[list[str] | None, typer.Option(help=t("cli.opt.material"))] = None,
    mandate: Annotated[
        Path | None,
        typer.Option(help=t("cli.opt.mandate")),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Take one request; lists at once every material still missing. Records that the
    applicant authorised the agent (in person, or by the signed form given with --mandate)."""
    fields = _pairs(field or [], "--field", "KEY=VALUE")
    files = {name: Path(path) for name, path in _pairs(material or [], "--material", "NAME=PATH").items()}
    request = Request(item, applicant_name, applicant_id, phone, fields, tuple(files))
    taken = run(with_node(home, lambda node: _take_one(node, request, files, mandate)))
    data = {"case_id": taken.case_id, "status": "submitted", "missing_materials": taken.missing_materials}

    def human() -> None:
        out.print(t("cli.village.taken", case_id=taken.case_id), markup=False)
        if taken.missing_materials:
            missing = t("cli.village.list_separator").join(taken.missing_materials)
            out.print(t("cli.village.still_missing", materials=missing), markup=False)

    emit(data, as_json, human)


@app.command("import", help=t("cli.cmd.import"))
def import_(
    home: Home,
    file: Annotated[Path, typer.Argument(help=t("cli.opt.requests_file"))],
    as_json: AsJson = False,
) -> None:
    """Take many requests from a JSON Lines file; each line is taken or refused on its own."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        fail(t("cli.cannot_read", file=file, reason=exc.strerror))
    imported, refusals = run(with_node(home, lambda node: _import(node, lines)))
    emit(
        {"imported": imported, "refused": [{"line": n, "error": str(exc)} for n, exc in refusals]},
        as_json,
        lambda: out.print(
            t("cli.village.imported", imported=imported, refused=len(refusals))
            + "".join(
                "\n  " + t("cli.village.refused_line", line=n, error=refusal(str(exc), exc.code, exc.fields))
                for n, exc in refusals
            ),
            markup=False,
        ),
    )


@app.command("run", help=t("cli.cmd.run"))
def run_(
    home: Home,
    ui: Annotated[
        str | None,
        typer.Option(help=t("cli.opt.ui")),
    ] = None,
    open_browser: Annotated[bool, typer.Option("--open", help=t("cli.opt.open"))] = False,
) -> None:
    """Stay up and sync whenever the upstream can be reached (Ctrl+C to stop); with --ui, serve
    the intake app on the laptop too."""
    if ui is None:
        if open_browser:
            fail(t("cli.village.open_needs_ui"))
        run_service(serve_node(home, None))
        return
    address = _loopback(ui)
    if open_browser:
        _open_when_up(address)
    from village_agent.ui import intake_app, takes_files  # only here: pypinyin takes 0.4 s to load

    run_service(serve_node(home, None, ui, intake_app, uploads=takes_files))


@app.command(help=t("cli.cmd.deliver"))
def deliver(home: Home, case_id: str) -> None:
    """Record that the result was handed to the applicant."""
    run(with_node(home, lambda node: service.command(node, case_id, CMD_DELIVER, {})))
    out.print(t("cli.village.delivered", case_id=case_id), markup=False)


@app.command(help=t("cli.cmd.withdraw"))
def withdraw(
    home: Home, case_id: str, reason: Annotated[str, typer.Option(help=t("cli.opt.withdraw_reason"))] = ""
) -> None:
    """The applicant withdraws the request (before a decision)."""
    run(with_node(home, lambda node: service.command(node, case_id, CMD_WITHDRAW, {"reason": reason})))
    out.print(t("cli.village.withdrawn", case_id=case_id), markup=False)


@app.command(help=t("cli.cmd.supplement"))
def supplement(
    home: Home,
    case_id: str,
    material: Annotated[list[str], typer.Option(help=t("cli.opt.material"))],
) -> None:
    """Answer a correction notice with the materials it asked for."""
    files = {name: Path(path) for name, path in _pairs(material, "--material", "NAME=PATH").items()}
    if not files:
        fail(t("cli.village.no_material"))

    async def go(node: Node) -> None:
        payload = {"materials": service.describe_materials(files)}
        await service.command(node, case_id, CMD_SUPPLEMENT, payload)

    run(with_node(home, go))
    out.print(t("cli.village.supplemented", case_id=case_id), markup=False)


@app.command(help=t("cli.cmd.rate"))
def rate(
    home: Home,
    case_id: str,
    score: Annotated[int, typer.Option(min=1, max=5, help=t("cli.opt.score"))],
    comment: Annotated[str, typer.Option(help=t("cli.opt.comment"))] = "",
) -> None:
    """Record the applicant's rating of the service, after the decision."""
    payload = {"score": score, "comment": comment}
    run(with_node(home, lambda node: service.command(node, case_id, CMD_RATE, payload)))
    out.print(t("cli.village.rated", case_id=case_id), markup=False)


@app.command(help=t("cli.cmd.complain"))
def complain(
    home: Home, case_id: str, text: Annotated[str, typer.Option(help=t("cli.opt.complaint"))]
) -> None:
    """File the applicant's complaint about a case."""
    if not text.strip():
        fail(t("cli.village.empty_complaint"))
    payload = {"text": text.strip()}
    run(with_node(home, lambda node: service.command(node, case_id, CMD_COMPLAIN, payload)))
    out.print(t("cli.village.complained", case_id=case_id), markup=False)


async def _guide(node: Node, code: str) -> dict[str, Any]:
    return node.ledger.catalog.require(code).to_dict() | {"version": node.ledger.catalog.version}


def _print_guide(found: dict[str, Any]) -> None:
    """The guide as text; elements the catalog leaves empty (older versions) are left out."""
    _say(t("cli.guide.title", name=found["name"], code=found["code"], kind=found["item_type"]))
    _say(
        t(
            "cli.guide.handled_by",
            department=found["department"],
            level=t(f"cli.level.{found['decide_level']}"),
        )
    )
    _say_element(t("cli.guide.basis"), found["basis"])
    _say_list(t("cli.guide.conditions"), found["conditions"])
    _say_list(t("cli.guide.procedure"), found["procedure"], numbered=True)
    _say_list(t("cli.guide.bring"), [_material_line(m) for m in found["materials"]])
    _say(t("cli.guide.time_limit", committed=found["committed_days"], statutory=found["statutory_days"]))
    excluded = t("cli.village.list_separator").join(found["excluded_steps"])
    _say_element(t("cli.guide.excluded"), excluded)
    _say(t("cli.guide.free") if not found["fee"] else t("cli.guide.fee", fee=f"{found['fee']:g}"))
    _say_element(t("cli.guide.consultation"), found["consultation"])
    _say_element(t("cli.guide.complaint"), found["complaint"])


def _material_line(material: dict[str, Any]) -> str:
    need = t("cli.guide.required") if material["required"] else t("cli.guide.if_applicable")
    return t("cli.guide.material", name=material["name"], form=material["form"], need=need)


def _say_element(label: str, value: str) -> None:
    if value:
        _say(t("cli.guide.element", label=label, value=value))


def _say_list(label: str, lines: list[str], numbered: bool = False) -> None:
    if not lines:
        return
    _say(t("cli.guide.heading", label=label))
    for number, line in enumerate(lines, start=1):
        _say(f"  {number}. {line}" if numbered else f"  - {line}")


def _say(text: str) -> None:
    out.print(text, markup=False)


async def _catalog(node: Node) -> tuple[list[dict[str, Any]], str]:
    items = node.ledger.catalog.takeable_at("village")
    return [item.to_dict() for item in items], node.ledger.catalog.version


async def _take_one(
    node: Node, request: Request, files: dict[str, Path], mandate: Path | None
) -> service.Taken:
    [taken] = await service.take(node, [service.check(node, request, files, mandate)])
    return taken


async def _import(node: Node, lines: list[str]) -> tuple[int, list[tuple[int, CaseworkError]]]:
    checked, refusals = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            request, files, mandate = _request_from_json(line)
            checked.append(service.check(node, request, files, mandate))
        except CaseworkError as exc:
            refusals.append((number, exc))
    await service.take(node, checked)
    return len(checked), refusals


def _request_from_json(line: str) -> tuple[Request, dict[str, Path], Path | None]:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise InvalidInput("not a JSON object", "not_json") from exc
    if not isinstance(data, dict):
        raise InvalidInput("not a JSON object", "not_json")
    materials, fields = data.get("materials") or {}, data.get("fields") or {}
    if not isinstance(materials, dict) or not isinstance(fields, dict):
        raise InvalidInput("'materials' and 'fields' must be objects ({name: value})", "not_objects")
    files = {str(k): Path(str(v)) for k, v in materials.items()}
    fields = {str(k): str(v) for k, v in fields.items()}
    mandate = Path(str(data["mandate"])) if data.get("mandate") else None
    return (
        Request(
            str(data.get("item", "")),
            str(data.get("applicant_name", "")),
            str(data.get("applicant_id", "")),
            str(data.get("phone") or ""),
            fields,
            tuple(files),
        ),
        files,
        mandate,
    )


def _pairs(values: list[str], option: str, shape: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip():
            fail(t("cli.village.not_a_pair", option=option, value=repr(value), shape=shape))
        pairs[key.strip()] = rest
    return pairs


def _loopback(listen: str) -> tuple[str, int]:
    """The app holds villagers' personal data and has no login: it listens on loopback only."""
    host, _, port = listen.rpartition(":")
    if host.strip("[]") not in ("127.0.0.1", "::1", "localhost") or not port.isdigit() or int(port) == 0:
        fail(t("cli.village.ui_not_loopback", listen=repr(listen)))
    return host.strip("[]"), int(port)


def _open_when_up(address: tuple[str, int]) -> None:
    """Open the browser on the app as soon as it answers (within 30 s), from a side thread."""

    def wait_then_open() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(address, timeout=1).close()
            except OSError:
                time.sleep(0.2)
                continue
            host = f"[{address[0]}]" if ":" in address[0] else address[0]
            webbrowser.open(f"http://{host}:{address[1]}/")
            return

    threading.Thread(target=wait_then_open, daemon=True).start()


def main() -> None:
    start(app)
