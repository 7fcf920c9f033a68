"""The hub's own apply rate on PostgreSQL: ``RelayService.push`` called in-process.

A baseline for the district simulation's ingest figure: the same product code the hub's gRPC
server runs for each batch, without gRPC, without the townships and without other load; one
1,000-event batch after another (stop-and-wait), on a database of its own. Every statement it
issues is timed (SQLAlchemy's cursor events), which splits a batch's time between the database
(with the driver) and Python.
"""

import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench import pgdb
from bench.workload import outbox_records, take_cases
from relay.config import NodeConfig, default_db_url
from relay.console import create_node
from relay.node import open_node
from relay.service import RelayService
from relay.sync import Syncer
from relay.upstream import LocalUpstream

DISTRICT, TOWNSHIP, VILLAGE = "500117", "500117001", "500117001005"
BATCH = 1000


@dataclass
class Applied:
    events: int
    seconds: float
    in_sql: float
    statements: dict[str, tuple[float, int]] = field(default_factory=dict)  # text -> (seconds, calls)

    @property
    def rate(self) -> float:
        return self.events / self.seconds


async def hub_apply(url: str, count: int) -> Applied:
    """Push ``count`` submissions (relayed by a township, as the hub receives them) into a
    fresh hub on ``url``, 1,000 a call, and time it."""
    await pgdb.recreate(url)
    with tempfile.TemporaryDirectory(prefix="servicenet-hubapply-") as folder:
        root = Path(folder)
        homes = {code: root / code for code in (DISTRICT, TOWNSHIP, VILLAGE)}
        for home in homes.values():
            home.mkdir()
        configs = {
            DISTRICT: _config(DISTRICT, "district", "", url),
            TOWNSHIP: _config(TOWNSHIP, "township", DISTRICT, default_db_url(homes[TOWNSHIP])),
            VILLAGE: _config(VILLAGE, "village", TOWNSHIP, default_db_url(homes[VILLAGE])),
        }
        for code, config in configs.items():
            await create_node(homes[code], config)
        async with (
            open_node(homes[VILLAGE]) as village,
            open_node(homes[TOWNSHIP]) as township,
            open_node(homes[DISTRICT]) as hub,
        ):
            await take_cases(village, count)
            to_township = LocalUpstream(RelayService(township.engine, township.ledger))
            await Syncer(village.engine, village.ledger, to_township).sync(give_up_after=120)
            records = await outbox_records(township)
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

            started = time.perf_counter()
            for first in range(0, len(records), BATCH):
                await service.push(TOWNSHIP, 1, records[first : first + BATCH])
            seconds = time.perf_counter() - started
    statements = {text: (float(v[0]), int(v[1])) for text, v in spent.items()}
    return Applied(len(records), seconds, sum(v[0] for v in statements.values()), statements)


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
