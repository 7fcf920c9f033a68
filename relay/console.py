"""What the three command lines share: options, output, logging, errors, and the commands
township and district staff both use."""

import asyncio
import gc
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import structlog
import typer
import typer.rich_utils
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from typer.core import TyperGroup

from casework import CaseworkError, InvalidInput
from casework.lifecycle import STATUSES
from messages import refusal, t
from relay import supervision
from relay.bell import CommitListener
from relay.bundle import Bundle
from relay.certify import Certifier, UpstreamCertifier
from relay.clock import iso, today_in_china
from relay.config import CONFIG_FILE, NodeConfig
from relay.counters import read_value
from relay.enrollment import EnrollmentServicer, start_enrollment
from relay.errors import TransientError
from relay.httpd import Handler, Uploads, node_routes, start_http
from relay.joining import config_from_bundle, install_credentials
from relay.node import Node, open_node
from relay.pki import validity_of
from relay.queries import list_cases, show_case
from relay.renewal import Renewer
from relay.schema import cases as cases_table
from relay.schema import dead_letters
from relay.server import run_until_stopped, start_server
from relay.service import RelayService
from relay.staff import Outcome
from relay.sync import backlog
from relay.tls import INSECURE_LOOPBACK, Credentials

T = TypeVar("T")

Home = Annotated[
    Path,
    typer.Option(
        "--home",
        envvar="SERVICENET_HOME",
        help=t("cli.opt.home"),
        file_okay=False,
        resolve_path=True,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help=t("cli.opt.json"))]
InsecureLoopback = Annotated[
    bool,
    typer.Option(
        "--insecure-loopback",
        help=t("cli.opt.insecure_loopback"),
    ),
]
Staff = Annotated[str, typer.Option("--staff", help=t("cli.opt.staff"))]
CaseIds = Annotated[list[str], typer.Argument(help=t("cli.opt.case_ids"))]

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


class WordedGroup(TyperGroup):
    """A node's command line (``typer.Typer(cls=WordedGroup)``): Click's own usage errors (an
    option or argument missing, an option or command unknown, a value it cannot take) are told
    as the node's refusals are, in one line in the user's language with where help is, instead
    of Click's English usage box."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _worded_usage():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _worded_usage():  # the subcommands' own arguments are parsed in here
            return super().invoke(ctx)


@contextmanager
def _worded_usage() -> Iterator[None]:
    try:
        yield
    except typer.TyperException as exc:  # Typer's copy of Click's errors derives from it
        said = _usage_words(exc)
        if said is None:
            raise
        fail(said)


_NO_COMMAND = re.compile(r"No such command '(.*?)'\.(?: Did you mean (.*)\?)?")
_EXTRA = re.compile(r"Got unexpected extra argument(?:s|\(s\))? \((.*)\)")
_NOT_A_NUMBER = re.compile(r"valid (?:number|integer|float)")


def _usage_words(exc: Exception) -> str | None:
    """One of Click's usage errors in the user's language, with the command's help to see;
    None for any other error (it is shown as Click shows it)."""
    kind, message = type(exc).__name__, str(getattr(exc, "message", ""))
    param = getattr(exc, "param", None)
    option = param is not None and getattr(param, "param_type_name", "") == "option"
    name = "" if param is None else " / ".join(param.opts) if option else _argument_name(param)
    if kind == "MissingParameter" and param is not None:
        what = t("cli.usage.missing_option" if option else "cli.usage.missing_argument", name=name)
        if option and isinstance(param.envvar, str):
            what += t("cli.usage.or_env", env=param.envvar)
    elif kind == "BadParameter" and param is not None:
        reason = t("cli.usage.not_a_number") if _NOT_A_NUMBER.search(message) else message
        what = t("cli.usage.bad_value", name=name, reason=reason)
    elif kind == "NoSuchOption":
        what = t("cli.usage.no_such_option", option=str(getattr(exc, "option_name", "")))
        possible = sorted(getattr(exc, "possibilities", None) or ())
        what += t("cli.usage.did_you_mean", options=" / ".join(possible)) if possible else ""
    elif kind == "BadOptionUsage":
        key = "cli.usage.no_value" if "does not take a value" in message else "cli.usage.needs_value"
        what = t(key, option=getattr(exc, "option_name", ""))
    elif kind == "UsageError" and (found := _NO_COMMAND.fullmatch(message)):
        what = t("cli.usage.no_such_command", command=found[1])
        what += t("cli.usage.did_you_mean", options=found[2].replace("'", "")) if found[2] else ""
    elif kind == "UsageError" and (found := _EXTRA.fullmatch(message)):
        what = t("cli.usage.extra_arguments", arguments=found[1])
    else:
        return None
    ctx = getattr(exc, "ctx", None)
    return t("cli.usage.line", what=what, command=f"{ctx.command_path} --help") if ctx else what


def _argument_name(param: Any) -> str:
    """An argument as its command's help names it (CASE_ID)."""
    return str(getattr(param, "display_name_raw", None) or param.name).upper()


