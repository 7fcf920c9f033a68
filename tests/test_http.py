"""/metrics on every node and the district's dashboard, against real server processes: a
district and a township started with --http, cases taken in a village and accepted at the
township on dates that put them past or near their limits at the district's "today"."""

import http.client
import os
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families

from messages import t
from relay import metrics
from relay.web import event_note
from relay.web._gate import _safe_next
from tests.browser import Browser, artifacts, chromium_or_skip
from tests.netkit import IDS, Network, free_port

pytestmark = pytest.mark.e2e
D, T, V = "500117", "500117001", "500117001005"
USER, PASSWORD = "监察员", "correct horse 1"
APPLICANT = "王五"
TODAY = {"SERVICENET_TODAY": "2026-04-01"}  # the district's day: the cases below are late by then
# (item, day the township accepts): overdue, red, and one that is close to its committed limit
ACCEPTED = (
    ("twp-land-transfer", "2026-03-02"),
    ("twp-mediation", "2026-03-02"),
    ("twp-mediation", "2026-03-13"),
)


@dataclass
class Hub:
    net: Network
    district: str  # HOST:PORT of the district's web server
    township: str
    case_ids: list[str]
    lights: dict[str, str]  # case id: light, as `district-node supervise` reports it


@pytest.fixture(scope="module")
def hub(network_made: Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    net = network_made.copy(tmp_path_factory.mktemp("http"))
    net.node(D, "web-user", "add", "--name", USER, "--password-stdin", input=f"{PASSWORD}\n".encode())
    district, township = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    net.start(D, "--http", district, env=TODAY)
    net.start(T, "--http", township)
    case_ids = [intake(net, item) for item, _ in ACCEPTED] + [intake(net, "twp-pension-enroll")]
    net.sync(V)
    for case_id, (_, day) in zip(case_ids, ACCEPTED, strict=False):
        net.node(T, "accept", case_id, env={"SERVICENET_TODAY": day})
    wait_until(lambda: sum(c["status"] == "accepted" for c in net.cases(D)) == len(ACCEPTED))
    report = net.node(D, "supervise", "--json", env=TODAY)
    try:
        yield Hub(net, district, township, case_ids, {w["case_id"]: w["light"] for w in report["warnings"]})
    finally:
        net.stop_all()
    logs = net.log_text()
    assert "node.http" in logs
    assert IDS[1] not in logs and APPLICANT not in logs and PASSWORD not in logs, "secrets reached a log"


def intake(net: Network, item: str) -> str:
    taken = net.node(
        V, "intake", "--item", item, "--applicant-name", APPLICANT, "--applicant-id", IDS[1], "--json"
    )
    return str(taken["case_id"])


def wait_until(condition: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("the network did not get there in time")
        time.sleep(0.2)


def get(
    address: str,
    path: str,
    cookie: str = "",
    method: str = "GET",
    body: str = "",
    headers: dict[str, str] | None = None,
) -> http.client.HTTPResponse:
    """One request; the response is read whole (the server closes every connection)."""
    connection = http.client.HTTPConnection(address, timeout=10)
    headers = dict(headers or {}) | ({"Cookie": cookie} if cookie else {})
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, body=body.encode() or None, headers=headers)
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    connection.close()
    return response


def login(address: str, password: str = PASSWORD) -> http.client.HTTPResponse:
    return get(
        address, "/login", method="POST", body=urlencode({"name": USER, "password": password, "next": "/"})
    )


def session(address: str) -> str:
    cookie = login(address).getheader("Set-Cookie") or ""
    return cookie.split(";")[0]


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics parsed by the Prometheus client's own parser: {(name, labels): value}."""
    response = get(address, "/metrics")
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    text = response.body.decode()  # type: ignore[attr-defined]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_show_backlog_cases_and_batches_on_both_tiers(hub: Hub) -> None:
    """/metrics parses as Prometheus text on the district and the township and shows the
    backlog, the cases by status and the batches that carried them, without a login."""
    district = scrape(hub.district)
    assert district[("servicenet_cases", (("status", "accepted"),))] == len(ACCEPTED)
    assert district[("servicenet_cases", (("status", "submitted"),))] == 1
    assert district[("servicenet_outbox_backlog", ())] == 0
    assert district[("servicenet_relay_batches_total", (("direction", "received"),))] >= 1
    assert district[("servicenet_relay_events_total", (("direction", "received"),))] >= len(hub.case_ids)
    assert ("servicenet_peer_backlog", (("node", T), ("role", "township"))) in district
    assert district[("servicenet_node_info", (("code", D), ("role", "district"), ("version", "0.1.0")))] == 1
    township = scrape(hub.township)
    assert township[("servicenet_outbox_backlog", ())] == 0
    assert township[("servicenet_relay_batches_total", (("direction", "sent"),))] >= 1
    assert township[("servicenet_cases", (("status", "accepted"),))] == len(ACCEPTED)
    assert township[("servicenet_last_push_age_seconds", ())] < 120
    assert ("servicenet_relay_retries_total", (("loop", "push"),)) in township
    assert get(hub.township, "/").status == 303  # the staff console: sign in first


def test_dashboard_refuses_without_login_and_wrong_password(hub: Hub) -> None:
    """Every page but the login redirects to it; a wrong password or a forged cookie gets nothing."""
    for path in ("/", f"/township/{T}", f"/case/{hub.case_ids[0]}"):
        refused = get(hub.district, path)
        assert refused.status == 303 and refused.getheader("Location", "").startswith("/login?next=")
    wrong = login(hub.district, "not the password")
    assert wrong.status == 401 and wrong.getheader("Set-Cookie") is None
    assert "用户名或密码不正确" in wrong.body.decode()  # type: ignore[attr-defined]
    label, expires, _ = session(hub.district).split("=", 1)[1].split(".")
    forged = f"servicenet_session={label}.{int(expires) + 3600}.{'0' * 64}"
    assert get(hub.district, "/", forged).status == 303
    assert get(hub.district, "/", session(hub.district), method="POST").status == 405  # read-only


def test_dashboard_shows_townships_warnings_and_a_case(hub: Hub) -> None:
    """After login: every township in a row, the late cases in their colours, the drill-down
    to the township, the item and the case (name shown there only, ID number masked)."""
    cookie = session(hub.district)
    overview = get(hub.district, "/", cookie)
    assert overview.status == 200
    page = overview.body.decode()  # type: ignore[attr-defined]
    assert f'href="/township/{T}">合阳城街道</a>' in page and "钓鱼城街道" in page
    assert page.count('<a href="/township/') >= 30
    assert {"overdue", "red"} <= set(hub.lights.values())
    for case_id, light in hub.lights.items():
        assert f'href="/case/{case_id}"' in page
        assert f'<span class="badge l-{light}">' in page
    assert APPLICANT not in page and IDS[1] not in page
    township = get(hub.district, f"/township/{T}", cookie).body.decode()  # type: ignore[attr-defined]
    assert "村（社区）服务点" in township and "s-active_day" in township
    assert get(hub.district, "/item/twp-mediation", cookie).status == 200
    assert get(hub.district, "/township/500117999", cookie).status == 404
    case = get(hub.district, f"/case/{hub.case_ids[0]}", cookie).body.decode()  # type: ignore[attr-defined]
    assert APPLICANT in case and IDS[1] not in case and f"{IDS[1][:6]}********{IDS[1][-4:]}" in case
    assert "受理" in case and f"badge l-{hub.lights[hub.case_ids[0]]}" in case
    assert t("history.missing", names="") in case and "item_code" not in case  # the history in words


def test_an_event_is_shown_in_words_without_checksums_ids_or_personal_data() -> None:
    """A case history's note (relay.web.event_note): the materials by name, the missing ones,
    the decision and its reason, who acted where asked; nothing else of the payload."""
    submitted = {
        "item_code": "twp-x",
        "applicant": {"name": APPLICANT, "id_number": IDS[1], "phone": "13800000000"},
        "fields": {"地址": "某村1号"},
        "materials": [{"name": "身份证", "sha256": "ab" * 32, "size": 9}],
        "missing_materials": ["户口簿", "照片"],
        "staff": "赵一",
    }
    listed = t("history.separator").join(["户口簿", "照片"])
    said = t("history.materials", names="身份证") + t("history.parts") + t("history.missing", names=listed)
    assert event_note(submitted) == said
    decided = {"approved": False, "reason": " 不符合条件 ", "staff": "赵一", "window": "2", "role": "A"}
    assert event_note(decided, who=True) == t("history.parts").join(
        [
            t("history.rejected"),
            t("history.reason", text="不符合条件"),
            t("history.by_window", staff="赵一", window="2"),
        ]
    )
    assert event_note({"reason": "长" * 500}).endswith("…") and len(event_note({"reason": "长" * 500})) == 300


def test_logout_ends_the_session(hub: Hub) -> None:
    """After logout the same cookie no longer opens a page."""
    cookie = session(hub.district)
    assert get(hub.district, "/", cookie).status == 200
    out = get(hub.district, "/logout", cookie, method="POST")
    assert out.status == 303 and "Max-Age=0" in (out.getheader("Set-Cookie") or "")
    assert get(hub.district, "/", cookie).status == 303


def test_web_users_file_is_private_and_short_passwords_refused(hub: Hub) -> None:
    """web-users.json and the session secret are readable by their owner only; a short
    password is refused in one line."""
    home = hub.net.home(D)
    for name in ("web-users.json", "web-secret"):
        assert stat.S_IMODE(os.stat(home / name).st_mode) == 0o600
    short = hub.net.node(
        D, "web-user", "add", "--name", "x", "--password-stdin", input=b"short\n", check=False
    )
    said = t("cli.error", message=t("refusal.short_password", n=8))
    assert short.returncode == 2 and short.stderr.decode() == said + "\n"
    assert PASSWORD not in (home / "web-users.json").read_text(encoding="utf-8")


def test_bad_requests_are_refused_and_the_node_keeps_serving(hub: Hub) -> None:
    """Garbage, an oversized head, an oversized body and an unknown method each get a 4xx or a
    closed connection; /metrics still answers after them."""
    host, port = hub.district.split(":")
    sent = (
        b"garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n",
        b"POST /login HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        b"DELETE / HTTP/1.1\r\n\r\n",
        b"GET /%ff HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    for request in sent:
        assert raw(host, int(port), request) in (None, 400, 405, 413, 431, 501), request[:30]
    with socket.create_connection((host, int(port)), timeout=10):
        pass  # connected and said nothing
    assert get(hub.district, "/metrics").status == 200


def test_metrics_text_escapes_label_values_and_help() -> None:
    """Quotes, backslashes and line breaks in labels and help survive the Prometheus parser."""
    odd = 'a "quoted" \\ value\nsecond line'
    family = metrics.Family("servicenet_test", "gauge", "help with \\ and\nbreak", [((("x", odd),), 1.5)])
    nan = metrics.Family("servicenet_never", "gauge", "never", [((), float("nan"))])
    [parsed, never] = text_string_to_metric_families(metrics.render([family, nan]))
    assert parsed.samples[0].labels == {"x": odd} and parsed.samples[0].value == 1.5
    assert parsed.documentation == "help with \\ and\nbreak"
    assert never.samples[0].value != never.samples[0].value  # NaN


def test_login_goes_back_only_to_a_path_on_this_server() -> None:
    """The page a login returns to is a local path: never another site or a header break."""
    for given in ("//evil.example/", "https://evil.example/", "/\\evil", "/a\r\nSet-Cookie: x", ""):
        assert _safe_next(given) == "/"
    assert _safe_next("/township/500117001?x=1") == "/township/500117001?x=1"


def raw(host: str, port: int, request: bytes) -> int | None:
    """Send bytes as they are; the status answered, or None if the server just closed."""
    with socket.create_connection((host, port), timeout=10) as conn:
        try:
            conn.sendall(request)
            answer = conn.recv(100)
        except ConnectionResetError:
            return None
    return int(answer[9:12]) if answer.startswith(b"HTTP/1.1 ") else None


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser (checked before the network starts, so a skip costs nothing)."""
    return chromium_or_skip()


def test_browser_renders_the_overview_with_real_data(chromium: str, hub: Hub, tmp_path: Path) -> None:
    """Headless Chromium logs in through the form and renders the overview: Chinese headings,
    the townships, the warnings; the screenshot is kept as an artifact."""
    browser = Browser(chromium, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        browser.goto(f"http://{hub.district}/")
        assert browser.evaluate("location.pathname") == "/login"
        browser.submit(
            f"document.getElementById('name').value = {USER!r};"
            f"document.getElementById('password').value = {PASSWORD!r};"
            "document.querySelector('form.login').submit();"
        )
        assert browser.evaluate("location.pathname") == "/"
        headings = browser.evaluate("[...document.querySelectorAll('h1, h2')].map(h => h.textContent)")
        assert headings[:3] == ["便民服务网络总览", "网络覆盖", "各乡镇（街道）覆盖与积压"]
        rows = browser.evaluate("[...document.querySelectorAll('table.townships tbody tr')].length")
        assert rows == 30
        text = browser.evaluate("document.body.innerText")
        assert "合阳城街道" in text and "钓鱼城街道" in text and "红灯预警" in text
        folder = artifacts()
        browser.screenshot(folder / "dashboard-overview.png")
        (folder / "dashboard-overview.html").write_text(
            browser.evaluate("document.documentElement.outerHTML"), encoding="utf-8"
        )
        assert (folder / "dashboard-overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        for name, path, heading in (
            ("township", f"/township/{T}", "乡镇（街道）详情：合阳城街道（500117001）"),
            ("case", f"/case/{hub.case_ids[1]}", f"案件详情：{hub.case_ids[1]}"),
        ):
            browser.goto(f"http://{hub.district}{path}")
            assert browser.evaluate("document.querySelector('h1').textContent") == heading
            browser.screenshot(folder / f"dashboard-{name}.png")
    finally:
        browser.close()
