"""A local demo network: the Hechuan district hub, three townships and two villages each, on
SQLite, every node its own process. Villages take sample requests; township and district
staff accept, escalate and decide them; the outcome flows back. A live table shows each tier.

    python -m demo_network [--folder DIR] [--seconds N]
"""

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table

from casework import Request
from casework.lifecycle import ACCEPTED, CMD_DELIVER, DECIDED, DEPARTMENT_DECIDED, ESCALATED
from messages import t
from relay.keyfile import PASSPHRASE_ENV
from relay.node import open_node
from relay.queries import list_cases
from relay.staff import act
from village_agent import service

DIVISIONS = Path(__file__).resolve().parent.parent / "casework" / "data" / "hechuan-500117.csv"
TOWNSHIPS = {"500117001": ["500117001005", "500117001008"], "500117101": [], "500117102": []}
ITEMS = [
    "twp-pension-enroll",
    "twp-medins-enroll",
    "twp-elderly-card",
    "twp-dibao-apply",
    "twp-elderly-care-subsidy",  # decided jointly by three departments
]
NAMES = ["张秀英", "王建国", "李桂兰", "刘德华", "陈玉梅", "杨国强"]
IDS = ["500117195603124322", "500117197811052166", "500117200108230041", "11010519491231002X"]
console = Console(width=max(shutil.get_terminal_size().columns, 100))
APP_VILLAGE = "500117001005"  # its agent's intake app is served too (run --ui)
PASSPHRASE = "demo passphrase"  # seals the demo villages' personal data (relay/keyfile.py)


def tool(role: str, *args: str) -> list[str]:
    module = {"district": "district_node", "township": "township_node", "village": "village_agent"}[role]
    return [sys.executable, "-m", module, *args]


def free_ports(count: int) -> list[int]:
    """Ports free now, all different: the kernel may offer the same free port twice before
    any server binds it, and a server refuses a port in use."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in found:
            found.append(port)
    return found


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def setup(folder: Path) -> dict[str, Any]:
    """Create and enroll every node through the same commands an operator would use."""
    *server_ports, app_port = free_ports(len(TOWNSHIPS) + 2)
    ports = dict(zip(["500117", *TOWNSHIPS], server_ports, strict=True))
    villages = _villages(folder)
    district = folder / "500117"
    run(*tool("district", "init", "--home", str(district), "--code", "500117", "--divisions", str(DIVISIONS)))
    for code in [*TOWNSHIPS, *villages]:
        bundle = folder / f"{code}.bundle"
        run(*tool("district", "enroll", "--home", str(district), "--code", code, "--out", str(bundle)))
        if code in TOWNSHIPS:
            run(
                *tool(
                    "township",
                    "init",
                    "--home",
                    str(folder / code),
                    "--bundle",
                    str(bundle),
                    "--district",
                    f"127.0.0.1:{ports['500117']}",
                )
            )
        else:
            run(
                *tool(
                    "village",
                    "init",
                    "--home",
                    str(folder / code),
                    "--bundle",
                    str(bundle),
                    "--township",
                    f"127.0.0.1:{ports[code[:9]]}",
                )
            )
    return {"ports": ports, "villages": villages, "app": f"127.0.0.1:{app_port}"}


def _villages(folder: Path) -> list[str]:
    from casework import Divisions

    known = Divisions.from_csv(DIVISIONS)
    chosen = []
    for township, fixed in TOWNSHIPS.items():
        chosen += fixed or [d.code for d in known.children(township)][:2]
    return chosen


def start(folder: Path, net: dict[str, Any]) -> list[subprocess.Popen[bytes]]:
    """Every node as its own process: servers for the hub and townships, agents for villages."""
    processes = []
    for code, port in net["ports"].items():
        role = "district" if code == "500117" else "township"
        with (folder / f"{code}.log").open("ab") as log:
            processes.append(
                subprocess.Popen(
                    tool(role, "serve", "--home", str(folder / code), "--listen", f"127.0.0.1:{port}"),
                    stdout=log,
                    stderr=log,
                )
            )
    for code in net["villages"]:
        app = ("--ui", net["app"]) if code == APP_VILLAGE else ()
        with (folder / f"{code}.log").open("ab") as log:
            processes.append(
                subprocess.Popen(
                    tool("village", "run", "--home", str(folder / code), *app), stdout=log, stderr=log
                )
            )
    return processes


async def villagers(folder: Path, villages: list[str], stop: asyncio.Event) -> None:
    """Villagers walk up to their agent now and then: with a new request, or to collect a result."""
    while not stop.is_set():
        code = random.choice(villages)
        async with open_node(folder / code) as node:
            request = Request(random.choice(ITEMS), random.choice(NAMES), random.choice(IDS))
            await service.take(node, [service.check(node, request, {})])
            decided = [c for c in await list_cases(node) if c["status"] in ("approved", "rejected")]
            for case in decided[:1]:
                await service.command(node, case["case_id"], CMD_DELIVER, {})
        await asyncio.sleep(random.uniform(0.2, 0.6))


async def staff(folder: Path, stop: asyncio.Event) -> None:
    """Window staff at each township and at the district work through their queues."""
    next_step: dict[str, tuple[str, dict[str, Any]]] = {
        "submitted": (ACCEPTED, {}),
        "escalated": (ACCEPTED, {}),
    }
    while not stop.is_set():
        for code in [*TOWNSHIPS, "500117"]:
            async with open_node(folder / code) as node:
                for case in await list_cases(node):
                    if case["owner"] != code:
                        continue
                    step = next_step.get(case["status"])
                    if case["status"] == "accepted":
                        step = _next_step(node, code, case)
                    if step:
                        await act(node, [case["case_id"]], step[0], step[1], "窗口A")
        await asyncio.sleep(1.0)


def _next_step(node: Any, code: str, case: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Escalate a district item at the township; otherwise decide it (each department of a
    joint item in turn)."""
    if code != "500117" and node.ledger.catalog.require(case["item_code"]).decide_level == "district":
        return ESCALATED, {"opinion": "初审通过"}
    verdict = {"approved": random.random() > 0.1, "reason": "按规定办理"}
    pending = [name for name, state in case["departments"].items() if state == "pending"]
    if pending:
        return DEPARTMENT_DECIDED, verdict | {"department": pending[0]}
    return DECIDED, verdict


