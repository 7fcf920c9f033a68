"""The window staff's commands, the same at a township center and at the district: acting on
cases, the roster of windows (AB岗, 首席代表), and rectification records."""

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from casework import InvalidInput
from relay import actions
from relay import staff as roster
from relay.actions import Action
from relay.console import AsJson, CaseIds, Home, Staff, emit, fail, out, print_outcomes, run, with_node
from relay.node import Node
from relay.staff import Outcome, act

Reason = Annotated[str, typer.Option(help="Why: told to the applicant.")]


def staff_action(
    home: Path, case_ids: list[str], make: Callable[[], Action], staff: str, as_json: bool
) -> None:
    """Make the action from what the command was given (relay.actions), then take it on each
    case as ``staff``."""
    try:
        action = make()
    except InvalidInput as exc:
        fail(str(exc))

    async def go(node: Node) -> list[Outcome]:
        return await act(node, case_ids, action.event_type, action.payload, staff)

    print_outcomes(run(with_node(home, go)), as_json)


def _said(text: str, what: str) -> str:
    try:
        return actions.said(text, what)
    except InvalidInput as exc:
        fail(str(exc))


def add_staff_commands(app: typer.Typer) -> None:
    """What window staff do to the cases their node owns, and at the window for others."""

    @app.command()
    def accept(home: Home, case_ids: CaseIds, staff: Staff = "", as_json: AsJson = False) -> None:
        """Accept cases this node owns."""
        staff_action(home, case_ids, actions.accept, staff, as_json)

    @app.command()
    def refuse(
        home: Home, case_ids: CaseIds, reason: Reason, staff: Staff = "", as_json: AsJson = False
    ) -> None:
        """Refuse to accept requests (不予受理), saying why."""
        staff_action(home, case_ids, lambda: actions.refuse(reason), staff, as_json)

    @app.command("request-correction")
    def request_correction(
        home: Home,
        case_id: str,
        missing: Annotated[list[str], typer.Option("--missing", help="A missing or faulty material.")],
        note: Annotated[str, typer.Option(help="One note for the applicant.")] = "",
        staff: Staff = "",
        as_json: AsJson = False,
    ) -> None:
        """Send one correction notice listing every missing material (一次性告知)."""
        staff_action(home, [case_id], lambda: actions.request_correction(missing, note), staff, as_json)

    @app.command()
    def decide(
        home: Home,
        case_ids: CaseIds,
        reason: Reason,
        approve: Annotated[bool, typer.Option("--approve")] = False,
        reject: Annotated[bool, typer.Option("--reject")] = False,
        department: Annotated[
            str | None, typer.Option(help="For a joint item: the department deciding (each one does).")
        ] = None,
        staff: Staff = "",
        as_json: AsJson = False,
    ) -> None:
        """Approve or reject cases this node owns and decides (joint items: per --department).
        A chief representative may decide a request that is not yet accepted, on the spot."""
        decision = partial(actions.decide, approve, reject, reason, department)
        staff_action(home, case_ids, decision, staff, as_json)

    @app.command()
    def pause(
        home: Home,
        case_ids: CaseIds,
        step: Annotated[str, typer.Option(help="The step the law keeps off the clock (e.g. 公示).")],
        note: Annotated[str, typer.Option(help="A note for the record.")] = "",
        staff: Staff = "",
        as_json: AsJson = False,
    ) -> None:
        """Stop the clock for a step the law excludes from the time limit (公示, 鉴定 …)."""
        staff_action(home, case_ids, lambda: actions.pause(step, note), staff, as_json)

    @app.command()
    def resume(home: Home, case_ids: CaseIds, staff: Staff = "", as_json: AsJson = False) -> None:
        """Restart the clock once the excluded step is over; deadlines move by the days it took."""
        staff_action(home, case_ids, actions.resume, staff, as_json)

    @app.command()
    def deliver(home: Home, case_ids: CaseIds, staff: Staff = "", as_json: AsJson = False) -> None:
        """The result was handed to the applicant at this window (送达)."""
        staff_action(home, case_ids, actions.deliver, staff, as_json)

    @app.command()
    def rate(
        home: Home,
        case_id: str,
        score: Annotated[int, typer.Option(help="5 非常满意 … 1 非常不满意.")],
        comment: Annotated[str, typer.Option(help="The applicant's words.")] = "",
        staff: Staff = "",
        as_json: AsJson = False,
    ) -> None:
        """Record the applicant's rating given at this window."""
        staff_action(home, [case_id], lambda: actions.rate(score, comment), staff, as_json)

    @app.command()
    def complain(
        home: Home,
        text: Annotated[str, typer.Option(help="The complaint, in the applicant's words.")],
        case_id: Annotated[str | None, typer.Argument(help="The case complained about.")] = None,
        window: Annotated[str | None, typer.Option(help="Or: the window complained about.")] = None,
        staff: Staff = "",
        as_json: AsJson = False,
    ) -> None:
        """Record a complaint made at this window, about a case or about a window."""
        said = _said(text, "the complaint")
        if (case_id is None) == (window is None):
            fail("name either the CASE_ID or the --window complained about")
        if case_id is not None:
            staff_action(home, [case_id], lambda: actions.complain(said), staff, as_json)
            return
        window_name = str(window).strip()
        record = run(
            with_node(home, lambda node: roster.complain_about_window(node, window_name, said, staff))
        )
        emit({"record": record}, as_json, lambda: out.print(f"complaint recorded as {record}", markup=False))

    @app.command()
    def rectify(
        home: Home,
        outcome: Annotated[str, typer.Option(help="What was done about it (整改结果).")],
        case_id: Annotated[str | None, typer.Argument(help="The case the record belongs to.")] = None,
        record: Annotated[
            str | None,
            typer.Option(help="The record it closes (default: the case's oldest open one; window:N)."),
        ] = None,
        staff: Staff = "",
        as_json: AsJson = False,
    ) -> None:
        """Close a rectification record opened by a bad review or a complaint."""
        said = _said(outcome, "the outcome")
        if case_id is None:
            if not record or not record.startswith(roster.WINDOW_RECORD):
                fail("name the CASE_ID, or a window complaint's --record window:N")
            window_record = record
            run(with_node(home, lambda node: roster.rectify_window(node, window_record, said, staff)))
            emit(
                {"record": record, "ok": True},
                as_json,
                lambda: out.print(f"{record}: rectified", markup=False),
            )
            return
        staff_action(home, [case_id], lambda: actions.rectify(said, record), staff, as_json)

    @app.command()
    def rectifications(
        home: Home,
        all_records: Annotated[bool, typer.Option("--all", help="Closed records too.")] = False,
        as_json: AsJson = False,
    ) -> None:
        """Rectification records (bad reviews, complaints): open ones with their deadline."""

        async def load(node: Node) -> list[dict[str, Any]]:
            async with node.engine.connect() as conn:
                return await roster.open_records(conn)

        records = [r for r in run(with_node(home, load)) if all_records or r["outcome"] is None]

        def human() -> None:
            table = Table("record", "case", "kind", "window", "rectify by", "outcome")
            for r in records:
                row = (
                    r["record"],
                    r["case_id"] or "",
                    r["kind"],
                    r["window"],
                    r["rectify_by"],
                    r["outcome"] or "",
                )
                table.add_row(*row)
            out.print(table)

        emit(records, as_json, human)

    app.add_typer(_roster_app(), name="staff")


