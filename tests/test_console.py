"""The window staff console against real server processes: a township and the district hub
started with --http, a village's requests synced up, staff on each center's roster signed in
as themselves. Over plain HTTP: who may sign in, CSRF, a window acting outside its items, an
escalation reaching the district's desk; in headless Chromium: the queue with its lights, a
one-time correction notice and a decision, with the history naming the staff member."""

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import pytest

from casework import CaseState, default_catalog, submit
from casework.lifecycle import ACCEPTED
from messages import refusal as refusal_words
from messages import t
from relay.actions import DEPARTMENT_ACTION, allowed
from relay.node import open_node
from relay.queries import list_cases, show_case
from relay.staff import Actor, act, add_member, complain_about_window, serve_items
from relay.web import add_user, list_users
from relay.web._users import log_ref, session_secret
from tests.browser import Browser, artifacts, chromium_or_skip
from tests.netkit import IDS, Network, free_port
from tests.test_http import get, wait_until

pytestmark = pytest.mark.e2e
D, T, V = "500117", "500117001", "500117001005"
PASSWORD = "window pass 1"
WINDOW_1, WINDOW_2, OUTSIDER = "张三", "李四", "王八"  # the outsider has a password, no roster entry
DEPARTMENT, OFFICE = "赵六", "监察员"  # district: on the roster, and the management office
SUPERVISOR = "孙督"  # the township's supervisor (督查): reads every window, takes no casework step
APPLICANT = "钱七"
TODAY = {"SERVICENET_TODAY": "2026-04-01"}  # the township's day: the cases accepted below are late
LATE = (("twp-land-transfer", date(2026, 3, 2)), ("twp-mediation", date(2026, 3, 2)))  # overdue, red
FRESH, DIBAO, PENSION = "twp-mediation", "twp-dibao-apply", "twp-pension-enroll"
BENEFIT = "twp-pension-benefit"  # decided at the district by 人社, not by 民政


@dataclass
class Center:
    net: Network
    township: str  # HOST:PORT of the township's web server
    district: str
    cases: dict[str, str]  # what each case is for (late-0, late-1, fresh, dibao, pension, …): its id


@pytest.fixture(scope="module")
def center(network_made: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Center]:
    net = network_made.copy(tmp_path_factory.mktemp("console"))
    asyncio.run(roster(net))
    added = net.node(
        T, "web-user", "add", "--name", OUTSIDER, "--password-stdin", input=f"{PASSWORD}\n".encode()
    )
    assert t("cli.web_user.not_on_roster", name=OUTSIDER) in added.stderr.decode()
    township, district = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    net.start(D, "--http", district)
    net.start(T, "--http", township, env=TODAY)
    items = [item for item, _ in LATE] + [FRESH, DIBAO, PENSION, DIBAO, FRESH, BENEFIT]
    requests = net.root / "requests.jsonl"
    requests.write_text(
        "".join(
            json.dumps({"item": item, "applicant_name": APPLICANT, "applicant_id": IDS[1], "phone": ""})
            + "\n"
            for item in items
        ),
        encoding="utf-8",
    )
    net.node(V, "import", str(requests))
    net.sync(V)
    cases = asyncio.run(accept_late(net))
    try:
        yield Center(net, township, district, cases)
    finally:
        net.stop_all()
    logs = net.log_text()
    assert "node.http" in logs
    assert IDS[1] not in logs and APPLICANT not in logs and PASSWORD not in logs, "secrets reached a log"
    served = "".join(path.read_text(encoding="utf-8") for path in net.root.glob("*.log"))  # the servers'
    staff_names = (WINDOW_1, WINDOW_2, SUPERVISOR, OUTSIDER, DEPARTMENT, OFFICE)
    assert [name for name in staff_names if name in served] == [], "staff names are personal data too"


