"""The staff console's routes. Every page needs a signed-in web user who is on this center's
roster; every action is a POST from this site carrying the session's form token, taken through
relay.staff.act as the signed-in staff member (who is therefore on the record of the case).

Routes under ``prefix`` ("" at a township, "/desk" on the district hub):
``/`` the queue, ``/case/ID`` one case, ``POST /case/ID/ACTION`` an action on it,
``/rectifications`` the open rectification records (bad reviews, complaints), ``POST
/rectifications`` the outcome of a window complaint's.
"""

from collections.abc import Awaitable, Callable

from casework import CaseworkError, InvalidInput, Item
from messages import refusal, t
from relay import actions
from relay.actions import Action
from relay.clock import today_in_china
from relay.deskweb import _data, _views
from relay.httpd import HTTPError, Request, Response, redirect
from relay.node import Node
from relay.staff import Actor, act, rectify_window
from relay.staff import names as roster_names
from relay.web import Gate, Link, Session, esc

_DONE = "done"  # the query field that says which action was just taken


def desk(node: Node) -> Callable[[Request], Awaitable[Response]]:
    """The console of a township center, with its own sign-in (relay.web's Gate)."""
    return Desk(node).handle


class Desk:
    """The console of ``node``; ``gate`` is shared with the node's other pages, if any (the
    district's dashboard), in which case they answer /login and /logout."""

    def __init__(self, node: Node, gate: Gate | None = None, prefix: str = "") -> None:
        self.node, self.prefix = node, prefix
        self.gate = gate or Gate(node.home, "console.app", "console.login", "console.no_users")
        self.links: tuple[Link, ...] = (
            (f"{prefix}/", "console.queue"),
            (f"{prefix}/rectifications", "console.rectifications"),
        )
        if prefix:
            self.links += (("/", "nav.overview"),)

    async def handle(self, request: Request) -> Response:
        """Every request of a node whose only pages are the console."""
        admitted = await self.gate.admit(request, self.on_roster)
        return admitted if isinstance(admitted, Response) else await self.serve(request, admitted)

    async def on_roster(self) -> Callable[[str], bool]:
        """Who may sign in to the console: staff on the roster."""
        return (await roster_names(self.node)).__contains__

    async def serve(self, request: Request, session: Session) -> Response:
        """A request under the prefix, from a signed-in web user."""
        actor = await _data.member(self.node, session.name)
        if actor is None:
            body = f"<p>{esc(t('console.not_on_roster_note'))}</p>"
            return self.gate.html(403, t("console.not_on_roster"), body, session.name, self.links)
        parts = request.path.removeprefix(self.prefix).strip("/").split("/")
        if len(parts) == 3 and parts[0] == "case" and parts[2] in _FORMS:
            if request.method != "POST":
                raise HTTPError(405, "an action is a POST of its form")
            return await self.take(request, actor, parts[1], parts[2])
        if parts == ["rectifications"] and request.method == "POST":
            return await self.rectify_window(request, actor)
        if request.method == "POST":
            raise HTTPError(405, "this page takes no form")
        if parts == [""]:
            rows = await _data.queue(self.node, actor, today_in_china())
            body = _views.queue(actor, rows, self.prefix, self.item_name)
            return self.page(200, t("console.queue"), body, actor)
        if parts == ["rectifications"]:
            said = t("console.done", action=t("console.action.rectify"))
            closed = ("done", said) if request.query.get(_DONE) == "rectify" else None
            return await self.records(request, actor, closed)
        if len(parts) == 2 and parts[0] == "case":
            done = request.query.get(_DONE, "")
            said = t("console.done", action=t(f"console.action.{done}"))
            return await self.case(request, actor, parts[1], ("done", said) if done in _FORMS else None)
        home = f'<p><a href="{self.prefix}/">{esc(t("console.queue"))}</a></p>'
        return self.page(404, t("page.not_found"), home, actor)

    async def case(
        self, request: Request, actor: Actor, case_id: str, message: tuple[str, str] | None, status: int = 200
    ) -> Response:
        view = await _data.case_view(self.node, case_id, actor, today_in_china())
        if view is None:
            return self.page(404, t("page.not_found"), f"<p>{esc(t('case.not_found'))}</p>", actor)
        body = _views.case_page(view, actor, self.prefix, self.gate.form_token(request), message)
        return self.page(status, f"{t('console.case')}：{case_id}", body, actor)

    async def take(self, request: Request, actor: Actor, case_id: str, name: str) -> Response:
        """Take one action as the signed-in staff member: back to the case page, which says
        it was done, or shows why not (one line) with the form to correct."""
        form = self.gate.posted_form(request)
        view = await _data.case_view(self.node, case_id, actor, today_in_china())
        if view is None:
            return self.page(404, t("page.not_found"), f"<p>{esc(t('case.not_found'))}</p>", actor)
        try:
            action = _FORMS[name](form, view.item)
        except InvalidInput as exc:  # a form filled in wrong
            return await self.case(request, actor, case_id, _refused(str(exc), exc.code, exc.fields), 400)
        [outcome] = await act(self.node, [case_id], action.event_type, action.payload, actor.name)
        if not outcome.ok:  # the rules or the roster say no
            refused = _refused(outcome.error, outcome.code, outcome.fields)
            return await self.case(request, actor, case_id, refused, 409)
        return redirect(f"{self.prefix}/case/{case_id}?{_DONE}={name}")

    async def records(
        self, request: Request, actor: Actor, message: tuple[str, str] | None, status: int = 200
    ) -> Response:
        records = await _data.open_records(self.node, today_in_china())
        body = _views.rectifications(actor, records, self.prefix, self.gate.form_token(request), message)
        return self.page(status, t("console.rectifications"), body, actor)

    async def rectify_window(self, request: Request, actor: Actor) -> Response:
        """Close a window complaint's record with its outcome, as the signed-in staff member."""
        form = self.gate.posted_form(request)
        try:
            outcome = actions.said(form.get("outcome", ""), "the outcome")
        except InvalidInput as exc:
            return await self.records(request, actor, _refused(str(exc), exc.code, exc.fields), 400)
        try:
            await rectify_window(self.node, form.get("record", ""), outcome, actor.name)
        except CaseworkError as exc:  # closed meanwhile, or the roster says no
            return await self.records(request, actor, _refused(str(exc), exc.code, exc.fields), 409)
        return redirect(f"{self.prefix}/rectifications?{_DONE}=rectify")

    def page(self, status: int, title: str, body: str, actor: Actor) -> Response:
        return self.gate.html(status, title, body, actor.name, self.links)

    def item_name(self, code: str) -> str:
        found = self.node.ledger.catalog.items.get(code)
        return found.name if found else code