def _roster_app() -> typer.Typer:
    app = typer.Typer(help="The center's windows and staff (AB岗, 首席代表).", no_args_is_help=True)

    @app.command("add")
    def add(
        home: Home,
        name: Annotated[str, typer.Option(help="The staff member's name.")],
        role: Annotated[str, typer.Option(help="A, B, chief (首席代表) or supervisor (督查).")],
        window: Annotated[str, typer.Option(help="Their window (e.g. 3); a supervisor has none.")] = "",
        department: Annotated[str, typer.Option(help="The department a chief represents.")] = "",
    ) -> None:
        """Put a staff member on the roster, or change their window or role."""
        name, window = name.strip(), window.strip()
        run(with_node(home, lambda node: roster.add_member(node, name, window, role, department)))
        where = f" at window {window}" if window else ""
        out.print(f"{name}{where} as {role}", markup=False)

    @app.command("remove")
    def remove(home: Home, name: Annotated[str, typer.Option(help="The staff member's name.")]) -> None:
        """Take a staff member off the roster."""
        run(with_node(home, lambda node: roster.remove_member(node, name)))
        out.print(f"{name} removed", markup=False)

    @app.command("window")
    def window(
        home: Home,
        window: Annotated[str, typer.Option(help="The window.")],
        item: Annotated[list[str] | None, typer.Option(help="An item it serves (none: every item).")] = None,
    ) -> None:
        """Say which items a window serves."""
        run(with_node(home, lambda node: roster.serve_items(node, window, item or [])))
        out.print(f"window {window} serves {', '.join(item or []) or 'every item'}", markup=False)

    @app.command("list")
    def listing(home: Home, as_json: AsJson = False) -> None:
        """The roster: each staff member's window, role and the items the window serves."""
        members = run(with_node(home, roster.roster))

        def human() -> None:
            table = Table("name", "window", "role", "department", "items")
            for m in members:
                items = ", ".join(m["items"]) or "*"
                table.add_row(m["name"], m["window"], m["role"], m["department"], items)
            out.print(table)

        emit(members, as_json, human)

    return app