async def roster(net: Network) -> None:
    """Window 1 serves the township's mediation, land and 低保 items, window 2 pensions and
    pension benefits; the district's civil affairs window serves 低保. Web accounts for all,
    and for the outsider."""
    async with open_node(net.home(T)) as node:
        await add_member(node, WINDOW_1, "1", "A", "")
        await add_member(node, WINDOW_2, "2", "A", "")
        await add_member(node, SUPERVISOR, "", "supervisor", "")
        await serve_items(node, "1", ["twp-land-transfer", "twp-mediation", DIBAO])
        await serve_items(node, "2", [PENSION, BENEFIT])
    async with open_node(net.home(D)) as node:
        await add_member(node, DEPARTMENT, "民政", "A", "")
        await serve_items(node, "民政", [DIBAO])
    for home, name in ((T, WINDOW_1), (T, WINDOW_2), (T, SUPERVISOR), (D, DEPARTMENT), (D, OFFICE)):
        add_user(net.home(home), name, PASSWORD)


async def accept_late(net: Network) -> dict[str, str]:
    """The cases by what they are for; the late ones accepted by window 1 weeks ago."""
    async with open_node(net.home(T)) as node:
        found = sorted(await list_cases(node), key=lambda c: c["created_at"])
        expected = [item for item, _ in LATE] + [FRESH, DIBAO, PENSION, DIBAO, FRESH, BENEFIT]
        assert [c["item_code"] for c in found] == expected
        for case, (_, day) in zip(found, LATE, strict=False):
            node.ledger.today = lambda day=day: day  # type: ignore[misc]
            [accepted] = await act(node, [case["case_id"]], ACCEPTED, {}, WINDOW_1)
            assert accepted.ok, accepted.error
    names = ("late-0", "late-1", "fresh", "dibao", "pension", "paused", "handed", "benefit")
    return dict(zip(names, (c["case_id"] for c in found), strict=True))


def sign_in(address: str, name: str) -> str:
    """The session cookie of a signed-in web user."""
    answer = get(address, "/login", method="POST", body=urlencode({"name": name, "password": PASSWORD}))
    assert answer.status == 303, answer.status
    return (answer.getheader("Set-Cookie") or "").split(";")[0]


def page(address: str, path: str, cookie: str) -> str:
    answer = get(address, path, cookie)
    assert answer.status == 200, (path, answer.status)
    return str(answer.body.decode())  # type: ignore[attr-defined]


def token(address: str, path: str, cookie: str) -> str:
    found = re.search(r'name="token" value="([0-9a-f]{64})"', page(address, path, cookie))
    assert found, f"no form on {path}"
    return found.group(1)


def post(address: str, path: str, cookie: str, fields: dict[str, str]) -> tuple[int, str]:
    answer = get(address, path, cookie, method="POST", body=urlencode(fields))
    return answer.status, str(answer.body.decode())  # type: ignore[attr-defined]


def refusal(body: str) -> str:
    """The one line a refused action shows."""
    [line] = re.findall(r'<p class="error" role="status">([^<]*)</p>', body)
    return str(line)


def act_on(
    center: Center, cookie: str, case_id: str, action: str, fields: dict[str, str], form_on: str = ""
) -> tuple[int, str]:
    """Post one action's form on the township's console, with the session's token as the case
    page shows it (or the page of case ``form_on``, where this one offers no form)."""
    fields = fields | {"token": token(center.township, f"/case/{form_on or case_id}", cookie)}
    return post(center.township, f"/case/{case_id}/{action}", cookie, fields)


def forms(address: str, path: str, cookie: str) -> list[str]:
    """The action forms a case page offers, by name."""
    return re.findall(r'<form class="action ([a-z]+)"', page(address, path, cookie))


def case_on(center: Center, code: str, case_id: str) -> dict[str, object]:
    async def load() -> dict[str, object]:
        async with open_node(center.net.home(code)) as node:
            return await show_case(node, case_id) or {}

    return asyncio.run(load())


