"""``<node> audit verify``, the same on every tier: the node's own audit trail recomputed, and
the breaks it found in the chains of the nodes below it as they arrived."""

from typing import Any

import typer

from messages import t
from relay import audit
from relay._replay import check_cases
from relay.console import AsJson, Home, emit, err, out, run, with_node
from relay.node import Node


async def _verify(node: Node) -> dict[str, Any]:
    async with node.engine.connect() as conn:
        verdict = await audit.verify(conn, node.ledger.vault)
        # The rows of cases are checked against events the chain has vouched for.
        problem = verdict.problem or await check_cases(conn, node.ledger.vault)
        return {
            "code": node.config.code,
            "rows": verdict.rows,
            "head_seq": verdict.head.seq,
            "head_hash": verdict.head.hash.hex(),
            "problem": problem or None,
            "received": await audit.witnesses(conn),
            "breaks": await audit.breaks(conn),
        }


def _print(report: dict[str, Any]) -> None:
    if report["problem"]:
        err.print(t("cli.error", message=report["problem"]), markup=False, highlight=False)
    else:
        seq, hash_ = report["head_seq"], report["head_hash"][:16]
        out.print(
            t("cli.audit.whole", code=report["code"], rows=report["rows"], seq=seq, hash=hash_), markup=False
        )
    for peer in report["received"]:
        out.print(t("cli.audit.checked", node=peer["node"], seq=peer["seq"]), markup=False)
    for found in report["breaks"]:
        when, node, seq = found["recorded_at"][:19], found["node"], found["seq"]
        line = t("cli.audit.broken", when=when, node=node, seq=seq, reason=found["reason"])
        err.print(t("cli.error", message=line), markup=False, highlight=False)


def add_audit_commands(app: typer.Typer) -> None:
    audit_app = typer.Typer(help=t("cli.audit.app"))
    app.add_typer(audit_app, name="audit")

    @audit_app.command(help=t("cli.audit.verify"))
    def verify(home: Home, as_json: AsJson = False) -> None:
        """Recompute this node's audit trail and list the breaks found in the chains of the
        nodes below it; exit 1 naming the first broken row, or if any break was found."""
        report = run(with_node(home, _verify))
        emit(report, as_json, lambda: _print(report))
        if report["problem"] or report["breaks"]:
            raise typer.Exit(1)
