"""The intake app's routes: pages by GET, forms by POST.

Local only, for the one agent at this laptop: no login, but it answers only requests made to
a loopback name (so a web page elsewhere cannot reach it through a DNS name pointed at
127.0.0.1), and a form is acted on only if it came from this app's own page: same origin and
the token this process put in the form (CSRF).
"""

import hmac
import secrets
from typing import Any

from casework import Item
from messages import t
from relay.httpd import HTTPError, Request, Response, redirect
from relay.multipart import Parts
from relay.node import Node
from relay.web import HTML, frame, href, same_origin, security_headers, when
from village_agent.ui import _cases, _data, _find, _forms, _views
from village_agent.ui._style import SCRIPT, STYLE
from village_agent.ui._views import w

HEADERS = security_headers(SCRIPT)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
CASE_ACTIONS = ("supplement", "deliver", "rate", "withdraw", "complain")
FILE_FORMS = ("take", "supplement")  # the forms that carry scans (a larger body)


def takes_files(path: str) -> bool:
    """Whether a POST to ``path`` may carry scans (see relay.httpd.start_http)."""
    return path.rsplit("/", 1)[-1] in FILE_FORMS


class IntakeApp:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.token = secrets.token_urlsafe(32)  # put in every form; a restart makes a new one

    async def handle(self, request: Request) -> Response:
        host = request.headers.get("host", "").rsplit(":", 1)[0]
        if host not in LOOPBACK_NAMES:
            raise HTTPError(421, "this app answers on its loopback address only")
        parts = [part for part in request.path.split("/") if part]
        if request.method == "POST":
            return await self.post(request, parts)
        return await self.get(request, parts)

    async def get(self, request: Request, parts: list[str]) -> Response:
        match parts:
            case []:
                query = request.query.get("q", "")[:100]
                return await self.page(t("village_app.find_title"), _views.find(query, self.find(query)))
            case ["item", code]:
                item = self.item(code)
                title = t("village_app.labelled", label=t("village_app.guide_title"), value=item.name)
                return await self.page(title, _views.guide(item))
            case ["item", code, "take"]:
                item = self.item(code)
                body = _views.take_form(item, self.token, {}, "")
                return await self.page(t("village_app.form_title"), body)
            case ["cases"]:
                rows = await _data.case_rows(self.node)
                return await self.page(t("village_app.cases_title"), _cases.case_list(rows, self.names()))
            case ["case", case_id]:
                return await self.case_page(await self.case(case_id), request.query.get("done", ""), "")
            case ["case", case_id, "receipt"]:
                case = await self.case(case_id)
                taken_for = self.node.ledger.catalog.items.get(case["item_code"])
                village, agent = self.node.config.name, self.node.config.operator
                body = _cases.receipt(case, taken_for, village, agent)
                return await self.page(t("village_app.receipt_title"), body)
        raise NotFound

    async def post(self, request: Request, parts: list[str]) -> Response:
        same_origin(request)
        form = request.parts() if takes_files(request.path) else Parts(request.form(), {})
        if not hmac.compare_digest(form.fields.get("csrf", "").encode(), self.token.encode()):
            raise HTTPError(403, t("village_app.error.forbidden"))
        match parts:
            case ["item", code, "take"]:
                item = self.item(code)
                try:
                    taken = await _forms.take(self.node, item, form)
                except _forms.Refused as exc:
                    body = _views.take_form(item, self.token, form.fields, str(exc))
                    return await self.page(t("village_app.form_title"), body, 422)
                return redirect(f"/case/{taken.case_id}?done=taken")
            case ["case", case_id, action] if action in CASE_ACTIONS:
                case = await self.case(case_id)
                try:
                    await _forms.command(self.node, case, action, form)
                except _forms.Refused as exc:
                    return await self.case_page(case, "", str(exc), 422)
                return redirect(f"/case/{case_id}?done=recorded")
        raise NotFound

    async def case_page(self, case: dict[str, Any], done: str, problem: str, status: int = 200) -> Response:
        notice = ""
        if done == "taken":
            notice = t("village_app.taken", case_id=case["case_id"])
            if not (await _data.link(self.node)).online:
                notice += t("village_app.taken_offline")
        elif done == "recorded":
            notice = t("village_app.recorded")
        item = self.node.ledger.catalog.items.get(case["item_code"])
        body = _cases.case_page(case, item, self.token, notice, problem)
        title = t("village_app.labelled", label=t("village_app.case_title"), value=case["case_id"])
        return await self.page(title, body, status)

    async def page(self, title: str, body: str, status: int = 200) -> Response:
        link = await _data.link(self.node)
        html = frame(title, body, t("village_app.title"), _nav(link), STYLE, SCRIPT)
        return Response(status, html, HTML, HEADERS)

    def find(self, query: str) -> list[Item]:
        return _find.find(self.node.ledger.catalog.takeable_at("village"), query)

    def item(self, code: str) -> Item:
        found = self.node.ledger.catalog.items.get(code)
        if found is None or found.accept_level != "village":
            raise NotFound
        return found

    async def case(self, case_id: str) -> dict[str, Any]:
        found = await _data.case(self.node, case_id)
        if found is None:
            raise NotFound
        return found

    def names(self) -> dict[str, str]:
        return {code: item.name for code, item in self.node.ledger.catalog.items.items()}


class NotFound(HTTPError):
    def __init__(self) -> None:
        super().__init__(404, t("village_app.not_found"))


def _nav(link: _data.Link) -> str:
    state = f'<span class="on">{w("online")}</span>'
    if not link.online:
        state = f'<span class="off">{w("offline")}</span>'
    synced = w("last_sync", when=when(link.last_sync)) if link.last_sync else w("never_synced")
    return (
        f'<nav><a href="/" accesskey="n">{w("nav_take")}</a>'
        f'<a href="{href("cases")}" accesskey="c">{w("nav_cases")}</a></nav>'
        f'<div class="link" role="status">{state}<a href="{href("cases")}">{w("queued", n=link.queued)}</a>'
        f"<span>{synced}</span></div>"
    )