def start(app: typer.Typer) -> None:
    """Run a command line (its ``main``), Typer's own help panel titles in the user's language."""
    # Typer reads these module constants of typer.rich_utils each time it draws a help page or
    # an error box; they are English unless set, here, once, before the app parses anything.
    typer.rich_utils.ARGUMENTS_PANEL_TITLE = t("cli.typer.arguments")
    typer.rich_utils.OPTIONS_PANEL_TITLE = t("cli.typer.options")
    typer.rich_utils.COMMANDS_PANEL_TITLE = t("cli.typer.commands")
    typer.rich_utils.ERRORS_PANEL_TITLE = t("cli.typer.error")
    app()


def configure_logging(level: int = logging.INFO) -> None:
    """Structured JSON lines on stderr, ready for a log shipper. Never personal data."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr, then exit non-zero."""
    err.print(t("cli.error", message=message), markup=False, highlight=False)
    raise typer.Exit(code)


def refused(exc: CaseworkError) -> NoReturn:
    """A domain refusal as one line in the user's language (its English words where it has no
    code), then exit 2."""
    fail(refusal(str(exc), exc.code, exc.fields))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; the domain's refusals become one line and exit status 2."""
    configure_logging(logging.WARNING if not os.environ.get("SERVICENET_DEBUG") else logging.DEBUG)
    try:
        return asyncio.run(coro)
    except CaseworkError as exc:
        refused(exc)
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    except SQLAlchemyError as exc:  # the message itself may quote personal data: name the kind only
        fail(t("cli.database", kind=type(exc).__name__))
    except KeyboardInterrupt:
        fail(t("cli.interrupted"), 130)


