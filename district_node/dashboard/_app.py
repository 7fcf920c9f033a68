"""The management office's dashboard: routes, staff login, and the data each page reads.

Read-only: every page is a GET; the only forms are login and logout. Everything but the login
page needs a session cookie (see _users); /metrics is answered before this, by relay.httpd.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import structlog

from casework import Divisions
from district_node import coverage
from district_node.dashboard import _data, _users, _views
from district_node.dashboard._html import esc, page
from district_node.dashboard._text import t
from relay import supervision
from relay.clock import now_us, today_in_china
from relay.httpd import HTTPError, Request, Response, redirect
from relay.node import Node
from relay.queries import show_case

COOKIE = "servicenet_session"
FAILED_LOGIN_DELAY = 1.0  # seconds before a wrong password is answered
REPORT_SECONDS = 10.0  # pages asked for within this long share one supervision report
HTML = "text/html; charset=utf-8"
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'",
    ),
    ("Referrer-Policy", "same-origin"),  # not "no-referrer": browsers then send "Origin: null"
    ("X-Frame-Options", "DENY"),
)

log = structlog.get_logger()
Page = Callable[[str, Request], Awaitable[tuple[str, str]]]  # (title, body HTML)


def dashboard(node: Node, divisions_file: Path) -> Callable[[Request], Awaitable[Response]]:
    """The dashboard's request handler for the district ``node``."""
    return Dashboard(node, Divisions.from_csv(divisions_file)).handle


