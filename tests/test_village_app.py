"""The village agent's intake app against a real ``village-agent run --ui --open`` whose
upstream is down (its township's address has nothing listening; the browser --open starts is a
stand-in that records the address): headless Chromium finds an item, reads its guide, files a
request with a scan and the mandate, sees the missing material listed, prints the receipt and
opens the case list; screenshots go to tests/artifacts/village-*. Plain HTTP requests check
what the app refuses (forged forms, bad uploads, wrong ID numbers) and, once the township is
up, the follow-up of a case (correction, delivery, rating)."""

import hashlib
import http.client
import os
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from messages import t
from relay.multipart import MultipartError, parse
from tests.browser import Browser, artifacts, chromium_or_skip
from tests.netkit import IDS, Network, free_port

pytestmark = pytest.mark.e2e
T, V = "500117001", "500117001005"
ITEM = "twp-pension-enroll"  # two required materials: 居民身份证或户口簿, 城乡居民基本养老保险参保登记表
APPLICANT, PHONE = "赵六", "13900001111"
WRONG_ID = IDS[0][:-1] + ("1" if IDS[0][-1] != "1" else "2")  # the check digit is off


@dataclass
class App:
    net: Network
    address: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    root = tmp_path_factory.mktemp("village-app")
    net = Network(root)
    net.cli("district", "500117", "enroll", "--code", T, "--out", str(root / "township.bundle"))
    net.role[T], net.ports[T] = "township", free_port()  # enrolled, never started: the upstream is down
    net.add(V)
    address = f"127.0.0.1:{free_port()}"
    log, opened = root / "village.log", root / "opened.txt"
    os.environ["BROWSER"] = f"sh -c 'echo \"$0\" > {opened}' %s"  # what --open runs: record the address
    try:
        process = net.spawn(V, "run", "--ui", address, "--open", stdout=log, stderr=log)
    finally:
        del os.environ["BROWSER"]
    try:
        wait_for(address)
        until_file(opened)
        assert opened.read_text().strip() == f"http://{address}/"
        yield App(net, address, process, log)
    finally:
        process.terminate()
        process.wait(timeout=30)
        net.stop_all()  # the township, once a test started it
    text = log.read_text(encoding="utf-8")
    assert "node.http" in text
    assert APPLICANT not in text and IDS[0] not in text and PHONE not in text, "personal data in the log"