def run_service(coro: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived service until it returns. Afterwards, what the gRPC and database
    libraries left running (a connection still closing, say) gets a few seconds to finish,
    then is cancelled. Everything that matters is committed by then, so a database worker
    thread that a cancelled connection never released does not keep the process alive."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro)
    except CaseworkError as exc:
        refused(exc)
    except KeyboardInterrupt:
        pass
    finally:
        leftover = asyncio.all_tasks(loop)
        if leftover:
            loop.run_until_complete(asyncio.wait(leftover, timeout=3))
        for task in leftover:
            task.cancel()
        if leftover:
            loop.run_until_complete(asyncio.wait(leftover, timeout=2))
        loop.close()
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if any(t.is_alive() for t in stuck):
        structlog.get_logger().warning("node.exit.forced", threads=len(stuck))
        sys.stderr.flush()
        os._exit(0)


def emit(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        human()


def print_cases(rows: list[dict[str, Any]]) -> None:
    table = Table(*(t(f"col.{c}") for c in ("case", "item", "status", "owner", "village", "updated")))
    for row in rows:
        table.add_row(
            row["case_id"],
            row["item_code"],
            t(f"status.{row['status']}"),
            row["owner"],
            row["village_code"],
            row["updated_at"][:19],
        )
    out.print(table)
    out.print(t("cli.cases", n=len(rows)))


def print_outcomes(outcomes: list[Outcome], as_json: bool) -> None:
    """Each case of a staff command succeeds or fails on its own; exit 1 if any failed."""
    data = [{"case_id": o.case_id, "ok": o.ok, "status": o.status, "error": o.error} for o in outcomes]

    def human() -> None:
        for o in outcomes:
            if o.ok:
                out.print(f"{o.case_id}: {t(f'status.{o.status}')}", markup=False)
            else:
                said = refusal(o.error, o.code, o.fields)
                err.print(t("cli.error", message=f"{o.case_id}: {said}"), markup=False, highlight=False)

    emit(data, as_json, human)
    if not all(o.ok for o in outcomes):
        raise typer.Exit(1)


async def node_status(node: Node) -> dict[str, Any]:
    """Backlog, sync times, counts: what an operator checks first."""
    async with node.engine.connect() as conn:
        last_push, last_pull = await read_value(conn, "last_push"), await read_value(conn, "last_pull")
        return {
            "code": node.config.code,
            "role": node.config.role,
            "name": node.config.name,
            "upstream": node.config.upstream or None,
            "backlog": await backlog(conn),
            "last_push": iso(last_push) if last_push else None,
            "last_pull": iso(last_pull) if last_pull else None,
            "catalog_version": node.ledger.catalog.version,
            "calendar_version": node.ledger.calendar_version or None,  # None: only the shipped years
            "calendar_years": sorted(node.ledger.calendar.known_years),
            "certificate_expires": _certificate_expires(node),
            "cases": (await conn.execute(select(func.count()).select_from(cases_table))).scalar(),
            "rejected": (await conn.execute(select(func.count()).select_from(dead_letters))).scalar(),
        }


def _certificate_expires(node: Node) -> str | None:
    """When this node's certificate expires (None: plaintext test node)."""
    if node.config.tls.insecure_loopback:
        return None
    try:
        return validity_of(node.config.tls.credentials(node.home).cert).expires.isoformat()
    except (InvalidInput, ValueError):  # no certificate (made before mutual TLS) or a damaged one
        return None


async def rejected_events(node: Node) -> list[dict[str, Any]]:
    async with node.engine.connect() as conn:
        rows = (await conn.execute(select(dead_letters).order_by(dead_letters.c.id))).all()
    return [
        {
            "direction": r.direction,
            "peer": r.peer,
            "seq": r.seq,
            "event_id": r.event_id,
            "case_id": r.case_id,
            "type": r.type,
            "reason": r.reason,
            "recorded_at": iso(r.recorded_at),
        }
        for r in rows
    ]


def add_common_commands(app: typer.Typer) -> None:
    """cases, show, status and rejected: the same on every tier."""

    @app.command(help=t("cli.cmd.cases"))
    def cases(
        home: Home,
        status: Annotated[str | None, typer.Option(help=t("cli.opt.status"))] = None,
        as_json: AsJson = False,
    ) -> None:
        """List the cases this node knows."""
        if status and status not in STATUSES:
            fail(t("cli.unknown_status", status=repr(status), statuses=", ".join(STATUSES)))
        rows = run(with_node(home, lambda node: list_cases(node, status)))
        emit(rows, as_json, lambda: print_cases(rows))

    @app.command(help=t("cli.cmd.show"))
    def show(home: Home, case_id: str, as_json: AsJson = False) -> None:
        """One case with its full event history."""
        found = run(with_node(home, lambda node: show_case(node, case_id)))
        if found is None:
            fail(t("cli.no_case", case_id=case_id))
        emit(found, as_json, lambda: out.print_json(data=found))

    @app.command(help=t("cli.cmd.status"))
    def status(home: Home, as_json: AsJson = False) -> None:
        """Backlog, last sync, catalog version."""
        data = run(with_node(home, node_status))

        def human() -> None:
            for key, value in data.items():
                shown = t(f"cli.level.{value}") if key == "role" else _or_none(value)
                out.print(t("cli.status.line", label=t(f"cli.status.{key}"), value=shown), markup=False)

        emit(data, as_json, human)

    @app.command(help=t("cli.cmd.rejected"))
    def rejected(home: Home, as_json: AsJson = False) -> None:
        """Events that can never be applied (dead letters), with the reason."""
        rows = run(with_node(home, rejected_events))

        def human() -> None:
            for r in rows:
                out.print(
                    f"{r['recorded_at'][:19]} {r['direction']} {r['peer']} {r['event_id']} "
                    f"{r['type']}: {r['reason']}",
                    markup=False,
                )
            out.print(t("cli.rejected", n=len(rows)))

        emit(rows, as_json, human)


async def with_node(home: Path, use: Callable[[Node], Coroutine[Any, Any, T]]) -> T:
    async with open_node(home) as node:
        return await use(node)


def new_home(home: Path) -> None:
    """Make a node's folder; refuse one that already holds a node."""
    refuse_taken_home(home)
    home.mkdir(parents=True, exist_ok=True)


def refuse_taken_home(home: Path) -> None:
    if (home / CONFIG_FILE).exists():
        fail(t("cli.home_taken", home=home))


def read_bundle(path: Path, role: str) -> Bundle:
    try:
        return Bundle.read(path, role)
    except CaseworkError as exc:
        refused(exc)


def join_network(
    home: Path,
    joined: Bundle,
    upstream: str,
    db: str | None,
    operator: str,
    insecure_loopback: bool,
) -> None:
    """A township's or village's ``init``: its node made from its enrollment bundle, with the
    bundle's key and certificates kept in its home. Nothing is written if the bundle is refused."""
    try:
        config = config_from_bundle(home, joined, upstream, db, operator, insecure_loopback)
    except CaseworkError as exc:
        refused(exc)
    new_home(home)
    try:
        install_credentials(home, joined, config.tls)
    except OSError as exc:
        fail(t("cli.key_unwritable", home=home, reason=exc.strerror))
    run(create_node(home, config))


async def create_node(home: Path, config: NodeConfig) -> None:
    """Write the config and create the database: the node exists once both are done."""
    async with open_node(home, config):
        pass
    config.save(home)


async def serve_node(
    home: Path,
    listen: str | None,
    http: str | None = None,
    pages: Callable[[Node], Handler] | None = None,
    certifier: Callable[[Node], Certifier] | None = None,
    enroll_listen: str | None = None,
    uploads: Uploads | None = None,
) -> None:
    """Serve the relay to the nodes below (unless listen is None), and keep syncing with the
    upstream where the node has one, renewing its certificate before it expires. With ``http``
    (HOST:PORT), also serve /metrics there and the tier's ``pages`` (the district's dashboard,
    the village's intake app), if it has any; ``uploads`` names the paths that take files.
    ``certifier`` signs certificates (the district's); a node with an upstream passes requests
    on to it. With ``enroll_listen``, a township also serves enrollment by one-time token there
    (relay.enrollment)."""
    configure_logging()
    log = structlog.get_logger()
    async with open_node(home) as node:
        service = server = web = enrolling = None
        # Links are set up before anything starts: a refused setting leaves nothing running.
        security = None if listen is None else node.config.tls.security(home, ("listen address", listen))
        jobs: list[Callable[[], Coroutine[Any, Any, None]]] = [node.reload_published_forever]
        signer = certifier(node) if certifier else None
        if node.config.upstream:
            upstream = node.upstream()
            syncer = node.syncer(upstream)
            jobs = [syncer.forward_forever, syncer.pull_forever, syncer.heartbeat_forever]
            signer = UpstreamCertifier(upstream, node.config.code)
            if isinstance(upstream.security, Credentials):
                jobs.append(Renewer(home, node.config, upstream).renew_forever)
        if http is not None:
            routes = node_routes(node, pages(node) if pages else None)
            web, http_port = await start_http(http, routes, uploads)
            log.info("node.http", code=node.config.code, port=http_port, pages=pages is not None)
        if listen is not None and security is not None:
            service = RelayService(node.engine, node.ledger, signer)
            reload = lambda: node.config.tls.credentials(home)  # noqa: E731
            server, port = await start_server(service, listen, security, reload)
            tls = "plaintext" if security is INSECURE_LOOPBACK else "mutual-tls"
            log.info("node.serving", code=node.config.code, role=node.config.role, port=port, tls=tls)
            if node.engine.dialect.name == "postgresql":
                jobs.append(CommitListener(node.engine, node.ledger.bell).listen_forever)
        if enroll_listen is not None and signer is not None:
            enrollment = EnrollmentServicer(node.engine, node.config, signer)
            enrolling, enroll_port = await start_enrollment(enrollment, enroll_listen)
            log.info("node.enrolling", code=node.config.code, port=enroll_port)
        _settle_collector()
        try:
            await run_until_stopped(jobs, server, service)
        finally:
            if web is not None:
                web.close()
            if enrolling is not None:
                await enrolling.stop(1.0)
    log.info("node.closed")


def _settle_collector() -> None:
    """Keep Python's cycle collector off a server's hot path: what was made to start it
    (modules, catalogs, the schema) is frozen out of the collector's passes, and a pass waits
    for 10,000 new objects instead of 700: a batch of 1,000 events makes thousands of objects,
    all freed by reference counting when it is applied. Applying batches in-process, the hub
    spent ~1.5 % of its time in young passes and stood still ~80 ms for each full one, 6.5 %
    in all (bench/README.md, issue 4)."""
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])