SHOWN = ("submitted", "accepted", "escalated", "approved", "rejected", "delivered", "withdrawn")


async def view(folder: Path, codes: list[str]) -> Table:
    table = Table(
        t("demo.node"),
        "",
        *(t(f"status.{status}") for status in SHOWN),
        title=t("demo.title"),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for code in codes:
        async with open_node(folder / code) as node:
            rows = await list_cases(node)
        counts = {s: sum(1 for r in rows if r["status"] == s) for s in SHOWN}
        table.add_row(code, node.config.name[:4], *(str(counts[s]) for s in SHOWN))
    return table


async def main_async(folder: Path, seconds: float) -> None:
    net = setup(folder)
    processes = start(folder, net)
    console.print(t("demo.app", village=APP_VILLAGE, address=net["app"]), markup=False)
    codes = ["500117", *TOWNSHIPS, *net["villages"]]
    stop = asyncio.Event()
    workers = [
        asyncio.create_task(villagers(folder, net["villages"], stop)),
        asyncio.create_task(staff(folder, stop)),
    ]
    try:
        with Live(await view(folder, codes), console=console, refresh_per_second=2) as live:
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            while loop.time() < end:
                await asyncio.sleep(1)
                if loop.time() > end - 5:
                    stop.set()  # the last seconds: no new requests, let everything settle
                live.update(await view(folder, codes))
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
        for process in processes:
            process.terminate()  # SIGTERM: each node stops cleanly
        for process in processes:
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, help="keep the nodes here (default: a temporary folder)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to run (default 30)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="servicenet-demo-"))
    if args.folder and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault(PASSPHRASE_ENV, PASSPHRASE)  # every village command of the demo
    console.print(t("demo.folder", folder=folder), markup=False)
    try:
        asyncio.run(main_async(folder, args.seconds))
    except KeyboardInterrupt:
        pass
    village = folder / APP_VILLAGE
    console.print("\n" + t("demo.done", village=village), markup=False)
    console.print(t("demo.passphrase", passphrase=os.environ[PASSPHRASE_ENV]), markup=False)


if __name__ == "__main__":
    main()