def test_only_staff_on_the_roster_sign_in(center: Center) -> None:
    """A web user whose name is not on the roster gets no session; one on it gets the queue of
    their own window only."""
    refused = get(
        center.township, "/login", method="POST", body=urlencode({"name": OUTSIDER, "password": PASSWORD})
    )
    assert refused.status == 401 and refused.getheader("Set-Cookie") is None
    outsider = log_ref(session_secret(center.net.home(T)), OUTSIDER)
    assert {"name": OUTSIDER, "log_ref": outsider} in [  # web-user list --json maps it back
        {"name": user["name"], "log_ref": user["log_ref"]} for user in list_users(center.net.home(T))
    ]
    logged = "".join(path.read_text(encoding="utf-8") for path in center.net.root.glob("*.log"))
    lines = [json.loads(line) for line in logged.splitlines() if line.startswith("{")]
    assert {"event": "web.login.refused", "user_ref": outsider, "reason": "not_allowed"} in [
        {key: line.get(key) for key in ("event", "user_ref", "reason")} for line in lines
    ]
    queue = page(center.township, "/", sign_in(center.township, WINDOW_2))
    assert center.cases["pension"] in queue and center.cases["fresh"] not in queue
    assert "李四 · 窗口：2 · A岗" in queue


def test_actions_need_this_sites_form_and_the_sessions_token(center: Center) -> None:
    """No token, another session's token, or a form posted from another site: 403, nothing done."""
    case_id = center.cases["pension"]
    mine, other = sign_in(center.township, WINDOW_2), sign_in(center.township, WINDOW_1)
    theirs = token(center.township, f"/case/{center.cases['fresh']}", other)
    target = f"/case/{case_id}/accept"
    assert post(center.township, target, mine, {})[0] == 403
    assert post(center.township, target, mine, {"token": theirs})[0] == 403
    mine_token = token(center.township, f"/case/{case_id}", mine)
    answer = get(
        center.township,
        target,
        mine,
        method="POST",
        body=urlencode({"token": mine_token}),
        headers={"Origin": "http://evil.example"},
    )
    assert answer.status == 403
    assert case_on(center, T, case_id)["status"] == "submitted"


def test_a_window_acting_outside_its_items_is_refused_in_one_line(center: Center) -> None:
    """Window 1 sees no action on a pension case and, posting one anyway, is told why in one
    line; the case is untouched."""
    cookie = sign_in(center.township, WINDOW_1)
    case_id = center.cases["pension"]
    shown = page(center.township, f"/case/{case_id}", cookie)
    assert "此案件现在没有你可以办理的操作" in shown and '<form class="action' not in shown
    status, body = post(
        center.township,
        f"/case/{case_id}/accept",
        cookie,
        {"token": token(center.township, f"/case/{center.cases['fresh']}", cookie)},
    )
    assert status == 409
    assert refusal(body) == "未能办理：1号窗口不办理事项 twp-pension-enroll：请交由办理该事项的窗口"
    assert case_on(center, T, case_id)["status"] == "submitted"


@pytest.fixture(scope="module")
def escalated(center: Center) -> str:
    """Window 1 accepts a 低保 request and escalates it with an opinion; window 2 does the same
    with a pension benefit, another district department's; both reach the district. The
    低保 case's id."""
    for window, case_id in ((WINDOW_1, center.cases["dibao"]), (WINDOW_2, center.cases["benefit"])):
        cookie = sign_in(center.township, window)
        for action, fields in (("accept", {}), ("escalate", {"opinion": "入户调查属实，建议批准"})):
            fields["token"] = token(center.township, f"/case/{case_id}", cookie)
            status, _ = post(center.township, f"/case/{case_id}/{action}", cookie, fields)
            assert status == 303, action
        wait_until(lambda case_id=case_id: case_on(center, D, case_id).get("status") == "escalated")
    return center.cases["dibao"]


