"""district-node: the district hub's command line."""

import shutil
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from rich.table import Table

from casework import Divisions, InvalidInput
from district_node import coverage
from district_node.dashboard import dashboard
from messages import t
from relay import actions, calendars, catalogs, revocations
from relay.auditcli import add_audit_commands
from relay.bundle import Bundle
from relay.certify import DistrictCertifier, record_enrolled
from relay.clock import iso, now_us
from relay.config import NodeConfig, TLSConfig, default_db_url
from relay.console import (
    AsJson,
    CaseIds,
    Home,
    InsecureLoopback,
    Staff,
    WordedGroup,
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
    start,
    with_node,
)
from relay.deskcli import Reason, add_staff_commands, staff_action
from relay.joining import found_network, issue_for
from relay.node import CATALOG_FILE, Node
from relay.pki import NODE_DAYS
from relay.revocations import Revocation
from relay.webcli import add_web_user_commands

DIVISIONS_FILE = "divisions.csv"
app = typer.Typer(
    help=t("cli.app.district"),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=WordedGroup,
)
add_common_commands(app)
add_audit_commands(app)
add_staff_commands(app)
add_supervise_command(app)
add_web_user_commands(
    app,
    t("cli.cmd.web_user_district"),
)


@app.command("return", help=t("cli.cmd.return"))
def return_for_rework(
    home: Home,
    case_ids: CaseIds,
    reason: Reason,
    staff: Staff = "",
    as_json: AsJson = False,
) -> None:
    """Send escalated cases back to their township for rework, saying what to rework."""
    staff_action(home, case_ids, lambda: actions.return_for_rework(reason), staff, as_json)


