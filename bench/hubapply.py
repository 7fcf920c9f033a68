"""The hub's own apply rate on PostgreSQL: ``RelayService.push`` called in-process.

A baseline for the district simulation's ingest figure: the same product code the hub's gRPC
server runs for each batch, without gRPC, without the townships and without other load; one
1,000-event batch after another (stop-and-wait), on a database of its own. Its CPU time is
taken (what is left of a batch's time is waiting on PostgreSQL), and so is every statement
SQLAlchemy issues (its cursor events: not the COPYs, which go straight to the driver, nor the
commits). And the same with four townships pushing at once, as the server applies batches side
by side (two at a time on PostgreSQL, relay/service.py). The district simulation runs both in a
process of their own (``apart``).
"""

import asyncio
import json
import logging
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench import pgdb
from bench.workload import outbox_records, take_cases
from relay.config import NodeConfig, default_db_url
from relay.console import configure_logging, create_node
from relay.node import Node, open_node
from relay.records import EventRecord
from relay.service import RelayService
from relay.sync import Syncer
from relay.upstream import LocalUpstream

DISTRICT, TOWNSHIP, VILLAGE = "500117", "500117001", "500117001005"
TOGETHER = (  # townships pushing at once, each with one of its villages (Hechuan's codes)
    (TOWNSHIP, VILLAGE),
    ("500117002", "500117002001"),
    ("500117003", "500117003002"),
    ("500117004", "500117004001"),
)
BATCH = 1000


@dataclass
class Applied:
    events: int
    seconds: float
    cpu_seconds: float  # this process's: the hub's code in-process, without gRPC
    in_sql: float  # in the statements SQLAlchemy issued (neither COPY nor the commits)
    statements: dict[str, tuple[float, int]] = field(default_factory=dict)  # text -> (seconds, calls)

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def hub_apply(url: str, count: int) -> Applied:
    """Push ``count`` submissions (relayed by a township, as the hub receives them) into a
    fresh hub on ``url``, 1,000 a call, and time it."""
    with tempfile.TemporaryDirectory(prefix="servicenet-hubapply-") as folder:
        root = Path(folder)
        records = await _relayed(root, TOWNSHIP, VILLAGE, count)
        async with _fresh_hub(root, url) as hub:
            service = RelayService(hub.engine, hub.ledger)
            spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
            engine = hub.engine.sync_engine

            @event.listens_for(engine, "before_cursor_execute")
            def before(
                conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
            ) -> None:
                conn.info["bench_started"] = time.perf_counter()

            @event.listens_for(engine, "after_cursor_execute")
            def after(
                conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
            ) -> None:
                entry = spent[" ".join(statement.split())[:70]]
                entry[0] += time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
                entry[1] += 1

            started, cpu = time.perf_counter(), time.process_time()
            await _push_all(service, TOWNSHIP, records)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    statements = {text: (float(v[0]), int(v[1])) for text, v in spent.items()}
    return Applied(len(records), seconds, cpu, sum(v[0] for v in statements.values()), statements)


@dataclass
class Together:
    events: int
    seconds: float
    cpu_seconds: float  # the hub's (this process's) CPU time

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def hub_apply_together(url: str, count: int) -> Together:
    """Push ``count`` submissions from four townships at once (a quarter each, 1,000 a call,
    each township stop-and-wait) into a fresh hub on ``url``: the hub's code and PostgreSQL
    with batches applied side by side, as in the server, without gRPC or the townships' load."""
    with tempfile.TemporaryDirectory(prefix="servicenet-hubapply-") as folder:
        root = Path(folder)
        share = count // len(TOGETHER)
        records = {t: await _relayed(root, t, v, share) for t, v in TOGETHER}
        async with _fresh_hub(root, url) as hub:
            service = RelayService(hub.engine, hub.ledger)
            started, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(_push_all(service, t, records[t]) for t, _ in TOGETHER))
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Together(share * len(TOGETHER), seconds, cpu)


async def _relayed(root: Path, township: str, village: str, count: int) -> list[tuple[int, EventRecord]]:
    """``count`` submissions taken at a village and relayed by its township: the township's
    outbox, as it would push them to the hub."""
    for code, role, upstream in ((township, "township", DISTRICT), (village, "village", township)):
        home = root / code
        home.mkdir()
        await create_node(home, _config(code, role, upstream, default_db_url(home)))
    async with open_node(root / village) as below, open_node(root / township) as above:
        await take_cases(below, count)
        to_township = LocalUpstream(RelayService(above.engine, above.ledger))
        await Syncer(below.engine, below.ledger, to_township).sync(give_up_after=120)
        return await outbox_records(above)


@asynccontextmanager
async def _fresh_hub(root: Path, url: str) -> AsyncIterator[Node]:
    """A new district node on a recreated database at ``url``."""
    await pgdb.recreate(url)
    home = root / DISTRICT
    home.mkdir()
    await create_node(home, _config(DISTRICT, "district", "", url))
    async with open_node(home) as hub:
        yield hub


async def _push_all(service: RelayService, sender: str, records: list[tuple[int, EventRecord]]) -> None:
    for first in range(0, len(records), BATCH):
        await service.push(sender, 1, records[first : first + BATCH])


def _config(code: str, role: str, upstream_code: str, db_url: str) -> NodeConfig:
    return NodeConfig(
        code=code,
        role=role,
        name=code,
        district_code=DISTRICT,
        db_url=db_url,
        operator="bench",
        upstream="127.0.0.1:9" if upstream_code else "",  # never dialled: everything is in-process
        upstream_code=upstream_code,
    )


def apply_url(url: str) -> str:
    """A database of its own beside the simulation's: NAME_apply."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_apply").render_as_string(hide_password=False)


async def apart(url: str, count: int) -> tuple[Applied, Together]:
    """Both baselines in a process of their own, as the hub's code runs in its server: the
    district simulation's process still holds what its villages' nodes left (hundreds of MiB),
    which is not the hub's code's to carry."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.hubapply", url, str(count), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"python -m bench.hubapply failed ({process.returncode})")
    found = json.loads(out)
    statements = {text: (spent, calls) for text, (spent, calls) in found["applied"].pop("statements").items()}
    return Applied(**found["applied"], statements=statements), Together(**found["together"])


async def _both(url: str, count: int) -> dict[str, Any]:
    return {
        "applied": asdict(await hub_apply(url, count)),
        "together": asdict(await hub_apply_together(url, count)),
    }


if __name__ == "__main__":  # python -m bench.hubapply URL COUNT: both, as JSON (see apart)
    configure_logging(logging.WARNING)
    print(json.dumps(asyncio.run(_both(sys.argv[1], int(sys.argv[2])))))
