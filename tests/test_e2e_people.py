"""The two people the network serves, end to end in headless Chromium: a village agent at the
intake app (``village-agent run --ui``) and a window staff member at the township's console
(``township-node serve --http``), every node its own process. A request filed with one of its
two materials reaches the console; the staff member sends a one-time correction notice; the
agent answers it with a scan, which makes the case accepted; the staff member approves; the
agent sees the result to hand over and prints the receipt. Screenshots of each screen go to
tests/artifacts/people-*."""

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.node import open_node
from relay.staff import add_member, serve_items
from relay.web import add_user
from tests.browser import Browser, artifacts, chromium_or_skip
from tests.netkit import IDS, Network, free_port
from tests.test_village_app import wait_for

pytestmark = pytest.mark.e2e
D, T, V = "500117", "500117001", "500117001005"
ITEM = "twp-pension-enroll"  # materials: 居民身份证或户口簿, 城乡居民基本养老保险参保登记表
STAFF, PASSWORD = "张三", "window pass 1"
APPLICANT, PHONE = "孙八", "13700002222"


@dataclass
class People:
    net: Network
    app: str  # the village's intake app, http://HOST:PORT
    console: str  # the township's console


@pytest.fixture
def people(network_made: Network, tmp_path: Path) -> Iterator[People]:
    net = network_made.copy(tmp_path / "net")
    asyncio.run(roster(net))
    app, console = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    net.start(D)
    net.start(T, "--http", console)
    log = tmp_path / "village.log"
    agent = net.spawn(V, "run", "--ui", app, stdout=log, stderr=log)
    try:
        wait_for(app)
        yield People(net, f"http://{app}", f"http://{console}")
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        net.stop_all()
    logs = net.log_text() + log.read_text(encoding="utf-8")
    assert APPLICANT not in logs and IDS[2] not in logs and PHONE not in logs, "personal data in a log"


async def roster(net: Network) -> None:
    """Window 1 of the township serves pensions; its staff member has a web account."""
    async with open_node(net.home(T)) as node:
        await add_member(node, STAFF, "1", "A", "")
        await serve_items(node, "1", [ITEM])
    add_user(net.home(T), STAFF, PASSWORD)


@pytest.fixture
def chromium() -> str:
    return chromium_or_skip()


def test_a_request_goes_from_the_village_app_to_the_console_and_back(
    chromium: str, people: People, tmp_path: Path
) -> None:
    folder = artifacts()
    id_card, form = tmp_path / "id-card.jpg", tmp_path / "form.jpg"
    id_card.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(80_000))
    form.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(60_000))
    browser = Browser(chromium, tmp_path / "profile", tmp_path / "chromium.log", width=1366)

    def shot(name: str) -> None:
        browser.screenshot(folder / f"people-{name}.png")

    def text() -> str:
        return str(browser.evaluate("document.body.innerText"))

    def until(url: str, shows: Callable[[str], bool], what: str) -> None:
        """Reload ``url`` until its page shows what is awaited (the nodes sync on their own)."""
        deadline = time.monotonic() + 30
        browser.goto(url)
        while not shows(text()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} never showed {what}")
            time.sleep(0.3)
            browser.goto(url)

    try:
        # The agent files the request with the ID card scanned; the form is still to come.
        browser.goto(f"{people.app}/item/{ITEM}/take")
        browser.evaluate(
            f"document.getElementById('name').value = {APPLICANT!r};"
            f"document.getElementById('id_number').value = {IDS[2]!r};"
            f"document.getElementById('phone').value = {PHONE!r};"
            "document.querySelector('input[name=mandate][value=in_person]').checked = true;"
        )
        browser.set_files("#m0", id_card)
        browser.submit("document.querySelector('form').requestSubmit();")
        case_id = browser.evaluate("location.pathname").split("/")[2]
        assert "还缺以下材料" in text() and "城乡居民基本养老保险参保登记表" in text()
        shot("1-village-taken")

        # The window signs in, finds it in the queue and sends one correction notice.
        browser.goto(f"{people.console}/login")
        browser.submit(
            f"document.getElementById('name').value = {STAFF!r};"
            f"document.getElementById('password').value = {PASSWORD!r};"
            "document.querySelector('form.login').submit();"
        )
        until(f"{people.console}/", lambda page: case_id in page, "the case in the queue")
        shot("2-console-queue")
        browser.goto(f"{people.console}/case/{case_id}")
        browser.submit(
            "const f = document.querySelector('form.correction');"
            "f.querySelectorAll('[type=checkbox]').forEach((box, i) => { box.checked = i === 1; });"
            "f.querySelector('[name=note]').value = '请补交参保登记表';"
            "f.submit();"
        )
        assert browser.evaluate("document.querySelector('.done').textContent") == "已办理：一次性告知补正"
        shot("3-console-correction")

        # The notice reaches the laptop; the agent answers it with the scanned form.
        case_page = f"{people.app}/case/{case_id}"
        until(
            case_page,
            lambda page: "乡镇要求补正，请村民带来：城乡居民基本养老保险参保登记表" in page,
            "the notice",
        )
        shot("4-village-correction")
        browser.set_files("#s0", form)
        browser.submit("document.querySelector('form[action$=\"/supplement\"]').submit();")

        # The window sees the material arrive (the case is then accepted) and approves.
        console_case = f"{people.console}/case/{case_id}"
        until(console_case, lambda page: "补正材料" in page, "the supplement")
        browser.submit(
            "const d = document.querySelector('form.decide');"
            "d.querySelector('[value=approve]').checked = true;"
            "d.querySelector('[name=reason]').value = '材料齐全，符合条件'; d.submit();"
        )
        assert browser.evaluate("document.querySelector('.done').textContent") == "已办理：作出决定"
        shot("5-console-decided")

        # The result reaches the laptop: to be handed over, with the receipt to print.
        until(case_page, lambda page: "结果已出，请通知村民领取，并登记送达" in page, "the result")
        assert "已批准" in text()
        shot("6-village-result")
        browser.goto(f"{case_page}/receipt")
        receipt = browser.evaluate("document.querySelector('.receipt').innerText")
        assert case_id in receipt and "居民身份证或户口簿" in receipt
        shot("7-village-receipt")
    finally:
        browser.close()
    [case] = people.net.cases(V)
    assert (case["status"], case["missing_materials"]) == ("approved", [])
