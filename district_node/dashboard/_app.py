"""The management office's dashboard: routes and the data each page reads.

Read-only: every page is a GET; the only forms are login and logout, answered by the gate
(relay.web). /metrics is answered before this, by relay.httpd. Under /desk/ the district's
department staff (those on the roster) get the staff console (relay.deskweb) for the cases the
district owns, behind the same sign-in.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

from casework import Divisions
from district_node import coverage
from district_node.dashboard import _data, _views
from messages import t
from relay import supervision
from relay.clock import now_us, today_in_china
from relay.deskweb import Desk
from relay.httpd import HTTPError, Request, Response
from relay.node import Node
from relay.queries import show_case
from relay.web import Gate, esc

DESK = "/desk"  # where the staff console is
LINKS = (("/", "nav.overview"), (f"{DESK}/", "console.queue"))
REPORT_SECONDS = 10.0  # pages asked for within this long share one supervision report
Page = Callable[[str, Request], Awaitable[tuple[str, str]]]  # (title, body HTML)


def dashboard(node: Node, divisions_file: Path) -> Callable[[Request], Awaitable[Response]]:
    """The dashboard's request handler for the district ``node``."""
    return Dashboard(node, Divisions.from_csv(divisions_file)).handle


class Dashboard:
    def __init__(self, node: Node, divisions: Divisions) -> None:
        self.node, self.divisions = node, divisions
        self.gate = Gate(node.home)
        self.desk = Desk(node, self.gate, DESK)
        self.reporting = asyncio.Lock()  # pages asking at once wait for one report
        self.kept: tuple[date, float, dict[str, Any]] | None = None  # (day, made at, report)
        self.clock = time.monotonic
        self.listed = supervision.WARNINGS_LISTED  # warned cases a page lists of each urgency
        every = [
            divisions.district,
            *(d for level in ("township", "village") for d in divisions.of_level(level)),
        ]
        self.place_names = {d.code: d.name for d in every}
        self.pages: dict[str, Page] = {
            "township": self.township,
            "window": self.window,
            "item": self.item,
            "case": self.case,
        }

    async def handle(self, request: Request) -> Response:
        session = await self.gate.admit(request)
        if isinstance(session, Response):
            return session
        if request.path == DESK or request.path.startswith(f"{DESK}/"):
            return await self.desk.serve(request, session)
        if request.method == "POST":
            raise HTTPError(405, "the dashboard is read-only")
        title, body = await self.route(request)
        status = 200 if title != t("page.not_found") else 404
        return self.gate.html(status, title, body, session.name, LINKS)

    async def route(self, request: Request) -> tuple[str, str]:
        if request.path == "/":
            return await self.overview()
        first, _, rest = request.path[1:].partition("/")
        found = self.pages.get(first)
        if found is None or not rest or "/" in rest:
            return _not_found()
        return await found(rest, request)

    async def overview(self) -> tuple[str, str]:
        report = await self.report()
        cover = await coverage.coverage(self.node, self.divisions, now_us())
        return t("overview.title"), _views.overview(cover, report, now_us(), self.names())

    async def township(self, code: str, request: Request) -> tuple[str, str]:
        division = self.divisions.get(code)
        if division is None or division.level != "township":
            return _not_found()
        report = await self.report()
        cover = await coverage.coverage(self.node, self.divisions, now_us())
        [mine] = [c for c in cover if c.center.code == code]
        today = today_in_china()
        cases = await _data.case_rows(self.node, today, township_code=code)
        warned = await _data.township_warnings(self.node, today, code, self.listed)
        body = _views.township(mine, report, warned, cases, now_us(), self.names())
        return f"{t('township.title')}：{division.name}（{code}）", body

    async def window(self, name: str, request: Request) -> tuple[str, str]:
        owner = request.query.get("owner", "")
        where = {"window": name, "owner": owner} if owner else {"window": name}
        report, cases = await self.report(), await _data.case_rows(self.node, today_in_china(), **where)
        title = f"{t('window.title')}：{name}" + (f"（{self.names().place(owner)}）" if owner else "")
        return title, _views.group_page(name, "by_window", cases, report, self.names())

    async def item(self, code: str, request: Request) -> tuple[str, str]:
        report = await self.report()
        cases = await _data.case_rows(self.node, today_in_china(), item_code=code)
        names = self.names()
        if code not in names.catalog.items and not cases:
            return _not_found()
        return f"{t('item.title')}：{names.item(code)}", _views.group_page(
            code, "by_item", cases, report, names
        )

    async def case(self, case_id: str, request: Request) -> tuple[str, str]:
        found = await show_case(self.node, case_id)
        known = await _data.identity(self.node, case_id, today_in_china())
        if found is None or known is None:
            return t("page.not_found"), f"<p>{esc(t('case.not_found'))}</p>"
        name, id_number, light = known
        page = _views.case_page(found, (name, id_number), light, self.names())
        return f"{t('case.title')}：{case_id}", page

    async def report(self) -> dict[str, Any]:
        """Today's supervision report, made at most once per REPORT_SECONDS (and on a new
        day): a page costs no recount, and the report is at most that old."""
        async with self.reporting:
            today, now = today_in_china(), self.clock()
            if self.kept is None or self.kept[0] != today or now - self.kept[1] >= REPORT_SECONDS:
                self.kept = (today, now, await supervision.supervise(self.node, today, self.listed))
            return self.kept[2]

    def names(self) -> _views.Names:
        return _views.Names(self.place_names, self.node.ledger.catalog)


def _not_found() -> tuple[str, str]:
    return t("page.not_found"), f'<p><a href="/">{esc(t("nav.overview"))}</a></p>'
