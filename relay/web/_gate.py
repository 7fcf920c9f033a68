"""Staff sign-in for a node's web pages: the login form, the signed session cookie, logout.

A page handler asks :meth:`Gate.admit` first: it answers the login form, logout and requests
without a session itself, and otherwise gives the signed-in session. Accounts and cookies: see
_users.
"""

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from urllib.parse import quote, urlencode

import structlog

from messages import t
from relay.clock import now_us
from relay.httpd import HTTPError, Request, Response, redirect
from relay.web import _users
from relay.web._html import HOME, Link, esc, page

COOKIE = "servicenet_session"
FAILED_LOGIN_DELAY = 1.0  # seconds before a wrong password is answered
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


def security_headers(*scripts: str) -> tuple[tuple[str, str], ...]:
    """SECURITY_HEADERS that let a page run exactly these inline scripts (allowed by their
    SHA-256, so nothing injected into the page can run)."""
    digests = (base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() for script in scripts)
    hashes = " ".join(f"'sha256-{digest}'" for digest in digests)
    (name, policy), *rest = SECURITY_HEADERS
    return ((name, f"{policy}; script-src {hashes}"), *rest)


class Gate:
    """Sign-in for the pages of the node whose home is ``home``; ``app`` is the title of the
    application (a catalog key) shown on every page."""

    def __init__(
        self, home: Path, app: str = "app.title", login_title: str = "login.title", no_users: str = ""
    ) -> None:
        self.home, self.app = home, app
        self.login_title, self.no_users = login_title, no_users or "login.no_users"
        self.secret = _users.session_secret(home)
        self.logins = asyncio.Semaphore(2)  # password checks cost CPU and memory: two at once
        self.ended: dict[str, int] = {}  # cookies logged out, until they expire anyway

    def session(self, request: Request) -> _users.Session | None:
        cookie = request.cookie(COOKIE)
        if cookie in self.ended:
            return None
        return _users.check(self.home, self.secret, cookie, now_us() // 1_000_000)

    def to_login(self, request: Request) -> Response:
        return redirect("/login?" + urlencode({"next": _target(request)}))

    def logout(self, request: Request, session: _users.Session) -> Response:
        """End the session (kept in memory: a restart forgets it, and it expires within a
        working day anyway)."""
        now = now_us() // 1_000_000
        self.ended = {value: until for value, until in self.ended.items() if until >= now}
        self.ended[str(request.cookie(COOKIE))] = session.expires
        log.info("web.logout", user_ref=_users.log_ref(self.secret, session.name))
        return redirect("/login", ("Set-Cookie", f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"))

    async def admit(
        self, request: Request, names: Callable[[], Awaitable[Callable[[str], bool]]] | None = None
    ) -> Response | _users.Session:
        """What the gate answers itself (the login form and a posted login, logout, a request
        without a session: to the login form), or the signed-in session. ``names`` gives the
        test of who may sign in (see :meth:`login`)."""
        if request.path == "/login":
            return await self.login(request, await names() if names else bool)
        if request.path == "/favicon.ico":
            raise HTTPError(404, "no icon")
        session = self.session(request)
        if session is None:
            return self.to_login(request)
        if request.path == "/logout" and request.method == "POST":
            return self.logout(request, session)
        return session

    async def login(self, request: Request, may_sign_in: Callable[[str], bool] = bool) -> Response:
        """The login form, or a posted login; ``may_sign_in`` refuses names the node does not
        accept (for instance, staff not on the roster)."""
        target = _safe_next(request.query.get("next", "/"))
        if request.method != "POST":
            return self.login_page(target, "")
        same_origin(request)
        form = request.form()
        name, password = form.get("name", "").strip()[:64], form.get("password", "")[:1024]
        async with self.logins:
            ok = bool(name) and await asyncio.to_thread(_users.verify, self.home, name, password)
        if not ok or not may_sign_in(name):
            reason = "password" if not ok else "not_allowed"  # not_allowed: e.g. not on the roster
            log.warning("web.login.refused", user_ref=_users.log_ref(self.secret, name), reason=reason)
            await asyncio.sleep(FAILED_LOGIN_DELAY)
            message = t("login.failed") if _users.list_users(self.home) else t(self.no_users)
            return self.login_page(_safe_next(form.get("next", target)), message, 401)
        log.info("web.login", user_ref=_users.log_ref(self.secret, name))
        cookie = _users.issue(self.home, self.secret, name, now_us() // 1_000_000)
        attributes = f"Path=/; HttpOnly; SameSite=Strict; Max-Age={_users.SESSION_SECONDS}"
        return redirect(
            _safe_next(form.get("next", target)), ("Set-Cookie", f"{COOKIE}={cookie}; {attributes}")
        )

    def login_page(self, target: str, error: str, status: int = 200) -> Response:
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
        return self.html(status, t(self.login_title), body, None)

    def html(
        self, status: int, title: str, body: str, user: str | None, links: Sequence[Link] = HOME
    ) -> Response:
        return Response(status, page(title, body, user, t(self.app), links), HTML, SECURITY_HEADERS)

    def form_token(self, request: Request) -> str:
        """The token a page puts in its forms: bound to the session cookie, so a form made for
        one session is refused in another (CSRF, with :func:`same_origin`)."""
        cookie = str(request.cookie(COOKIE))
        return hmac.new(self.secret, f"form.{cookie}".encode(), hashlib.sha256).hexdigest()

    def posted_form(self, request: Request) -> dict[str, str]:
        """A form posted from this site with this session's token; HTTPError 403 otherwise."""
        same_origin(request)
        form = request.form()
        if not hmac.compare_digest(form.get("token", ""), self.form_token(request)):
            raise HTTPError(403, "the form is out of date or not from this site: reload the page")
        return form


def same_origin(request: Request) -> None:
    """A form posted from another site is refused (CSRF)."""
    origin, host = request.headers.get("origin"), request.headers.get("host", "")
    if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
        raise HTTPError(403, "the form must be posted from this site")


def _target(request: Request) -> str:
    return request.path + ("?" + urlencode(request.query) if request.query else "")


def _safe_next(target: str) -> str:
    """Only a path on this server: never another site (``//host``) or a header break."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or not target.isprintable():
        return "/"
    return target
