"""township-node: the township convenience center's command line."""

from pathlib import Path
from typing import Annotated

import typer

from messages import t
from relay import actions
from relay.auditcli import add_audit_commands
from relay.certcli import add_renew_command
from relay.clock import iso
from relay.console import (
    AsJson,
    CaseIds,
    Home,
    InsecureLoopback,
    Staff,
    WordedGroup,
    add_common_commands,
    add_supervise_command,
    add_sync_command,
    emit,
    join_network,
    out,
    read_bundle,
    run,
    run_service,
    serve_node,
    start,
    with_node,
)
from relay.deskcli import add_staff_commands, staff_action
from relay.deskweb import desk
from relay.enrollment import TOKEN_MINUTES, Token, make_token
from relay.node import Node
from relay.webcli import add_web_user_commands

app = typer.Typer(
    help=t("cli.app.township"),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=WordedGroup,
)
add_common_commands(app)
add_audit_commands(app)
add_staff_commands(app)
add_supervise_command(app)
add_sync_command(app)
add_renew_command(app, "township")
add_web_user_commands(
    app,
    t("cli.cmd.web_user_township"),
    roster_only=True,
)


@app.command(help=t("cli.cmd.init_township"))
def init(
    home: Home,
    bundle: Annotated[Path, typer.Option(help=t("cli.opt.bundle_township"))],
    district: Annotated[str, typer.Option(help=t("cli.opt.district"))],
    db: Annotated[str | None, typer.Option("--db", help=t("cli.opt.db"))] = None,
    operator: Annotated[str, typer.Option(help=t("cli.opt.operator"))] = "",
    insecure_loopback: InsecureLoopback = False,
) -> None:
    """Create this township's node from its bundle."""
    joined = read_bundle(bundle, "township")
    join_network(home, joined, district, db, operator or "township", insecure_loopback)
    out.print(t("cli.township.created", code=joined.code, name=joined.name, home=home), markup=False)


@app.command(help=t("cli.cmd.serve_township"))
def serve(
    home: Home,
    listen: Annotated[str, typer.Option(help=t("cli.opt.listen"))],
    http: Annotated[
        str | None,
        typer.Option(help=t("cli.opt.http_township")),
    ] = None,
    enroll_listen: Annotated[
        str | None,
        typer.Option(help=t("cli.opt.enroll_listen")),
    ] = None,
) -> None:
    """Serve the villages and sync with the district (runs until SIGTERM or Ctrl+C)."""
    run_service(serve_node(home, listen, http, desk if http else None, enroll_listen=enroll_listen))


@app.command("enroll-token", help=t("cli.cmd.enroll_token"))
def enroll_token(
    home: Home,
    village: Annotated[str, typer.Option(help=t("cli.opt.token_village"))],
    minutes: Annotated[int, typer.Option(help=t("cli.opt.token_minutes"))] = TOKEN_MINUTES,
    as_json: AsJson = False,
) -> None:
    """A one-time token for a new village laptop: 'village-agent init --token' with it at the
    enrollment address ('serve --enroll-listen') gets the village its certificate."""
    token = run(with_node(home, lambda node: _token(node, village, minutes)))
    expires = iso(token.expires_at)
    emit(
        {"village": token.village, "token": token.text, "expires_at": expires},
        as_json,
        lambda: out.print(
            t("cli.township.token", village=token.village, expires=expires, token=token.text), markup=False
        ),
    )


async def _token(node: Node, village: str, minutes: int) -> Token:
    async with node.engine.begin() as conn:
        return await make_token(conn, node.config, village, minutes)


@app.command(help=t("cli.cmd.escalate"))
def escalate(
    home: Home,
    case_ids: CaseIds,
    opinion: Annotated[str, typer.Option(help=t("cli.opt.opinion"))] = "",
    staff: Staff = "",
    as_json: AsJson = False,
) -> None:
    """Send accepted district items up to the district."""
    staff_action(home, case_ids, lambda: actions.escalate(opinion), staff, as_json)


def main() -> None:
    start(app)