@app.command(help=t("cli.cmd.init_district"))
def init(
    home: Home,
    code: Annotated[str, typer.Option(help=t("cli.opt.district_code"))],
    divisions: Annotated[Path, typer.Option(help=t("cli.opt.divisions"))],
    catalog: Annotated[Path | None, typer.Option(help=t("cli.opt.catalog"))] = None,
    db: Annotated[str | None, typer.Option("--db", help=t("cli.opt.db"))] = None,
    operator: Annotated[str, typer.Option(help=t("cli.opt.operator"))] = "",
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
        fail(t("cli.district.ca_unwritable", home=home, reason=exc.strerror))
    run(create_node(home, config))
    out.print(t("cli.district.created", code=code, name=known.district.name, home=home), markup=False)


@app.command(help=t("cli.cmd.enroll"))
def enroll(
    home: Home,
    code: Annotated[str, typer.Option(help=t("cli.opt.enroll_code"))],
    out_file: Annotated[Path, typer.Option("--out", help=t("cli.opt.out"))],
    valid_days: Annotated[int, typer.Option(help=t("cli.opt.valid_days"))] = NODE_DAYS,
    as_json: AsJson = False,
) -> None:
    """Enroll a township or village: write the bundle it joins the network with."""
    if not out_file.parent.is_dir():
        fail(t("cli.district.no_folder", folder=out_file.parent))
    bundle = run(with_node(home, lambda node: _enroll(node, code, valid_days)))
    bundle.write(out_file)
    emit(
        {"code": bundle.code, "role": bundle.role, "name": bundle.name, "bundle": str(out_file)},
        as_json,
        lambda: out.print(
            t(
                "cli.district.enrolled",
                level=t(f"cli.level.{bundle.role}"),
                code=bundle.code,
                name=bundle.name,
                file=out_file,
            ),
            markup=False,
        ),
    )


@app.command(help=t("cli.cmd.revoke"))
def revoke(
    home: Home,
    code: Annotated[str, typer.Option(help=t("cli.opt.revoke_code"))],
    reason: Annotated[str, typer.Option(help=t("cli.opt.revoke_reason"))] = "",
    as_json: AsJson = False,
) -> None:
    """Revoke every certificate issued to a node until now: it is refused here at once, and by
    its township after the township's next sync. Enroll it again for a new laptop."""
    revoked = run(with_node(home, lambda node: _revoke(node, code, reason)))
    when = iso(revoked.revoked_at)
    emit(
        {"code": revoked.code, "revoked_at": when, "reason": revoked.reason},
        as_json,
        lambda: out.print(t("cli.district.revoked", code=revoked.code, when=when), markup=False),
    )


catalog_app = typer.Typer(help=t("cli.cmd.catalog_app"))
app.add_typer(catalog_app, name="catalog")


@catalog_app.command(help=t("cli.cmd.catalog_publish"))
def publish(
    home: Home, file: Annotated[Path, typer.Argument(help=t("cli.opt.catalog_file"))], as_json: AsJson = False
) -> None:
    """Publish a new catalog version; every township and village takes it at its next sync."""
    try:
        document = file.read_bytes()
    except OSError as exc:
        fail(t("cli.cannot_read", file=file, reason=exc.strerror))
    version, already = run(with_node(home, lambda node: _publish(node, document)))
    key = "cli.district.catalog_again" if already else "cli.district.catalog_published"
    said = t(key, version=version)
    emit({"version": version, "already": already}, as_json, lambda: out.print(said, markup=False))


calendar_app = typer.Typer(help=t("cli.cmd.calendar_app"))
app.add_typer(calendar_app, name="calendar")


@calendar_app.command("publish", help=t("cli.cmd.calendar_publish"))
def publish_calendar(
    home: Home,
    file: Annotated[Path, typer.Argument(help=t("cli.opt.calendar_file"))],
    as_json: AsJson = False,
) -> None:
    """Publish the holidays and adjusted workdays of further years (the State Council's notice,
    as JSON: version, years); every node counts deadlines by them after its next sync."""
    try:
        document = file.read_bytes()
    except OSError as exc:
        fail(t("cli.cannot_read", file=file, reason=exc.strerror))
    version, years, already = run(with_node(home, lambda node: _publish_calendar(node, document)))
    key = "cli.district.calendar_again" if already else "cli.district.calendar_published"
    said = t(key, version=version, years=", ".join(map(str, years)))
    data = {"version": version, "years": years, "already": already}
    emit(data, as_json, lambda: out.print(said, markup=False))


@app.command(help=t("cli.cmd.serve_district"))
def serve(
    home: Home,
    listen: Annotated[str, typer.Option(help=t("cli.opt.listen"))],
    http: Annotated[
        str | None,
        typer.Option(help=t("cli.opt.http_district")),
    ] = None,
) -> None:
    """Serve the townships (runs until SIGTERM or Ctrl+C)."""
    pages = (lambda node: dashboard(node, node.home / DIVISIONS_FILE)) if http else None
    certifier = lambda node: DistrictCertifier(node.home, node.home / DIVISIONS_FILE, node.engine)  # noqa: E731
    run_service(serve_node(home, listen, http, pages, certifier))


@app.command("coverage", help=t("cli.cmd.coverage"))
def coverage_report(home: Home, as_json: AsJson = False) -> None:
    """Per township: villages enrolled, active in the last day or week, silent, never seen,
    backlog, last push and breaks found in its audit trail; and the district's coverage
    (villages active in the last week)."""

    async def load(node: Node) -> dict[str, Any]:
        divisions = Divisions.from_csv(home / DIVISIONS_FILE)
        return coverage.summary(await coverage.coverage(node, divisions, now_us()))

    report = run(with_node(home, load))

    def human() -> None:
        columns = ("code", "township", "villages", "enrolled", "day", "week", "silent", "never", "backlog")
        table = Table(*(t(f"cli.coverage.{c}") for c in (*columns, "audit_breaks")))
        for row in report["townships"]:
            counts = ("villages", "enrolled", "active_day", "active_week", "silent", "never")
            backlog = "-" if row["backlog"] is None else str(row["backlog"])
            breaks = str(row["audit_breaks"] or "")
            table.add_row(row["code"], row["name"], *(str(row[c]) for c in counts), backlog, breaks)
        out.print(table)
        share = "-" if report["coverage"] is None else f"{report['coverage']:.1%}"
        out.print(t("cli.district.coverage", share=share, villages=report["villages"]), markup=False)

    emit(report, as_json, human)


async def _check_divisions(path: Path, code: str) -> Divisions:
    known = Divisions.from_csv(path)
    if known.district.code != code:
        raise InvalidInput(t("cli.district.other_district", file=path, found=known.district.code, code=code))
    return known


async def _check_catalog(path: Path) -> None:
    catalogs.parse_document(path.read_bytes())


async def _publish(node: Node, document: bytes) -> tuple[str, bool]:
    """The catalog's version, and whether it was published already as given (nothing to do:
    a script may run twice); the same version with other content is refused."""
    catalog = catalogs.parse_document(document)
    async with node.engine.begin() as conn:
        stored = await catalogs.store(conn, catalogs.Published(catalog.version, document, now_us()))
    return catalog.version, not stored


async def _publish_calendar(node: Node, document: bytes) -> tuple[str, list[int], bool]:
    """As _publish, for a holiday calendar: also the years it covers."""
    version, calendar = calendars.parse_document(document)
    async with node.engine.begin() as conn:
        stored = await calendars.store(conn, catalogs.Published(version, document, now_us()))
    return version, sorted(calendar.known_years), not stored


async def _revoke(node: Node, code: str, reason: str) -> Revocation:
    Divisions.from_csv(node.home / DIVISIONS_FILE).require(code, "township", "village")
    async with node.engine.begin() as conn:
        revoked = await revocations.revoke(conn, code, reason.strip(), now_us())
    # A security event for the log shipper (a warning: commands log from that level): the code
    # only, never the reason.
    structlog.get_logger().warning("security.certificate.revoked", code=code)
    return revoked


async def _enroll(node: Node, code: str, days: int) -> Bundle:
    known = Divisions.from_csv(node.home / DIVISIONS_FILE)
    division = known.require(code, "township", "village")
    parent = known.require(division.parent_code) if division.level == "village" else known.district
    issued = issue_for(node.home, code, division.level, days)
    async with node.engine.begin() as conn:
        await record_enrolled(conn, code, division.level, division.name)
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
    start(app)