class Dashboard:
    def __init__(self, node: Node, divisions: Divisions) -> None:
        self.node, self.home, self.divisions = node, node.home, divisions
        self.secret = _users.session_secret(node.home)
        self.logins = asyncio.Semaphore(2)  # password checks cost CPU and memory: two at once
        self.ended: dict[str, int] = {}  # cookies logged out, until they expire anyway
        self.reporting = asyncio.Lock()  # pages asking at once wait for one report
        self.kept: tuple[date, float, dict[str, Any]] | None = None  # (day, made at, report)
        self.clock = time.monotonic
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
        if request.path == "/login":
            return await self.login(request)
        if request.path == "/favicon.ico":
            raise HTTPError(404, "no icon")
        cookie, now = request.cookie(COOKIE), now_us() // 1_000_000
        session = None if cookie in self.ended else _users.check(self.home, self.secret, cookie, now)
        if session is None:
            return redirect("/login?" + urlencode({"next": _target(request)}))
        if request.path == "/logout" and request.method == "POST":
            self.end(str(cookie), session.expires, now)
            log.info("web.logout", user=session.name)
            return redirect(
                "/login", ("Set-Cookie", f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
            )
        if request.method == "POST":
            raise HTTPError(405, "the dashboard is read-only")
        title, body = await self.route(request)
        return _html(200 if title != t("page.not_found") else 404, title, body, session.name)

    def end(self, cookie: str, expires: int, now: int) -> None:
        """Refuse a logged-out cookie from now on (kept in memory: a restart forgets it, and
        it expires within a working day anyway)."""
        self.ended = {value: until for value, until in self.ended.items() if until >= now}
        self.ended[cookie] = expires

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
        cases = await _data.case_rows(self.node, township_code=code)
        body = _views.township(mine, report, cases, now_us(), self.names())
        return f"{t('township.title')}：{division.name}（{code}）", body

    async def window(self, name: str, request: Request) -> tuple[str, str]:
        owner = request.query.get("owner", "")
        where = {"window": name, "owner": owner} if owner else {"window": name}
        report, cases = await self.report(), await _data.case_rows(self.node, **where)
        title = f"{t('window.title')}：{name}" + (f"（{self.names().place(owner)}）" if owner else "")
        return title, _views.group_page(name, "by_window", cases, report, self.names())

    async def item(self, code: str, request: Request) -> tuple[str, str]:
        report, cases = await self.report(), await _data.case_rows(self.node, item_code=code)
        names = self.names()
        if code not in names.catalog.items and not cases:
            return _not_found()
        return f"{t('item.title')}：{names.item(code)}", _views.group_page(
            code, "by_item", cases, report, names
        )

    async def case(self, case_id: str, request: Request) -> tuple[str, str]:
        found = await show_case(self.node, case_id)
        applicant = await _data.identity(self.node, case_id)
        if found is None or applicant is None:
            return t("page.not_found"), f"<p>{esc(t('case.not_found'))}</p>"
        warned = {w["case_id"]: w["light"] for w in (await self.report())["warnings"]}
        light = warned.get(case_id) or _views.light_of(found)
        return f"{t('case.title')}：{case_id}", _views.case_page(found, applicant, light, self.names())

    async def report(self) -> dict[str, Any]:
        """Today's supervision report, made at most once per REPORT_SECONDS (and on a new
        day): a page costs no recount, and the report is at most that old."""
        async with self.reporting:
            today, now = today_in_china(), self.clock()
            if self.kept is None or self.kept[0] != today or now - self.kept[1] >= REPORT_SECONDS:
                self.kept = (today, now, await supervision.supervise(self.node, today))
            return self.kept[2]

    def names(self) -> _views.Names:
        return _views.Names(self.place_names, self.node.ledger.catalog)

    async def login(self, request: Request) -> Response:
        target = _safe_next(request.query.get("next", "/"))
        if request.method != "POST":
            return _login_page(target, "")
        _same_origin(request)
        form = request.form()
        name, password = form.get("name", "").strip()[:64], form.get("password", "")[:1024]
        async with self.logins:
            ok = bool(name) and await asyncio.to_thread(_users.verify, self.home, name, password)
        if not ok:
            log.warning("web.login.refused")
            await asyncio.sleep(FAILED_LOGIN_DELAY)
            message = t("login.failed") if _users.list_users(self.home) else t("login.no_users")
            return _login_page(_safe_next(form.get("next", target)), message, 401)
        log.info("web.login", user=name)
        cookie = _users.issue(self.home, self.secret, name, now_us() // 1_000_000)
        attributes = f"Path=/; HttpOnly; SameSite=Strict; Max-Age={_users.SESSION_SECONDS}"
        return redirect(
            _safe_next(form.get("next", target)), ("Set-Cookie", f"{COOKIE}={cookie}; {attributes}")
        )


def _html(status: int, title: str, body: str, user: str | None) -> Response:
    return Response(status, page(title, body, user), HTML, SECURITY_HEADERS)


def _not_found() -> tuple[str, str]:
    return t("page.not_found"), f'<p><a href="/">{esc(t("nav.overview"))}</a></p>'


def _target(request: Request) -> str:
    return request.path + ("?" + urlencode(request.query) if request.query else "")


def _safe_next(target: str) -> str:
    """Only a path on this server: never another site (``//host``) or a header break."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or not target.isprintable():
        return "/"
    return target


def _same_origin(request: Request) -> None:
    """A login form posted from another site is refused (login CSRF)."""
    origin, host = request.headers.get("origin"), request.headers.get("host", "")
    if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
        raise HTTPError(403, "the login form must be posted from this site")


def _login_page(target: str, error: str, status: int = 200) -> Response:
    problem = f'<p class="error">{esc(error)}</p>' if error else ""
    body = (
        f'<form class="login" method="post" action="/login?next={esc(quote(target, safe=""))}">{problem}'
        f'<label for="name">{esc(t("login.name"))}</label>'
        '<input id="name" name="name" autocomplete="username" required autofocus>'
        f'<label for="password">{esc(t("login.password"))}</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        f'<input type="hidden" name="next" value="{esc(target)}">'
        f'<button type="submit">{esc(t("login.submit"))}</button></form>'
    )
    return _html(status, t("login.title"), body, None)