def add_sync_command(app: typer.Typer) -> None:
    @app.command(help=t("cli.cmd.sync"))
    def sync(
        home: Home,
        timeout: Annotated[float, typer.Option(help=t("cli.opt.timeout"))] = 30.0,
        as_json: AsJson = False,
    ) -> None:
        """Push everything queued and pull everything addressed here, then exit."""
        report = run(with_node(home, lambda node: _sync(node, timeout)))
        pushed, pulled, rejected, backlog = (report[k] for k in ("pushed", "pulled", "rejected", "backlog"))
        said = t("cli.synced", pushed=pushed, pulled=pulled, rejected=rejected, backlog=backlog)
        emit(report, as_json, lambda: out.print(said))
        if report["backlog"]:
            raise typer.Exit(1)


async def _sync(node: Node, seconds: float) -> dict[str, int]:
    upstream = node.upstream()
    syncer = node.syncer(upstream)
    try:
        report = await asyncio.wait_for(syncer.sync(give_up_after=seconds), seconds)
        if isinstance(upstream.security, Credentials):
            await Renewer(node.home, node.config, upstream).renew_if_due()
    except (TransientError, TimeoutError) as exc:
        raise TransientError(
            t("cli.unreachable", upstream=node.config.upstream, seconds=f"{seconds:g}")
        ) from exc
    finally:
        await syncer.upstream.close()
    return {
        "pushed": report.pushed,
        "pulled": report.pulled,
        "rejected": report.rejected,
        "backlog": report.backlog,
    }