def test_an_escalated_case_reaches_the_district_desk(center: Center, escalated: str) -> None:
    """The district's civil affairs staff find the escalated 低保 case on their desk, not 人社's
    pension benefit, whose page and applicant they cannot open by its address either; they
    accept theirs after the township's window 1; the management office has no desk."""
    case_id = escalated
    desk = sign_in(center.district, DEPARTMENT)
    queue = page(center.district, "/desk/", desk)
    assert case_id in queue and center.cases["benefit"] not in queue
    others = get(center.district, f"/desk/case/{center.cases['benefit']}", desk)
    assert others.status == 404 and APPLICANT not in others.body.decode()  # type: ignore[attr-defined]
    taken = {"token": token(center.district, f"/desk/case/{case_id}", desk)}
    assert post(center.district, f"/desk/case/{center.cases['benefit']}/accept", desk, taken)[0] == 404
    assert case_on(center, D, center.cases["benefit"])["status"] == "escalated"
    fields = {"token": token(center.district, f"/desk/case/{case_id}", desk)}
    assert post(center.district, f"/desk/case/{case_id}/accept", desk, fields)[0] == 303
    events = case_on(center, D, case_id)["events"]
    assert [
        e["payload"].get("staff") for e in events if e["type"] in ("case.escalated", "case.accepted")
    ] == [WINDOW_1, WINDOW_1, DEPARTMENT]  # type: ignore[union-attr]
    office = sign_in(center.district, OFFICE)
    assert get(center.district, "/desk/", office).status == 403
    assert get(center.district, "/", office).status == 200


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_or_skip()


