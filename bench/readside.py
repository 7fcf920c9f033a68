"""(e) The hub's read side: supervision and coverage over a large case database on PostgreSQL.

The database is made by bench.hubdata (COPY, no relay involved). Then the product's queries,
as the command lines call them (``district-node supervise``: relay.supervision.supervise;
``district-node coverage``: district_node.coverage), are timed ``repeat`` times, interleaved
with the baselines of the same run: the very statements the product issued, replayed through
raw asyncpg (what the database and driver alone need), and plain aggregates. One more run of
each product query times its statements (SQLAlchemy's cursor events), which splits its time
between the database and Python. With ``what_if``, the product's queries are timed again with
the indexes bench/README.md proposes, and a sketch of coverage's latest-event lookup, on
indexes made for them and dropped afterwards.
"""

import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event

from bench import hubdata, pgdb
from casework import Divisions
from relay import supervision, tallies
from relay.clock import now_us, today_in_china
from relay.config import NodeConfig
from relay.console import create_node
from relay.db import open_engine
from relay.node import Node, open_node

TARGET_MS = 200.0
Query = Callable[[], Awaitable[Any]]
Call = Callable[[Node, Divisions], Awaitable[Any]]
Entry = tuple[str, Any, float, int]  # statement, parameters, seconds, rows


def product_queries() -> dict[str, Call]:
    """The hub's read side as this checkout has it, each as its command line calls it."""

    async def supervise(node: Node, _: Divisions) -> Any:
        return await supervision.supervise(node, today_in_china())

    found: dict[str, Call] = {"supervise: relay.supervision.supervise(node, today)": supervise}
    try:
        from district_node import coverage as module

        async def by_command(node: Node, divisions: Divisions) -> Any:
            return module.summary(await module.coverage(node, divisions, now_us()))

        found["coverage: district_node.coverage summary(coverage(...))"] = by_command
    except Exception:  # an older checkout, or one mid-edit: the dashboard's copy, if any
        try:
            from district_node.dashboard._data import coverage as dashboard_coverage  # type: ignore[attr-defined]

            async def by_dashboard(node: Node, divisions: Divisions) -> Any:
                return await dashboard_coverage(node, divisions, now_us())

            found["coverage: district_node.dashboard._data.coverage(...)"] = by_dashboard
        except Exception:
            pass
    return found


