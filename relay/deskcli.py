"""The window staff's commands, the same at a township center and at the district: acting on
cases, the roster of windows (A/B posts, chief representatives), and rectification records."""

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from casework import InvalidInput
from messages import t
from relay import actions
from relay import staff as roster
from relay.actions import Action
from relay.console import (
    AsJson,
    CaseIds,
    Home,
    Staff,
    emit,
    fail,
    out,
    print_outcomes,
    refused,
    run,
    with_node,
)
from relay.node import Node
from relay.staff import Outcome, act

Reason = Annotated[str, typer.Option(help=t("cli.opt.reason"))]


def staff_action(
    home: Path, case_ids: list[str], make: Callable[[], Action], staff: str, as_json: bool
) -> None:
    """Make the action from what the command was given (relay.actions), then take it on each
    case as ``staff``."""
    try:
        action = make()
    except InvalidInput as exc:
        refused(exc)

    async def go(node: Node) -> list[Outcome]:
        return await act(node, case_ids, action.event_type, action.payload, staff)

    print_outcomes(run(with_node(home, go)), as_json)


def _said(text: str, what: str) -> str:
    try:
        return actions.said(text, what)
    except InvalidInput as exc:
        refused(exc)


def add_staff_commands(app: typer.Typer) -> None:
    """What window staff do to the cases their node owns, and at the window for others."""

    @app.command(help=t("cli.cmd.accept"))
    def accept(home: Home, case_ids: CaseIds, staff: Staff = "", as_json: AsJson = False) -> None:
        """Accept cases this node owns."""
        staff_action(home, case_ids, actions.accept, staff, as_json)

    @app.command(help=t("cli.cmd.refuse"))
    def refuse(
        home: Home, case_ids: CaseIds, reason: Reason, staff: Staff = "", as_json: AsJson = False
    ) -> None:
        """Refuse to accept requests, saying why."""
        staff_action(home, case_ids, lambda: actions.refuse(reason), staff, as_json)

    @app.command("request-correction", help=t("cli.cmd.request_correction"))
    def request_correction(
        home: Home,
        case_id: str,
        missing: Annotated[list[str], typer.Option("--missing", help=t("cli.opt.missing"))],
        note: Annotated[str, typer.Option(help=t("cli.opt.correction_note"))] = "",
        staff: Staff = "",
        as_json: AsJson = False,
    ) -> None:
        """Send one correction notice listing every missing material, all at once."""
        staff_action(home, [case_id], lambda: actions.request_correction(missing, note), staff, as_json)

    @app.command(help=t("cli.cmd.decide"))
    def decide(
        home: Home,
        case_ids: CaseIds,
        reason: Reason,
        approve: Annotated[bool, typer.Option("--approve", help=t("cli.opt.approve"))] = False,
        reject: Annotated[bool, typer.Option("--reject", help=t("cli.opt.reject"))] = False,
        department: Annotated[str | None, typer.Option(help=t("cli.opt.department_deciding"))] = None,
        staff: Staff = "",
        as_json: AsJson = False,
    ) -> None:
        """Approve or reject cases this node owns and decides (joint items: per --department).
        A chief representative may decide a request that is not yet accepted, on the spot."""
        decision = partial(actions.decide, approve, reject, reason, department)
        staff_action(home, case_ids, decision, staff, as_json)

    @app.command(help=t("cli.cmd.pause"))
    def pause(
        home: Home,
        case_ids: CaseIds,
        step: Annotated[str, typer.Option(help=t("cli.opt.step"))],
        note: Annotated[str, typer.Option(help=t("cli.opt.pause_note"))] = "",
        staff: Staff = "",
        as_json: AsJson = False,
    ) -> None:
        """Stop the clock for a step the law excludes from the time limit (public notice, appraisal …)."""
        staff_action(home, case_ids, lambda: actions.pause(step, note), staff, as_json)

    @app.command(help=t("cli.cmd.resume"))
    def resume(home: Home, case_ids: CaseIds, staff: Staff = "", as_json: AsJson = False) -> None:
        """Restart the clock once the excluded step is over; deadlines move by the days it took."""
        staff_action(home, case_ids, actions.resume, staff, as_json)

    @app.command(help=t("cli.cmd.deliver_here"))
    def deliver(home: Home, case_ids: CaseIds, staff: Staff = "", as_json: AsJson = False) -> None:
        """The result was handed to the applicant at this window."""
        staff_action(home, case_ids, actions.deliver, staff, as_json)

    @app.command(help=t("cli.cmd.rate_here"))
    def rate(
        home: Home,
        case_id: str,
        score: Annotated[int, typer.Option(help=t("cli.opt.score"))],
        comment: Annotated[str, typer.Option(help=t("cli.opt.comment"))] = "",
        staff: Staff = "",
        as_json: AsJson = False,
    ) -> None:
        """Record the applicant's rating given at this window."""
        staff_action(home, [case_id], lambda: actions.rate(score, comment), staff, as_json)

    @app.command(help=t("cli.cmd.complain_here"))
    def complain(
        home: Home,
        text: Annotated[str, typer.Option(help=t("cli.opt.complaint"))],
        case_id: Annotated[str | None, typer.Argument(help=t("cli.opt.complained_case"))] = None,
        window: Annotated[str | None, typer.Option(help=t("cli.opt.complained_window"))] = None,
        staff: Staff = "",
        as_json: AsJson = False,
    ) -> None:
        """Record a complaint made at this window, about a case or about a window."""
        said = _said(text, "the complaint")
        if (case_id is None) == (window is None):
            fail(t("cli.desk.case_or_window"))
        if case_id is not None:
            staff_action(home, [case_id], lambda: actions.complain(said), staff, as_json)
            return
        window_name = str(window).strip()
        record = run(
            with_node(home, lambda node: roster.complain_about_window(node, window_name, said, staff))
        )
        emit(
            {"record": record},
            as_json,
            lambda: out.print(t("cli.desk.complaint_recorded", record=record), markup=False),
        )

    @app.command(help=t("cli.cmd.rectify"))
    def rectify(
        home: Home,
        outcome: Annotated[str, typer.Option(help=t("cli.opt.outcome"))],
        case_id: Annotated[str | None, typer.Argument(help=t("cli.opt.record_case"))] = None,
        record: Annotated[
            str | None,
            typer.Option(help=t("cli.opt.record")),
        ] = None,
        staff: Staff = "",
        as_json: AsJson = False,
    ) -> None:
        """Close a rectification record opened by a bad review or a complaint."""
        said = _said(outcome, "the outcome")
        if case_id is None:
            if not record or not record.startswith(roster.WINDOW_RECORD):
                fail(t("cli.desk.case_or_record"))
            window_record = record
            run(with_node(home, lambda node: roster.rectify_window(node, window_record, said, staff)))
            emit(
                {"record": record, "ok": True},
                as_json,
                lambda: out.print(t("cli.desk.rectified", record=record), markup=False),
            )
            return
        staff_action(home, [case_id], lambda: actions.rectify(said, record), staff, as_json)

    @app.command(help=t("cli.cmd.rectifications"))
    def rectifications(
        home: Home,
        all_records: Annotated[bool, typer.Option("--all", help=t("cli.opt.all_records"))] = False,
        as_json: AsJson = False,
    ) -> None:
        """Rectification records (bad reviews, complaints): open ones with their deadline."""

        async def load(node: Node) -> list[dict[str, Any]]:
            async with node.engine.connect() as conn:
                return await roster.open_records(conn)

        records = [r for r in run(with_node(home, load)) if all_records or r["outcome"] is None]

        def human() -> None:
            table = Table(
                t("cli.col.record"),
                t("col.case"),
                t("cli.col.kind"),
                t("col.window"),
                t("cli.col.rectify_by"),
                t("cli.col.outcome"),
            )
            for r in records:
                row = (
                    r["record"],
                    r["case_id"] or "",
                    t(f"cli.kind.{r['kind']}"),
                    r["window"],
                    r["rectify_by"],
                    r["outcome"] or "",
                )
                table.add_row(*row)
            out.print(table)

        emit(records, as_json, human)

    app.add_typer(_roster_app(), name="staff")