def _refused(error: str, code: str, fields: dict[str, object]) -> tuple[str, str]:
    """Why an action was not taken, in the user's language (the English ``error`` where the
    refusal has no code yet)."""
    return "error", t("console.refused", reason=refusal(error, code, fields))


def _correction(form: dict[str, str], item: Item | None) -> Action:
    """The materials ticked (by their place in the item's list) and the one note."""
    listed = item.materials if item else ()
    missing = [m.name for i, m in enumerate(listed) if form.get(f"m{i}")]
    return actions.request_correction(missing, form.get("note", ""))


def _rating(form: dict[str, str], item: Item | None) -> Action:
    score = form.get("score", "").strip()
    return actions.rate(int(score) if score.isdecimal() else 0, form.get("comment", "").strip())


def _decision(form: dict[str, str], item: Item | None) -> Action:
    verdict = form.get("verdict", "")
    return actions.decide(
        verdict == "approve", verdict == "reject", form.get("reason", ""), form.get("department") or None
    )


# Each form of the console, made into its action from the posted fields.
_FORMS: dict[str, Callable[[dict[str, str], Item | None], Action]] = {
    "accept": lambda form, item: actions.accept(),
    "correction": _correction,
    "decide": _decision,
    "escalate": lambda form, item: actions.escalate(actions.said(form.get("opinion", ""), "the opinion")),
    "return": lambda form, item: actions.return_for_rework(form.get("reason", "")),
    "refuse": lambda form, item: actions.refuse(form.get("reason", "")),
    "pause": lambda form, item: actions.pause(form.get("step", ""), form.get("note", "").strip()),
    "resume": lambda form, item: actions.resume(),
    "deliver": lambda form, item: actions.deliver(),
    "rate": _rating,
    "complain": lambda form, item: actions.complain(form.get("text", "")),
    "rectify": lambda form, item: actions.rectify(form.get("outcome", ""), form.get("record") or None),
}
