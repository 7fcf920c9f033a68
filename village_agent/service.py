"""The village agent's own use cases: taking requests and sending commands upward."""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select

from casework import CheckedRequest, IllegalTransition, InvalidInput, Mandate, Request, check_request
from casework.catalog import MANDATE_DOCUMENT
from casework.lifecycle import SUBMITTED
from relay.clock import uuid7
from relay.node import Node
from relay.schema import cases


@dataclass(frozen=True, slots=True)
class Taken:
    case_id: str
    missing_materials: list[str]


Scan = Path | bytes  # a material's scan: a file (the command line) or what was uploaded (the app)


def check(
    node: Node, request: Request, files: Mapping[str, Scan], mandate: Scan | None = None
) -> tuple[CheckedRequest, list[dict[str, Any]]]:
    """Everything intake refuses, refused before anything is written. The applicant
    authorises this node's agent in person, or by the signed form ``mandate`` (a scan: its
    file, or what was handed in)."""
    if mandate is not None:
        files = {**files, MANDATE_DOCUMENT: mandate}
    form = "written" if mandate is not None else "in_person"
    request = replace(request, mandate=Mandate(node.config.operator, form))
    return check_request(node.ledger.catalog, request), describe_materials(files)


def describe_materials(files: Mapping[str, Scan]) -> list[dict[str, Any]]:
    """Name, SHA-256 and size of each material's scan; InvalidInput if one cannot be read."""
    materials = []
    for name, scan in files.items():
        data = scan if isinstance(scan, bytes) else _read(name, scan)
        materials.append({"name": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    return materials


def _read(name: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        said = f"material {name!r}: cannot read {path} ({exc.strerror})"
        raise InvalidInput(
            said, "material_unreadable", name=name, path=str(path), reason=exc.strerror
        ) from exc


async def take(node: Node, checked: list[tuple[CheckedRequest, list[dict[str, Any]]]]) -> list[Taken]:
    """Record checked requests as new cases, in one transaction, queued for the township."""
    code, township = node.config.code, node.config.upstream_code
    changes = [(uuid7(), SUBMITTED, _payload(node, r, m), code, township) for r, m in checked]
    async with node.engine.begin() as conn:
        for start in range(0, len(changes), 1000):
            await node.ledger.record_many(conn, changes[start : start + 1000])
    return [Taken(c[0], r.missing_materials) for c, (r, _) in zip(changes, checked, strict=True)]


def _payload(node: Node, checked: CheckedRequest, materials: list[dict[str, Any]]) -> dict[str, Any]:
    request = checked.request
    return {
        "item_code": request.item_code,
        "decide_level": checked.item.decide_level,
        "applicant": {
            "name": request.applicant_name,
            "id_number": request.applicant_id,
            "phone": request.phone,
        },
        "fields": request.fields,
        "materials": materials,
        "missing_materials": checked.missing_materials,
        "mandate": request.mandate.to_dict() if request.mandate else None,
        "joint_departments": list(checked.item.joint_departments),
        "village_code": node.config.code,
        "township_code": node.config.upstream_code,
    }


async def command(node: Node, case_id: str, command_type: str, payload: dict[str, Any]) -> None:
    """Queue a command (deliver, withdraw, supplement, rate, complain) for the case's owner."""
    async with node.engine.begin() as conn:
        row = (await conn.execute(select(cases).where(cases.c.case_id == case_id))).first()
        if row is None:
            said = f"no case {case_id} in this village: check the case number"
            raise IllegalTransition(said, "no_village_case", case_id=case_id)
        await node.ledger.record(conn, case_id, command_type, payload, row.village_code, row.township_code)