def add_supervise_command(app: typer.Typer) -> None:
    @app.command(help=t("cli.cmd.supervise"))
    def supervise(home: Home, as_json: AsJson = False) -> None:
        """Cases against their deadlines (yellow, red, overdue), on-time and satisfaction rates."""
        report = run(with_node(home, lambda node: supervision.supervise(node, today_in_china())))

        emit(report, as_json, lambda: _print_supervision(report))


def _print_supervision(report: dict[str, Any]) -> None:
    table = Table(
        *(t(f"col.{c}") for c in ("case", "item", "owner", "window", "status", "deadline", "light"))
    )
    for w in report["warnings"]:
        labels = {"status": t(f"status.{w['status']}"), "light": t(f"light.{w['light']}")}
        columns = ("case_id", "item_code", "owner", "window", "status", "deadline", "light")
        table.add_row(*(labels.get(c, w[c]) for c in columns))
    out.print(table)
    if report["warnings_cut"]:
        total = len(report["warnings"]) + report["warnings_cut"]
        out.print(t("cli.supervise.cut", shown=len(report["warnings"]), total=total), markup=False)
    for group in ("by_owner", "by_window"):
        for name, counts in report[group].items():
            listed = ", ".join(f"{t(f'light.{k}')} {v}" for k, v in sorted(counts.items()))
            out.print(t(f"cli.supervise.{group}", name=name or "-", counts=listed), markup=False)
    satisfaction, records = report["satisfaction"], report["rectifications"]
    rates = {"on_time": _or_none(report["on_time_rate"]), "satisfaction": _or_none(satisfaction["rate"])}
    counts = {"ratings": satisfaction["ratings"], "bad": satisfaction["bad_reviews"]}
    out.print(
        t("cli.supervise.rates", **rates, **counts, open=records["open"], overdue=records["overdue"]),
        markup=False,
    )
    assumed = report["calendar"]["assumed_monday_to_friday"]
    if assumed:
        out.print(t("cli.supervise.assumed", years=", ".join(map(str, assumed))), markup=False)


def _or_none(value: object) -> str:
    """A value for people: "—" where there is none."""
    return t("none") if value is None else str(value)
