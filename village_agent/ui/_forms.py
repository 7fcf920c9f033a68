"""What the intake app's forms do: check what the agent typed, keep the scans, then take the
request or queue the command through village_agent.service (the same use cases as the CLI).
A refusal is a Refused with words from the catalog for the agent; nothing is recorded then."""

import asyncio
from typing import Any

from casework import CaseworkError, InvalidInput, Item, Request, validate_resident_id
from casework.lifecycle import CMD_COMPLAIN, CMD_DELIVER, CMD_RATE, CMD_SUPPLEMENT, CMD_WITHDRAW, SCORES
from messages import refusal, t
from relay.multipart import Parts, Upload
from relay.node import Node
from relay.vault import SealedVault
from village_agent import service

MAX_TEXT = 500  # characters of a comment, a reason, a complaint
MANDATE_FORMS = ("in_person", "written")


class Refused(Exception):
    """A form the app cannot act on, with the words to show the agent."""


async def take(node: Node, item: Item, parts: Parts) -> service.Taken:
    """Take one request from the intake form: the applicant's details, a scan of each material
    handed in (file field ``m<index>`` for the item's material at that index), the mandate."""
    fields = parts.fields
    name, number, phone = _applicant(fields)
    if fields.get("mandate") not in MANDATE_FORMS:
        raise Refused(t("village_app.error.mandate"))
    mandate_scan = parts.files.get("mandate_scan")
    if fields["mandate"] == "written" and mandate_scan is None:
        raise Refused(t("village_app.error.mandate_scan"))
    handed_in = {m.name: parts.files[f"m{i}"] for i, m in enumerate(item.materials) if f"m{i}" in parts.files}
    files = await _keep(node, handed_in)
    mandate = (await _keep(node, {"": mandate_scan}))[""] if mandate_scan else None
    request = Request(item.code, name, number, phone, {}, tuple(files))
    try:
        [taken] = await service.take(node, [service.check(node, request, files, mandate)])
    except InvalidInput as exc:
        raise Refused(t("village_app.error.refused", detail=refusal(str(exc), exc.code, exc.fields))) from exc
    return taken


async def command(node: Node, case: dict[str, Any], action: str, parts: Parts) -> None:
    """Queue the command a case's form asks for (supplement, deliver, rate, withdraw, complain)."""
    fields = parts.fields
    payload: dict[str, Any]
    if action == "supplement":
        missing = enumerate(case["missing_materials"])
        named = {name: parts.files[f"m{i}"] for i, name in missing if f"m{i}" in parts.files}
        if not named:
            raise Refused(t("village_app.error.no_scans"))
        kind, payload = CMD_SUPPLEMENT, {"materials": service.describe_materials(await _keep(node, named))}
    elif action == "rate":
        kind, payload = CMD_RATE, {"score": _score(fields), "comment": _text(fields, "comment")}
    elif action == "complain":
        if not _text(fields, "text"):
            raise Refused(t("village_app.error.complaint"))
        kind, payload = CMD_COMPLAIN, {"text": _text(fields, "text")}
    elif action == "withdraw":
        kind, payload = CMD_WITHDRAW, {"reason": _text(fields, "reason")}
    else:
        kind, payload = CMD_DELIVER, {}
    try:
        await service.command(node, case["case_id"], kind, payload)
    except CaseworkError as exc:
        raise Refused(t("village_app.error.refused", detail=refusal(str(exc), exc.code, exc.fields))) from exc


def check_id(number: str) -> str:
    """The ID number normalised, or Refused saying in the agent's words what is wrong."""
    try:
        return validate_resident_id(number)
    except InvalidInput as exc:
        shaped = len(number.strip()) == 18 and number.strip()[:17].isdigit()
        raise Refused(t("village_app.error.id_check" if shaped else "village_app.error.id_shape")) from exc


def _applicant(fields: dict[str, str]) -> tuple[str, str, str]:
    name, phone = fields.get("name", "").strip(), fields.get("phone", "").strip()
    if not name or len(name) > 64:
        raise Refused(t("village_app.error.name"))
    number = check_id(fields.get("id_number", ""))
    if phone and not (phone.isdigit() and 7 <= len(phone) <= 15):
        raise Refused(t("village_app.error.phone"))
    return name, number, phone


async def _keep(node: Node, uploads: dict[str, Upload]) -> dict[str, service.Scan]:
    """Keep each upload sealed (relay.vault) before the case naming it is recorded; returns
    what was handed in, by name."""
    vault = node.ledger.vault
    assert isinstance(vault, SealedVault), "the intake app runs on a village, whose data is sealed"
    for upload in uploads.values():
        await asyncio.to_thread(vault.keep_scan, upload.data)
    return {name: upload.data for name, upload in uploads.items()}


def _score(fields: dict[str, str]) -> int:
    given = fields.get("score", "")
    if not given.isdigit() or int(given) not in SCORES:
        raise Refused(t("village_app.error.score"))
    return int(given)


def _text(fields: dict[str, str], name: str) -> str:
    return fields.get(name, "").strip()[:MAX_TEXT]