def wait_for(address: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if request(address, "GET", "/")[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the intake app did not answer on {address}")
        time.sleep(0.1)


def until_file(path: Path, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().strip()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never written")
        time.sleep(0.05)


def request(
    address: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    connection = http.client.HTTPConnection(address, timeout=10)
    connection.request(method, path, body=body or None, headers=headers or {})
    response = connection.getresponse()
    answer = (response.status, response.read().decode("utf-8", "replace"), dict(response.getheaders()))
    connection.close()
    return answer


def multipart(fields: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = "----servicenet-test-boundary"
    chunks = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    chunks += [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="scan.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data in files.items()
    ]
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def token(address: str) -> str:
    status, page, _ = request(address, "GET", f"/item/{ITEM}/take")
    assert status == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def post_take(
    address: str, fields: dict[str, str], files: dict[str, bytes], origin: str = ""
) -> tuple[int, str]:
    body, content_type = multipart(fields, files)
    headers = {"Content-Type": content_type} | ({"Origin": origin} if origin else {})
    status, page, _ = request(address, "POST", f"/item/{ITEM}/take", body, headers)
    return status, page


def no_case_yet(app: App) -> bool:
    status, page, _ = request(app.address, "GET", "/cases")
    return status == 200 and "还没有案件" in page


def test_forged_and_broken_forms_are_refused_and_nothing_is_recorded(app: App) -> None:
    """No token, a wrong token or another site's origin: 403. A broken multipart body: 400.
    A body over the upload limit, or over the small limit on a path without files: 413. A
    request to a name that is not the loopback (DNS rebinding): 421. The app serves on."""
    good = {"csrf": token(app.address), "name": APPLICANT, "id_number": IDS[0], "mandate": "in_person"}
    scan = {"m0": b"\xff\xd8scan"}
    assert post_take(app.address, good | {"csrf": ""}, scan)[0] == 403
    assert post_take(app.address, good | {"csrf": "x" * 43}, scan)[0] == 403
    assert post_take(app.address, good | {"csrf": "令牌"}, scan)[0] == 403
    assert post_take(app.address, good, scan, origin="http://evil.example")[0] == 403
    broken = {"Content-Type": "multipart/form-data; boundary=nothere"}
    assert request(app.address, "POST", f"/item/{ITEM}/take", b"--else\r\n\r\nx", broken)[0] == 400
    huge = {"Content-Type": broken["Content-Type"], "Content-Length": str(33 * 1024 * 1024)}
    assert raw_status(app.address, f"/item/{ITEM}/take", huge) == 413
    assert raw_status(app.address, "/case/x/deliver", {"Content-Length": str(64 * 1024)}) == 413
    assert request(app.address, "GET", "/", headers={"Host": f"evil.example:{app.address[-5:]}"})[0] == 421
    assert request(app.address, "GET", "/no/such/page")[0] == 404
    assert no_case_yet(app)
    exposed = app.net.node(V, "run", "--ui", "0.0.0.0:8700", check=False)
    said = t("cli.village.ui_not_loopback", listen="'0.0.0.0:8700'")
    assert exposed.returncode == 2 and said in exposed.stderr.decode()


def test_multipart_keeps_any_bytes_and_refuses_what_is_not_a_form() -> None:
    """A scan's bytes come back exactly (line breaks, NULs, boundary-like runs); a text field
    in UTF-8; an empty file input is left out; a body without its boundary, a part without a
    name, too many parts or a field that is not UTF-8 are refused."""
    data = os.urandom(100_000) + b"\r\n--x\r\n\r\r\n\n--\0"
    body, kind = multipart({"name": APPLICANT}, {"m0": data, "m1": b""})
    parts = parse(kind, body)
    assert parts.fields == {"name": APPLICANT} and list(parts.files) == ["m0"]
    assert parts.files["m0"].data == data and parts.files["m0"].filename == "scan.jpg"
    for content_type, bad in (
        (kind, b"no boundary here"),
        (kind, body.replace(b'name="name"', b"")),
        (kind, multipart({f"f{n}": "x" for n in range(41)}, {})[0]),
        (kind, multipart({"name": "x"}, {})[0].replace(b"\r\nx\r\n", b"\r\n\xff\r\n")),
        ("application/x-www-form-urlencoded", body),
    ):
        with pytest.raises(MultipartError):
            parse(content_type, bad)


def test_items_are_found_by_name_keyword_or_pinyin_initials(app: App) -> None:
    """Words of the name come first, then initials, then a material or condition; an item
    taken at the township window is not offered; nothing found says so."""
    for query, first in (("养老", "城乡居民基本养老保险参保登记"), ("zdshbz", "最低生活保障审核确认")):
        page = request(app.address, "GET", "/?" + urlencode({"q": query}))[1]
        found = re.search(r'<ol class="items"><li><a href="/item/[^"]+">([^<]+)</a>', page)
        assert found is not None and found.group(1) == first, query
    keyword = request(app.address, "GET", "/?" + urlencode({"q": "残疾人证"}))[1]
    assert keyword.index("残疾人证新办") < keyword.index("特困人员认定")  # by name, then by material
    assert "没有找到相关事项" in request(app.address, "GET", "/?q=qqqq")[1]
    assert request(app.address, "GET", "/item/twp-sscard-apply")[0] == 404  # taken at the township
    assert "twp-sscard-apply" not in request(app.address, "GET", "/?q=")[1]


def test_a_wrong_id_number_is_refused_in_words_the_agent_reads(app: App) -> None:
    """The server checks the ID number whatever the page's script did: a wrong check digit is
    answered with the form again, the message from the catalog and the typed values kept."""
    fields = {"csrf": token(app.address), "name": APPLICANT, "id_number": WRONG_ID, "mandate": "in_person"}
    status, page = post_take(app.address, fields, {"m0": b"scan"})
    assert status == 422
    assert "身份证号校验位不对" in page and f'value="{APPLICANT}"' in page
    status, page = post_take(app.address, fields | {"id_number": "12345"}, {})
    assert status == 422 and "身份证号应为 18 位" in page
    status, page = post_take(app.address, fields | {"id_number": IDS[0], "mandate": "written"}, {})
    assert status == 422 and "代办授权委托书扫描件" in page
    assert no_case_yet(app)


def raw_status(address: str, path: str, headers: dict[str, str]) -> int:
    """The status answered to a POST whose head announces a body that is never sent."""
    connection = http.client.HTTPConnection(address, timeout=10)
    connection.putrequest("POST", path)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status


@pytest.fixture(scope="module")
def chromium() -> str:
    return chromium_or_skip()


def test_browser_takes_a_request_offline_and_prints_the_receipt(
    chromium: str, app: App, tmp_path: Path
) -> None:
    """At 1366×768, by keyboard (the mandate choice and the submit too): by the search box, the
    guide and the form, a request with one of its two materials scanned and a written mandate
    is filed while the upstream is down; the missing material is listed, the receipt (with the
    committed time limit, how to follow up and how to complain) prints without the app's
    header, the case list shows what the villager must bring."""
    folder = artifacts()
    scan, mandate = tmp_path / "id-card.jpg", tmp_path / "mandate.jpg"
    scan.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(200_000))
    mandate.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(50_000))
    browser = Browser(chromium, tmp_path / "profile", tmp_path / "chromium.log", width=1366, height=768)
    base = f"http://{app.address}"

    def shot(name: str) -> None:
        wide = browser.evaluate("document.documentElement.scrollWidth")
        assert wide <= 1366, f"{name}: {wide} px, wider than the screen"
        browser.screenshot(folder / f"village-{name}.png")

    try:
        browser.goto(f"{base}/")
        assert focused(browser) == "q"  # typing starts in the search box
        assert "离线" in browser.evaluate("document.querySelector('header').innerText")
        browser.type("ylbx")  # by keyboard alone: type, Enter; Tab, Tab to the first item, Enter
        browser.press("Enter", loads=True)
        names = browser.evaluate("[...document.querySelectorAll('ol.items a')].map(a => a.textContent)")
        assert names[0] == "城乡居民基本养老保险参保登记"
        shot("find")
        assert focused(browser) == "q"
        browser.press("Tab")
        browser.press("Tab")
        browser.press("Enter", loads=True)
        guide = browser.evaluate("document.querySelector('dl.guide').innerText")
        assert "居民身份证或户口簿" in guide and "不收费" in guide and "当场办结" in guide
        shot("guide")
        assert focused(browser) == "start"
        browser.press("Enter", loads=True)
        assert focused(browser) == "name"
        browser.type(APPLICANT)
        browser.press("Tab")
        browser.type(WRONG_ID)  # checked as it is typed
        assert "校验位不对" in browser.evaluate("document.getElementById('id_number-note').textContent")
        assert browser.evaluate("document.querySelector('form').checkValidity()") is False
        browser.evaluate("document.getElementById('id_number').select()")
        browser.type(IDS[0])
        browser.press("Tab")
        browser.type(PHONE)
        assert "校验通过" in browser.evaluate("document.getElementById('id_number-note').textContent")
        browser.set_files("#m0", scan)  # as picked in the file dialog
        browser.set_files("#mandate_scan", mandate)
        for _ in range(3):  # past the two scans to the mandate: Space picks one, ArrowDown the next
            browser.press("Tab")
        browser.press("Space")
        assert browser.evaluate("document.querySelector('input[name=mandate]:checked').value") == "in_person"
        browser.press("ArrowDown")
        assert browser.evaluate("document.querySelector('input[name=mandate]:checked').value") == "written"
        browser.press("Tab")
        assert focused(browser) == "mandate_scan"
        shot("form")
        browser.press("Tab")
        browser.press("Enter", loads=True)  # the submit button
        assert browser.evaluate("location.pathname").startswith("/case/")
        case_id = browser.evaluate("location.pathname").split("/")[2]
        text = browser.evaluate("document.body.innerText")
        assert "还缺以下材料" in text and "城乡居民基本养老保险参保登记表" in text
        assert "离线" in text and "待上传 1 条" in text
        shot("taken")
        browser.submit("document.querySelector('a[accesskey=r]').click();")
        receipt = browser.evaluate("document.querySelector('.receipt').innerText")
        assert case_id in receipt and "居民身份证或户口簿" in receipt and "代办授权委托书" in receipt
        assert "城乡居民基本养老保险参保登记表" in receipt  # listed as missing
        rows = browser.evaluate(
            "Object.fromEntries([...document.querySelectorAll('.receipt tr')]"
            ".map(r => [r.querySelector('th').innerText, r.querySelector('td').innerText]))"
        )
        assert rows["承诺时限"] == "当场办结"  # the item's committed limit (0 days: on the spot)
        assert "向本村代办员查询" in rows["查询办理进度"] and "12345" in rows["查询办理进度"]
        assert "12345政务服务便民热线" in rows["投诉"]  # the item's complaint channel
        browser.call("Emulation.setEmulatedMedia", {"media": "print"}, browser.session)
        assert browser.evaluate("getComputedStyle(document.querySelector('header')).display") == "none"
        shot("receipt")
        browser.call("Emulation.setEmulatedMedia", {"media": ""}, browser.session)
        browser.goto(f"{base}/cases")
        todo = browser.evaluate("document.querySelector('table.cases').innerText")
        assert case_id in todo and APPLICANT in todo and "请村民补交：城乡居民基本养老保险参保登记表" in todo
        assert "已提交 待上传" in todo  # still on the laptop
        shot("cases")
    finally:
        browser.close()
    kept = app.net.home(V) / "scans"
    for path in (scan, mandate):
        data = path.read_bytes()
        stored = (kept / hashlib.sha256(data).hexdigest()).read_bytes()  # sealed (relay.vault)
        assert len(stored) == len(data) + 28 and data[4:36] not in stored and data[-32:] not in stored
        assert stat.S_IMODE((kept / hashlib.sha256(data).hexdigest()).stat().st_mode) == 0o600
    [case] = app.net.cases(V)
    assert case["missing_materials"] == ["城乡居民基本养老保险参保登记表"] and case["status"] == "submitted"


def test_case_list_leads_the_agent_through_correction_delivery_and_rating(app: App) -> None:
    """Once the township is up: its correction notice shows as materials to bring and is
    answered with a scan; its decision shows as a result to deliver; delivery then the
    villager's rating are recorded from the case's page, each shown as sent until the
    township answers, and the case ends as done."""
    fields = {"csrf": token(app.address), "name": APPLICANT, "id_number": IDS[0], "mandate": "in_person"}
    body, content_type = multipart(fields, {"m0": b"id card", "m1": b"form"})
    status, _, headers = request(
        app.address, "POST", f"/item/{ITEM}/take", body, {"Content-Type": content_type}
    )
    assert status == 303
    case_id = headers["Location"].split("/")[2].split("?")[0]
    bundle = app.net.root / "township.bundle"
    app.net.cli("township", T, "init", "--bundle", str(bundle), "--district", f"127.0.0.1:{free_port()}")
    app.net.start(T)
    page = until(app, case_id, "待上传 0 条")  # the township has it
    assert '<span class="on">在线</span>' in until(app, case_id, "在线") and "尚未同步" not in page
    app.net.node(T, "request-correction", case_id, "--missing", "近期免冠照片", "--missing", "户口簿")
    page = until(app, case_id, "乡镇要求补正，请村民带来：近期免冠照片、户口簿")
    assert 'action="/case/' + case_id + '/supplement"' in page
    post(app, case_id, "supplement", {}, {"m0": b"photo", "m1": b"household register"})
    until(app, case_id, "正在办理")
    app.net.node(T, "decide", case_id, "--approve", "--reason", "符合条件")
    until(app, case_id, "结果已出，请通知村民领取，并登记送达")
    post(app, case_id, "deliver", {}, {})
    until(app, case_id, "请记录村民对办理的评价")
    assert "请选择评价" in post(app, case_id, "rate", {"score": "9"}, {}, expect=422)
    assert "已登记，联网后上传" in post(app, case_id, "rate", {"score": "5", "comment": "很好"}, {})
    page = until(app, case_id, "已办结")
    history = page.split("办理记录")[1]  # settled, kept whole for forget_after_days (relay.privacy)
    for words in (
        "提交申请",
        "一次性告知补正",
        "近期免冠照片、户口簿",
        "代办点补交材料",
        "作出决定",
        "送达",
        "评价",
    ):
        assert words in history, words
    listed = request(app.address, "GET", "/cases")[1]
    assert case_id in listed and case_id not in listed.split("全部案件")[0], "done, yet still to do"
    kept = [path.read_bytes() for path in (app.net.home(V) / "scans").iterdir()]
    assert len(kept) >= 4 and not [
        data
        for data in (b"id card", b"form", b"photo", b"household register")
        if any(data in k for k in kept)
    ], "a scan is kept in clear"


def focused(browser: Browser) -> str:
    """The id (or the text, for a link) of the element with the focus, once autofocus has given
    it (after the next frame)."""
    deadline = time.monotonic() + 5
    script = "document.activeElement === document.body ? '' : document.activeElement.id"
    while not (found := browser.evaluate(script)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return str(found)


def until(app: App, case_id: str, words: str, seconds: float = 20.0) -> str:
    """The case's page once it says ``words`` (the village syncs on its own meanwhile)."""
    deadline = time.monotonic() + seconds
    while True:
        status, page, _ = request(app.address, "GET", f"/case/{case_id}")
        if status == 200 and words in page:
            return page
        if time.monotonic() > deadline:
            raise AssertionError(f"the case's page never said {words!r}")
        time.sleep(0.2)


def post(
    app: App, case_id: str, action: str, fields: dict[str, str], files: dict[str, bytes], expect: int = 303
) -> str:
    """Post one of the case page's forms; returns the page answered (after the redirect)."""
    fields = {"csrf": token(app.address)} | fields
    if action == "supplement":
        body, content_type = multipart(fields, files)
    else:
        body, content_type = urlencode(fields).encode(), "application/x-www-form-urlencoded"
    path = f"/case/{case_id}/{action}"
    status, page, headers = request(app.address, "POST", path, body, {"Content-Type": content_type})
    assert status == expect, page
    return request(app.address, "GET", headers["Location"])[1] if status == 303 else page