def test_browser_district_desk(chromium: str, center: Center, escalated: str, tmp_path: Path) -> None:
    """The district's department staff get the same console under /desk/, beside the dashboard."""
    folder = artifacts()
    browser = Browser(chromium, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        browser.goto(f"http://{center.district}/desk/")
        browser.submit(
            f"document.getElementById('name').value = {DEPARTMENT!r};"
            f"document.getElementById('password').value = {PASSWORD!r};"
            "document.querySelector('form.login').submit();"
        )
        assert browser.evaluate("location.pathname") == "/desk/"
        rows = browser.evaluate(
            "[...document.querySelectorAll('table.queue tbody tr')].map(r => r.cells[0].textContent)"
        )
        assert rows == [escalated]
        browser.screenshot(folder / "console-district-queue.png")
        browser.goto(f"http://{center.district}/desk/case/{escalated}")
        text = browser.evaluate("document.body.innerText")
        assert "入户调查属实，建议批准" in text and WINDOW_1 in text
        browser.screenshot(folder / "console-district-case.png")
    finally:
        browser.close()


def test_browser_correction_notice_then_decision(chromium: str, center: Center, tmp_path: Path) -> None:
    """Headless Chromium: window 1 signs in, sees its queue with the late cases' lights, sends
    one correction notice naming two materials, accepts and approves; every step is in the
    history under their name. Screenshots of each screen are kept as artifacts."""
    folder, case_id = artifacts(), center.cases["fresh"]
    browser = Browser(chromium, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        browser.goto(f"http://{center.township}/")
        assert browser.evaluate("location.pathname") == "/login"
        assert browser.evaluate("document.querySelector('h1').textContent") == "窗口工作人员登录"
        browser.screenshot(folder / "console-login.png")
        browser.submit(
            f"document.getElementById('name').value = {WINDOW_1!r};"
            f"document.getElementById('password').value = {PASSWORD!r};"
            "document.querySelector('form.login').submit();"
        )
        assert browser.evaluate("document.querySelector('h1').textContent") == "待办案件"
        lights = browser.evaluate(
            "Object.fromEntries([...document.querySelectorAll('table.queue tbody tr')]"
            ".map(r => [r.cells[0].textContent, r.cells[7].querySelector('.badge').className]))"
        )
        assert lights[center.cases["late-0"]] == "badge l-overdue"
        assert lights[center.cases["late-1"]] == "badge l-red"
        assert lights[case_id] == "badge l-not_accepted" and center.cases["pension"] not in lights
        browser.screenshot(folder / "console-queue.png")
        browser.goto(f"http://{center.township}/case/{case_id}")
        browser.screenshot(folder / "console-case.png")
        browser.submit(
            "const f = document.querySelector('form.correction');"
            "f.querySelectorAll('[type=checkbox]').forEach((box, i) => { box.checked = i !== 1; });"
            "f.querySelector('[name=note]').value = '身份证复印件不清晰，请一并补交';"
            "f.submit();"
        )
        assert browser.evaluate("document.querySelector('.done').textContent") == "已办理：一次性告知补正"
        missing = browser.evaluate("[...document.querySelectorAll('table.materials td.l-yellow')].length")
        assert missing == 2
        browser.screenshot(folder / "console-correction.png")
        browser.submit("document.querySelector('form.accept').submit();")
        browser.submit(
            "const d = document.querySelector('form.decide');"
            "d.querySelector('[value=approve]').checked = true;"
            "d.querySelector('[name=reason]').value = '材料齐全，符合条件'; d.submit();"
        )
        assert browser.evaluate("document.querySelector('.done').textContent") == "已办理：作出决定"
        assert browser.evaluate("document.querySelectorAll('table.materials td.l-yellow').length") == 0
        history = browser.evaluate(
            "[...document.querySelectorAll('table.events tbody tr')]"
            ".map(r => [r.cells[1].textContent, r.cells[2].textContent])"
        )
        assert history[-3:] == [["一次性告知补正", WINDOW_1], ["受理", WINDOW_1], ["作出决定", WINDOW_1]]
        browser.screenshot(folder / "console-decided.png")
    finally:
        browser.close()
    found = case_on(center, T, case_id)
    assert found["status"] == "approved"
    [notice] = [e for e in found["events"] if e["type"] == "case.correction_requested"]  # type: ignore[union-attr]
    listed = default_catalog().items[FRESH].materials
    assert notice["payload"]["missing"] == [listed[0].name, listed[2].name]
    assert notice["payload"]["staff"] == WINDOW_1 and notice["payload"]["window"] == "1"


def test_the_console_offers_only_what_the_rules_and_the_roster_allow() -> None:
    """The forms a case shows: per status, tier, item and role, as relay.staff.act would take them."""
    items = default_catalog().items

    def state(code: str, status: str, owner: str = T) -> CaseState:
        joint = list(items[code].joint_departments)
        fresh = submit(
            "c",
            {
                "village_code": V,
                "township_code": T,
                "item_code": code,
                "decide_level": items[code].decide_level,
                "joint_departments": joint,
            },
        )
        return replace(fresh, status=status, owner=owner)

    window = Actor(WINDOW_1, "1", "A", items=(FRESH, DIBAO))
    accepted, paused = state(DIBAO, "accepted"), replace(state(DIBAO, "accepted"), paused_step="公示")
    complain = "complain"  # the owner takes a complaint at any time
    assert allowed(state(FRESH, "submitted"), items[FRESH], window, T) == [
        "accept",
        "correction",
        "refuse",
        complain,
    ]
    assert allowed(state(FRESH, "accepted"), items[FRESH], window, T) == ["correction", "decide", complain]
    assert allowed(accepted, items[DIBAO], window, T) == ["correction", "escalate", "pause", complain]
    assert allowed(paused, items[DIBAO], window, T) == ["resume", complain]
    handed = ["deliver", "rate", complain]
    assert allowed(state(FRESH, "approved"), items[FRESH], window, T, ["r1"]) == [*handed, "rectify"]
    assert allowed(state(DIBAO, "approved", D), items[DIBAO], window, T) == handed  # sent up to the owner
    assert allowed(state(DIBAO, "approved", D), items[DIBAO], window, "500117002") == []  # not its township
    supervisor = Actor(SUPERVISOR, "", "supervisor")
    assert allowed(state(FRESH, "submitted"), items[FRESH], supervisor, T, ["r1"]) == [complain, "rectify"]
    assert allowed(state(FRESH, "accepted"), items[FRESH], supervisor, T) == [complain]
    assert allowed(state(PENSION, "submitted"), items[PENSION], window, T) == []  # not its item
    assert allowed(state(FRESH, "accepted"), items[FRESH], window, D) == []  # not this node's case
    chief = Actor("孙八", "9", "chief", items[FRESH].department)
    assert "decide" in allowed(state(FRESH, "submitted"), items[FRESH], chief, T)  # on the spot
    medical = "twp-medical-aid"
    [joint] = items[medical].joint_departments
    civil = Actor("周九", "民政", "chief", joint)
    at_district = state(medical, "accepted", D)
    assert allowed(at_district, items[medical], civil, D) == [f"decide{DEPARTMENT_ACTION}{joint}"]
    assert allowed(state(DIBAO, "escalated", D), items[DIBAO], Actor(DEPARTMENT), D) == [
        "accept",
        "return",
        complain,
    ]


def test_pause_and_resume_at_the_window(center: Center) -> None:
    """Window 1 stops the clock for 公示, the only step the item keeps off it (another step,
    posted anyway, is refused in Chinese), and restarts it; the forms follow the case."""
    cookie, case_id = sign_in(center.township, WINDOW_1), center.cases["paused"]
    assert act_on(center, cookie, case_id, "accept", {})[0] == 303
    assert "pause" in forms(center.township, f"/case/{case_id}", cookie)
    status, body = act_on(center, cookie, case_id, "pause", {"step": "专家评审"})
    assert status == 409 and refusal(body) == "未能办理：此事项不计入办理时限的环节只有：公示"
    assert act_on(center, cookie, case_id, "pause", {"step": "公示", "note": "公示七天"})[0] == 303
    assert case_on(center, T, case_id)["paused_step"] == "公示"
    offered = forms(center.township, f"/case/{case_id}", cookie)
    assert "resume" in offered and "pause" not in offered and "escalate" not in offered
    assert act_on(center, cookie, case_id, "resume", {})[0] == 303
    assert case_on(center, T, case_id)["paused_step"] is None


@pytest.fixture(scope="module")
def bad_review(center: Center) -> str:
    """Window 1 decides a case, hands the result over and records the applicant's rating of 2
    (a bad review, which opens a rectification record): all through the console."""
    cookie, case_id = sign_in(center.township, WINDOW_1), center.cases["handed"]
    assert act_on(center, cookie, case_id, "accept", {})[0] == 303
    assert act_on(center, cookie, case_id, "decide", {"verdict": "approve", "reason": "符合条件"})[0] == 303
    assert "deliver" in forms(center.township, f"/case/{case_id}", cookie)
    assert act_on(center, cookie, case_id, "deliver", {})[0] == 303
    status, body = act_on(center, cookie, case_id, "rate", {"score": "9"})
    assert status == 400 and refusal(body) == "未能办理：请选择 1（非常不满意）到 5（非常满意）的评价"
    assert act_on(center, cookie, case_id, "rate", {"score": "2", "comment": "等太久"})[0] == 303
    found = case_on(center, T, case_id)
    [rating] = [e["payload"] for e in found["events"] if e["type"] == "case.rated"]  # type: ignore[union-attr]
    assert found["status"] == "delivered" and rating["score"] == 2 and rating["staff"] == WINDOW_1
    return case_id


def test_a_supervisor_reads_every_window_but_handles_no_case(center: Center, bad_review: str) -> None:
    """The supervisor's queue holds both windows' cases; on a case they are offered no casework
    step and one posted anyway is refused in one Chinese line; they record the rectification
    of the bad review, under their own name."""
    cookie = sign_in(center.township, SUPERVISOR)
    queue = page(center.township, "/", cookie)
    assert center.cases["pension"] in queue and center.cases["late-0"] in queue and "孙督 · 督查" in queue
    assert "<td>500117001:1</td>" in queue  # each case's window: the late ones are window 1's
    assert forms(center.township, f"/case/{center.cases['pension']}", cookie) == ["complain"]
    for action, fields in (("accept", {}), ("decide", {"verdict": "approve", "reason": "可以"})):
        status, body = act_on(center, cookie, center.cases["pension"], action, fields, form_on=bad_review)
        assert status == 409 and refusal(body) == "未能办理：督查人员跟踪投诉与整改，不办理案件"
    assert case_on(center, T, center.cases["pension"])["status"] == "submitted"
    listed = page(center.township, "/rectifications", cookie)
    assert f'href="/case/{bad_review}"' in listed and "差评" in listed
    assert forms(center.township, f"/case/{bad_review}", cookie) == ["complain", "rectify"]
    shown = page(center.township, f"/case/{bad_review}", cookie)
    [(record, said)] = re.findall(r'<option value="([^"]+)">([^<]+)</option>', shown)
    assert re.fullmatch(r"差评（\d{4}-\d\d-\d\d前整改）", said), said
    done = act_on(center, cookie, bad_review, "rectify", {"record": record, "outcome": "已回访，改进叫号"})
    assert done[0] == 303
    assert "没有待整改的记录" in page(center.township, "/rectifications", cookie)
    history = page(center.township, f"/case/{bad_review}", cookie)  # each event in words
    for said in (
        t("history.approved") + t("history.parts") + t("history.reason", text="符合条件"),
        t("history.score", score=2) + t("history.parts") + t("history.comment", text="等太久"),
        t("history.outcome", text="已回访，改进叫号") + t("history.parts"),
    ):
        assert said in history, said
    assert "command_event_id" not in history and "sha256" not in history
    [rectified] = [e for e in case_on(center, T, bad_review)["events"] if e["type"] == "case.rectified"]  # type: ignore[union-attr]
    assert rectified["payload"]["staff"] == SUPERVISOR and rectified["payload"]["of"] == record


def test_a_supervisor_closes_a_window_complaint_on_the_console(center: Center) -> None:
    """A complaint about window 1 is listed with its form; the supervisor records what was done,
    once: closing it again is refused in one Chinese line."""

    async def complain() -> str:
        async with open_node(center.net.home(T)) as node:
            return await complain_about_window(node, "1", "午间无人", SUPERVISOR)

    record, cookie = asyncio.run(complain()), sign_in(center.township, SUPERVISOR)
    listed = page(center.township, "/rectifications", cookie)
    assert f'name="record" value="{record}"' in listed and "窗口投诉" in listed
    fields = {"token": token(center.township, "/rectifications", cookie), "record": record}
    status, body = post(center.township, "/rectifications", cookie, fields | {"outcome": " "})
    assert status == 400 and refusal(body) == "未能办理：请写明整改结果"
    assert post(center.township, "/rectifications", cookie, fields | {"outcome": "已调整午间值班"})[0] == 303
    status, body = post(center.township, "/rectifications", cookie, fields | {"outcome": "再次"})
    assert status == 409 and refusal(body) == f"未能办理：{record} 不是待整改的记录（可能已经办结）"


def test_a_refusal_is_worded_in_the_users_language(monkeypatch: pytest.MonkeyPatch) -> None:
    """By its code, with the status and the event it names worded too; without a code (a
    refusal no edge words yet), the English line as it is."""
    fields: dict[str, object] = {"status": "approved", "event": "case.accepted"}
    assert refusal_words("a case that is approved ...", "wrong_status", fields) == "已批准的案件不能受理"
    monkeypatch.setenv("SERVICENET_LANG", "en")
    english = refusal_words("a case that is approved ...", "wrong_status", fields)
    assert english == f"a case that is {t('status.approved')} cannot take: {t('event.case.accepted')}"
    assert "approved" in english.lower()
    assert refusal_words("the node is gone", "", {}) == "the node is gone"