def _roster_app() -> typer.Typer:
    app = typer.Typer(help=t("cli.cmd.staff"), no_args_is_help=True)

    @app.command("add", help=t("cli.cmd.staff_add"))
    def add(
        home: Home,
        name: Annotated[str, typer.Option(help=t("cli.opt.staff_name"))],
        role: Annotated[str, typer.Option(help=t("cli.opt.role"))],
        window: Annotated[str, typer.Option(help=t("cli.opt.staff_window"))] = "",
        department: Annotated[str, typer.Option(help=t("cli.opt.department"))] = "",
    ) -> None:
        """Put a staff member on the roster, or change their window or role."""
        name, window = name.strip(), window.strip()
        run(with_node(home, lambda node: roster.add_member(node, name, window, role, department)))
        said = "cli.desk.staff_added" if window else "cli.desk.staff_added_no_window"
        out.print(t(said, name=name, window=window, role=t(f"role.{role}")), markup=False)

    @app.command("remove", help=t("cli.cmd.staff_remove"))
    def remove(home: Home, name: Annotated[str, typer.Option(help=t("cli.opt.staff_name"))]) -> None:
        """Take a staff member off the roster."""
        run(with_node(home, lambda node: roster.remove_member(node, name)))
        out.print(t("cli.desk.staff_removed", name=name), markup=False)

    @app.command("window", help=t("cli.cmd.staff_window"))
    def window(
        home: Home,
        window: Annotated[str, typer.Option(help=t("cli.opt.window"))],
        item: Annotated[list[str] | None, typer.Option(help=t("cli.opt.window_item"))] = None,
    ) -> None:
        """Say which items a window serves."""
        run(with_node(home, lambda node: roster.serve_items(node, window, item or [])))
        served = ", ".join(item or []) or t("cli.desk.every_item")
        out.print(t("cli.desk.window_serves", window=window, items=served), markup=False)

    @app.command("list", help=t("cli.cmd.staff_list"))
    def listing(home: Home, as_json: AsJson = False) -> None:
        """The roster: each staff member's window, role and the items the window serves."""
        members = run(with_node(home, roster.roster))

        def human() -> None:
            table = Table(
                t("cli.col.name"),
                t("col.window"),
                t("cli.col.role"),
                t("cli.col.department"),
                t("cli.col.items"),
            )
            for m in members:
                items = ", ".join(m["items"]) or "*"
                table.add_row(m["name"], m["window"], t(f"role.{m['role']}"), m["department"], items)
            out.print(table)

        emit(members, as_json, human)

    return app
