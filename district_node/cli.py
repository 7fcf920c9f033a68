"""district-node: the district hub's command line."""

import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from casework import Divisions, InvalidInput
from casework.lifecycle import RETURNED
from district_node import coverage
from district_node.dashboard import add_user, dashboard, list_users, remove_user
from relay import calendars, catalogs
from relay.auditcli import add_audit_commands
from relay.bundle import Bundle
from relay.clock import now_us
from relay.config import CONFIG_FILE, NodeConfig, TLSConfig, default_db_url
from relay.console import (
    AsJson,
    Home,
    InsecureLoopback,
    add_common_commands,
    add_supervise_command,
    create_node,
    emit,
    fail,
    new_home,
    out,
    run,
    run_service,
    serve_node,
    with_node,
)
from relay.deskcli import Reason, add_staff_commands, staff_action
from relay.joining import found_network, issue_for
from relay.node import CATALOG_FILE, Node
from relay.schema import nodes

DIVISIONS_FILE = "divisions.csv"
app = typer.Typer(
    help="The district hub: receives every township's cases, decides district items.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
add_common_commands(app)
add_audit_commands(app)
add_staff_commands(app)
add_supervise_command(app)


@app.command("return")
def return_for_rework(
    home: Home,
    case_ids: Annotated[list[str], typer.Argument(help="One or more case ids.")],
    reason: Reason,
    staff: Annotated[str, typer.Option("--staff", help="Who acts (default: the node's operator).")] = "",
    as_json: AsJson = False,
) -> None:
    """Send escalated cases back to their township for rework, saying what to rework."""
    staff_action(home, case_ids, RETURNED, {"reason": reason.strip()}, staff, as_json)


@app.command()
def init(
    home: Home,
    code: Annotated[str, typer.Option(help="The district's division code, e.g. 500117.")],
    divisions: Annotated[Path, typer.Option(help="CSV file: code,name,parent_code,level.")],
    catalog: Annotated[Path | None, typer.Option(help="A catalog JSON file (default: shipped).")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Database URL (default: SQLite in --home).")] = None,
    operator: Annotated[str, typer.Option(help="Staff recorded when a command names nobody.")] = "",
    insecure_loopback: InsecureLoopback = False,
) -> None:
    """Create the district hub in --home, with the network's certificate authority."""
    known = run(_check_divisions(divisions, code))
    if catalog is not None:
        run(_check_catalog(catalog))
    new_home(home)
    shutil.copyfile(divisions, home / DIVISIONS_FILE)
    if catalog is not None:
        shutil.copyfile(catalog, home / CATALOG_FILE)
    config = NodeConfig(
        code=code,
        role="district",
        name=known.district.name,
        district_code=code,
        db_url=db or default_db_url(home),
        operator=operator or "district",
        tls=TLSConfig(insecure_loopback=insecure_loopback),
    )
    try:
        found_network(home, code, config.tls)
    except OSError as exc:
        fail(f"cannot keep the certificate authority in {home}: {exc.strerror}")
    run(create_node(home, config))
    out.print(f"district {code} {known.district.name} created in {home}", markup=False)


@app.command()
def enroll(
    home: Home,
    code: Annotated[str, typer.Option(help="Division code of a township or village of this district.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the bundle.")],
    as_json: AsJson = False,
) -> None:
    """Enroll a township or village: write the bundle it joins the network with."""
    if not out_file.parent.is_dir():
        fail(f"cannot write the bundle: folder {out_file.parent} does not exist")
    bundle = run(with_node(home, lambda node: _enroll(node, code)))
    bundle.write(out_file)
    emit(
        {"code": bundle.code, "role": bundle.role, "name": bundle.name, "bundle": str(out_file)},
        as_json,
        lambda: out.print(f"enrolled {bundle.role} {bundle.code} {bundle.name}: {out_file}", markup=False),
    )


catalog_app = typer.Typer(help="The service catalog the district publishes to every node.")
app.add_typer(catalog_app, name="catalog")


@catalog_app.command()
def publish(home: Home, file: Path, as_json: AsJson = False) -> None:
    """Publish a new catalog version; every township and village takes it at its next sync."""
    try:
        document = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    version = run(with_node(home, lambda node: _publish(node, document)))
    emit({"version": version}, as_json, lambda: out.print(f"catalog {version} published", markup=False))


calendar_app = typer.Typer(help="The holiday calendar the district publishes to every node.")
app.add_typer(calendar_app, name="calendar")


@calendar_app.command("publish")
def publish_calendar(home: Home, file: Path, as_json: AsJson = False) -> None:
    """Publish the holidays and adjusted workdays of further years (the State Council's notice,
    as JSON: version, years); every node counts deadlines by them after its next sync."""
    try:
        document = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    version, years = run(with_node(home, lambda node: _publish_calendar(node, document)))
    emit(
        {"version": version, "years": years},
        as_json,
        lambda: out.print(f"calendar {version} published: {', '.join(map(str, years))}", markup=False),
    )


@app.command()
def serve(
    home: Home,
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on.")],
    http: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT for the web dashboard (staff login: see web-user) and /metrics (no login: "
            "bind it to an internal address)."
        ),
    ] = None,
) -> None:
    """Serve the townships (runs until SIGTERM or Ctrl+C)."""
    pages = (lambda node: dashboard(node, node.home / DIVISIONS_FILE)) if http else None
    run_service(serve_node(home, listen, http, pages))


@app.command("coverage")
def coverage_report(home: Home, as_json: AsJson = False) -> None:
    """Per township: villages enrolled, active in the last day or week, silent, never seen,
    backlog, last push and breaks found in its audit trail; and the district's coverage
    (villages active in the last week)."""

    async def load(node: Node) -> dict[str, Any]:
        divisions = Divisions.from_csv(home / DIVISIONS_FILE)
        return coverage.summary(await coverage.coverage(node, divisions, now_us()))

    report = run(with_node(home, load))

    def human() -> None:
        columns = ("villages", "enrolled", "day", "week", "silent", "never", "backlog", "audit breaks")
        table = Table("township", "", *columns)
        for row in report["townships"]:
            counts = ("villages", "enrolled", "active_day", "active_week", "silent", "never")
            backlog = "-" if row["backlog"] is None else str(row["backlog"])
            breaks = str(row["audit_breaks"] or "")
            table.add_row(row["code"], row["name"], *(str(row[c]) for c in counts), backlog, breaks)
        out.print(table)
        share = "-" if report["coverage"] is None else f"{report['coverage']:.1%}"
        out.print(f"coverage: {share} of {report['villages']} villages active in the last week", markup=False)

    emit(report, as_json, human)


web_user_app = typer.Typer(help="Staff who may log in to the web dashboard (serve --http).")
app.add_typer(web_user_app, name="web-user")


@web_user_app.command("add")
def web_user_add(
    home: Home,
    name: Annotated[str, typer.Option(help="The login name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Add a dashboard user, or set a new password for one (which ends their sessions)."""
    if not (home / CONFIG_FILE).exists():
        fail(f"no node in {home}: run 'init' first (or pass --home)")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        new = add_user(home, name, password)
    except InvalidInput as exc:
        fail(str(exc))
    out.print(f"web user {name.strip()} {'added' if new else 'has a new password'}", markup=False)


@web_user_app.command("remove")
def web_user_remove(home: Home, name: Annotated[str, typer.Option(help="The login name.")]) -> None:
    """Remove a dashboard user; their sessions end at once."""
    try:
        remove_user(home, name)
    except InvalidInput as exc:
        fail(str(exc))
    out.print(f"web user {name} removed", markup=False)


@web_user_app.command("list")
def web_user_list(home: Home, as_json: AsJson = False) -> None:
    """The dashboard's users and when each password was set."""
    try:
        users = list_users(home)
    except InvalidInput as exc:
        fail(str(exc))

    def human() -> None:
        for user in users:
            out.print(f"{user['name']}  {user['set_at']}", markup=False)

    emit(users, as_json, human)


async def _check_divisions(path: Path, code: str) -> Divisions:
    known = Divisions.from_csv(path)
    if known.district.code != code:
        raise InvalidInput(f"{path} describes district {known.district.code}, not {code}")
    return known


async def _check_catalog(path: Path) -> None:
    catalogs.parse_document(path.read_bytes())


async def _publish(node: Node, document: bytes) -> str:
    catalog = catalogs.parse_document(document)
    async with node.engine.begin() as conn:
        if not await catalogs.store(conn, catalogs.Published(catalog.version, document, now_us())):
            raise InvalidInput(f"catalog {catalog.version} is published already")
    return catalog.version


async def _publish_calendar(node: Node, document: bytes) -> tuple[str, list[int]]:
    version, calendar = calendars.parse_document(document)
    async with node.engine.begin() as conn:
        if not await calendars.store(conn, catalogs.Published(version, document, now_us())):
            raise InvalidInput(f"calendar {version} is published already")
    return version, sorted(calendar.known_years)


async def _enroll(node: Node, code: str) -> Bundle:
    known = Divisions.from_csv(node.home / DIVISIONS_FILE)
    division = known.require(code, "township", "village")
    parent = known.require(division.parent_code) if division.level == "village" else known.district
    issued = issue_for(node.home, code, division.level)
    async with node.engine.begin() as conn:
        exists = (await conn.execute(select(nodes.c.code).where(nodes.c.code == code))).scalar()
        values = {"role": division.level, "name": division.name, "enrolled_at": now_us()}
        if exists:
            await conn.execute(nodes.update().where(nodes.c.code == code).values(**values))
        else:
            await conn.execute(nodes.insert().values(code=code, **values))
    return Bundle(
        code,
        division.level,
        division.name,
        known.district.code,
        parent.code,
        parent.name,
        key=issued.key_pem.decode(),
        certificate=issued.cert_pem.decode(),
        ca_certificate=issued.ca_pem.decode(),
    )


def main() -> None:
    app()
