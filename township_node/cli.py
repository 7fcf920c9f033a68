"""township-node: the township convenience center's command line."""

from pathlib import Path
from typing import Annotated

import typer

from casework.lifecycle import ESCALATED
from relay.auditcli import add_audit_commands
from relay.console import (
    AsJson,
    CaseIds,
    Home,
    InsecureLoopback,
    Staff,
    add_common_commands,
    add_supervise_command,
    add_sync_command,
    join_network,
    out,
    run_service,
    serve_node,
)
from relay.deskcli import add_staff_commands, staff_action

app = typer.Typer(
    help="A township node: decides township items, escalates the rest to the district.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
add_common_commands(app)
add_audit_commands(app)
add_staff_commands(app)
add_supervise_command(app)
add_sync_command(app)


@app.command()
def init(
    home: Home,
    bundle: Annotated[Path, typer.Option(help="The enrollment bundle from the district.")],
    district: Annotated[str, typer.Option(help="HOST:PORT of the district hub.")],
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: SQLite in --home).")] = None,
    operator: Annotated[str, typer.Option(help="Staff recorded when a command names nobody.")] = "",
    insecure_loopback: InsecureLoopback = False,
) -> None:
    """Create this township's node from its bundle."""
    joined = join_network(home, bundle, "township", district, db, operator or "township", insecure_loopback)
    out.print(f"township {joined.code} {joined.name} created in {home}", markup=False)


@app.command()
def serve(
    home: Home,
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on.")],
    http: Annotated[
        str | None,
        typer.Option(help="HOST:PORT for /metrics (no login: bind it to an internal address)."),
    ] = None,
) -> None:
    """Serve the villages and sync with the district (runs until SIGTERM or Ctrl+C)."""
    run_service(serve_node(home, listen, http))


@app.command()
def escalate(
    home: Home,
    case_ids: CaseIds,
    opinion: Annotated[str, typer.Option(help="The township's preliminary opinion.")] = "",
    staff: Staff = "",
    as_json: AsJson = False,
) -> None:
    """Send accepted district items up to the district."""
    staff_action(home, case_ids, ESCALATED, {"opinion": opinion}, staff, as_json)


def main() -> None:
    app()