class Statements:
    """The SQL a node's engine runs while ``active``: statement, parameters, seconds (execute
    and fetch, through the driver) and rows."""

    def __init__(self, node: Node) -> None:
        self.active = False
        self.entries: list[Entry] = []
        engine = node.engine.sync_engine

        @event.listens_for(engine, "before_cursor_execute")
        def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            conn.info["bench_started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            started = conn.info.pop("bench_started", None)
            if self.active and started is not None:
                rows = cursor.rowcount if isinstance(cursor.rowcount, int) else 0
                self.entries.append((statement, parameters, time.perf_counter() - started, max(rows, 0)))

    async def record(self, call: Awaitable[Any]) -> float:
        """Run ``call`` once, noting its statements; returns its seconds."""
        self.entries = []
        self.active = True
        started = time.perf_counter()
        try:
            await call
        finally:
            self.active = False
        return time.perf_counter() - started


async def readside(
    url: str, count: int, repeat: int, root: Path, reuse: bool, what_if: bool, divisions_file: Path
) -> None:
    """Make (or reuse) a hub database of ``count`` cases and time the read side on it."""
    divisions = Divisions.from_csv(divisions_file)
    district = divisions.district
    home = root / district.code
    home.mkdir(parents=True, exist_ok=True)
    config = NodeConfig(
        code=district.code,
        role="district",
        name=district.name,
        district_code=district.code,
        db_url=url,
        operator="district",
    )
    dsn = pgdb.asyncpg_dsn(url)
    made = await _reused(dsn, count) if reuse and await pgdb.exists(url) else None
    if made is None:
        await pgdb.recreate(url)
        await create_node(home, config)  # the product's schema, through its migrations
        generator = hubdata.Generator(divisions, count, now_us())
        print(f"(e) read side: loading {count:,} cases into {pgdb.database_name(url)} ...", flush=True)
        seconds = await hubdata.load(dsn, generator, divisions)
        seconds += await _count_cases(url)
        made = (generator.counts.cases, generator.counts.events)
        await _mark(dsn, *made)
        print(f"  loaded in {seconds:.0f} s", flush=True)
    version = await pgdb.server_version(url)
    conn = await asyncpg.connect(dsn)
    try:
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        nodes_count = await conn.fetchval("SELECT count(*) FROM nodes")
    finally:
        await conn.close()
    print(
        f"(e) read side: hub on PostgreSQL {version}, {made[0]:,} cases, {made[1]:,} events, "
        f"{nodes_count} nodes, database {size / 2**30:.1f} GiB; {repeat} runs each, interleaved"
    )
    async with open_node(home, config) as node:
        await _time_all(node, dsn, divisions, repeat, what_if, made[0])


async def _count_cases(url: str) -> float:
    """Fill the counts the ledger keeps as cases change (relay/tallies.py), as the migration
    that made them does for the cases a hub already held: the load wrote the cases directly."""
    started = time.perf_counter()
    engine = open_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in tallies.recount():
                await conn.execute(statement)
    finally:
        await engine.dispose()
    print(f"  counted the cases (relay.tallies.recount) in {time.perf_counter() - started:.1f} s", flush=True)
    return time.perf_counter() - started


async def _reused(dsn: str, count: int) -> tuple[int, int] | None:
    """The (cases, events) of a database a previous run made with ``count`` cases, if any."""
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass('bench_readside') IS NOT NULL"):
            return None
        row = await conn.fetchrow("SELECT cases, events FROM bench_readside")
    finally:
        await conn.close()
    if row is None or row["cases"] != count:
        return None
    print(f"(e) read side: reusing the {count:,}-case database made by an earlier run")
    return int(row["cases"]), int(row["events"])


async def _mark(dsn: str, case_count: int, event_count: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE bench_readside (cases bigint, events bigint, made_at bigint)")
        await conn.execute(
            "INSERT INTO bench_readside VALUES ($1, $2, $3)", case_count, event_count, now_us()
        )
    finally:
        await conn.close()


async def _time_all(
    node: Node, dsn: str, divisions: Divisions, repeat: int, what_if: bool, made_cases: int
) -> None:
    raw = await asyncpg.connect(dsn)
    try:
        _summarise(await supervision.supervise(node, today_in_china()))
        product = {name: _bind(call, node, divisions) for name, call in product_queries().items()}
        log = Statements(node)
        spent: dict[str, float] = {}
        recorded: dict[str, list[Entry]] = {}
        for name, query in product.items():
            spent[name] = await log.record(query())
            recorded[name] = list(log.entries)
        baselines: dict[str, Query] = {
            f"{_short(name)}: its {len(recorded[name])} statements replayed through raw asyncpg": _replay(
                raw, recorded[name]
            )
            for name in product
        }
        baselines["SELECT status, count(*) FROM cases GROUP BY status"] = lambda: raw.fetch(
            "SELECT status, count(*) FROM cases GROUP BY status"
        )
        baselines["SELECT * FROM nodes"] = lambda: raw.fetch("SELECT * FROM nodes")
        timed = await _rounds({**product, **baselines}, repeat)
        print(f"  product (target < {TARGET_MS:.0f} ms at 1,000,000 cases; this database: {made_cases:,}):")
        for name in product:
            _line(name, timed[name], target=True)
        if not any(name.startswith("coverage") for name in product):
            print(f"    {'coverage':<66} pending: no coverage module in this checkout")
        print("  where the product's time goes (one more run of each, its statements timed):")
        for name in product:
            _breakdown(name, spent[name], recorded[name])
        print("  baselines (same run):")
        for name in baselines:
            _line(name, timed[name])
        if what_if:
            await _what_if(raw, product, repeat)
    finally:
        await raw.close()


def _short(name: str) -> str:
    return name.split(":")[0]


def _bind(call: Call, node: Node, divisions: Divisions) -> Query:
    return lambda: call(node, divisions)


def _replay(raw: asyncpg.Connection, entries: list[Entry]) -> Query:
    async def replay() -> None:
        for statement, parameters, _, _ in entries:
            await raw.fetch(statement, *(parameters or ()))

    return replay


def _summarise(report: dict[str, Any]) -> None:
    lights: Counter[str] = Counter()
    for counts in report["by_owner"].values():
        lights.update(counts)
    listed = ", ".join(f"{k} {v:,}" for k, v in sorted(lights.items()))
    shown = len(report["warnings"])
    warned = shown + report.get("warnings_cut", 0)  # an older checkout lists them all
    print(
        f"  supervise sees: {listed}; {warned:,} warnings, {shown:,} listed; "
        f"{report['satisfaction']['ratings']:,} ratings; "
        f"{report['rectifications']['open']:,} open rectifications"
    )


async def _rounds(queries: dict[str, Query], repeat: int) -> dict[str, list[float]]:
    """Each query ``repeat`` times, one round after another; seconds of each run."""
    times: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(repeat):
        for name, query in queries.items():
            started = time.perf_counter()
            await query()
            times[name].append(time.perf_counter() - started)
    return times


def _line(name: str, seconds: list[float], target: bool = False) -> None:
    median = statistics.median(seconds) * 1000
    runs = " ".join(f"{s * 1000:,.0f}" for s in seconds)
    verdict = ""
    if target:
        verdict = "  met" if median < TARGET_MS else "  MISSED"
    print(f"    {name:<66} {median:>9,.0f} ms   (runs: {runs} ms){verdict}")


def _breakdown(name: str, seconds: float, entries: list[Entry]) -> None:
    in_sql = sum(entry[2] for entry in entries)
    print(
        f"    {_short(name)}: {seconds * 1000:,.0f} ms = {len(entries)} statements {in_sql * 1000:,.0f} ms "
        f"(database and driver) + {(seconds - in_sql) * 1000:,.0f} ms in Python"
    )
    for statement, _, spent, rows in sorted(entries, key=lambda entry: -entry[2])[:6]:
        text = " ".join(statement.split())
        print(f"      {spent * 1000:9,.0f} ms {rows:>9,} rows  {text[:86]}")


_WHAT_IF_INDEXES = {
    "events(type), partial: rating, complaint and rectification events": "CREATE INDEX "
    "bench_whatif_events_type ON events (type) WHERE type IN ('case.rated', 'case.complaint_filed', "
    "'case.rectified')",
    "events(origin_node, recorded_at)": "CREATE INDEX bench_whatif_events_origin "
    "ON events (origin_node, recorded_at)",
    "cases(village_code, status)": "CREATE INDEX bench_whatif_cases_village ON cases (village_code, status)",
}
_LATEST_BY_NODE = """
SELECT n.code, (SELECT max(e.recorded_at) FROM events e WHERE e.origin_node = n.code) FROM nodes n
"""
_BY_VILLAGE = "SELECT village_code, status, count(*) FROM cases GROUP BY village_code, status"


async def _sketch_coverage(raw: asyncpg.Connection) -> None:
    """Coverage's reads with the latest event of each known node looked up by index, and the
    cases counted once per village and status (townships summed from their villages)."""
    await raw.fetch("SELECT * FROM nodes")
    await raw.fetch("SELECT sender, updated_at FROM inbox_peers")
    await raw.fetch(_LATEST_BY_NODE)
    by_township: Counter[tuple[str, str]] = Counter()
    for row in await raw.fetch(_BY_VILLAGE):
        by_township[(row["village_code"][:9], row["status"])] += row["count"]


async def _what_if(raw: asyncpg.Connection, product: dict[str, Query], repeat: int) -> None:
    """The product's queries again with the proposed indexes (made, timed, dropped), and
    coverage's latest-event-per-node as index lookups (a sketch of the rewrite, timed with its
    index only: without it each of the 449 lookups would scan every event)."""
    built = {}
    for name, statement in _WHAT_IF_INDEXES.items():
        started = time.perf_counter()
        await raw.execute(statement)
        built[name] = time.perf_counter() - started
    await raw.execute("ANALYZE events; ANALYZE cases")
    try:
        queries: dict[str, Query] = {
            f"{_short(name)}, with the indexes below": q for name, q in product.items()
        }
        queries["coverage sketch: latest event per node by lookup, by village once"] = lambda: (
            _sketch_coverage(raw)
        )
        after = await _rounds(queries, repeat)
    finally:
        for statement in _WHAT_IF_INDEXES.values():
            await raw.execute(f"DROP INDEX IF EXISTS {statement.split()[2]}")
    print("  what if (proposals in bench/README.md; the indexes are dropped again):")
    for name, seconds in after.items():
        _line(name, seconds)
    for name, took in built.items():
        print(f"    index {name}: built in {took:.1f} s")
