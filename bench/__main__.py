"""Run the relay benchmarks: ``python -m bench [drain|relay|latency|all|district|readside|hubfeed]``.

``all`` runs drain, relay and latency (SQLite, about 1.5 minutes). ``district`` (the whole
district simulated on PostgreSQL), ``readside`` (supervision and coverage over a large hub
database) and ``hubfeed`` (the hub's ingest, its townships' pushes replayed by one process) run
only when named: they need a PostgreSQL server (``--pg``)."""

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from bench.latency import latency
from bench.pgdb import DEFAULT_URL
from bench.throughput import drain, relay
from relay.console import configure_logging
from relay.keyfile import PASSPHRASE_ENV

if TYPE_CHECKING:
    from bench.district import Options

CHOICES = ("drain", "relay", "latency", "all", "district", "readside", "hubfeed")
REPO = Path(__file__).resolve().parent.parent
SHARED_DIVISIONS = REPO.parent / "shared" / "data" / "divisions" / "hechuan-500117.csv"
SHIPPED_DIVISIONS = REPO / "casework" / "data" / "hechuan-500117.csv"
DIVISIONS = SHARED_DIVISIONS if SHARED_DIVISIONS.exists() else SHIPPED_DIVISIONS


def parse() -> argparse.Namespace:
    """The command line's options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("which", nargs="?", choices=CHOICES, default="all", help="what to measure")
    parser.add_argument(
        "--cases", type=int, help="drain: village backlog (cases, 10,000); readside: hub cases (1,000,000)"
    )
    parser.add_argument("--events", type=int, default=30_000, help="relay: township outbox (events)")
    parser.add_argument("--repeat", type=int, default=3, help="drain, relay, readside: timed runs of each")
    parser.add_argument("--rate", type=float, default=8.0, help="latency: cases taken per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency: how long to take cases")
    parser.add_argument("--keep", type=Path, help="make the nodes in this new folder and keep them")
    pg = parser.add_argument_group("district and readside (PostgreSQL)")
    pg.add_argument(
        "--pg",
        default=DEFAULT_URL,
        help="SQLAlchemy URL of the hub's database, dropped and made afresh; its name must start "
        "with 'bench' (default: %(default)s)",
    )
    pg.add_argument("--divisions", type=Path, default=DIVISIONS, help="divisions CSV file")
    pg.add_argument("--reuse", action="store_true", help="readside: keep a database an earlier run made")
    pg.add_argument("--no-what-if", action="store_true", help="readside: skip the proposals' sketches")
    sim = parser.add_argument_group("district simulation")
    sim.add_argument(
        "--townships", type=_count_or_all, default=None, help="first N townships, or all (hubfeed too)"
    )
    sim.add_argument("--villages", type=_count_or_all, default=None, help="N villages over them, or all")
    sim.add_argument("--sim-hours", type=float, default=8.0, help="simulated hours of requests (8)")
    sim.add_argument("--speed", type=float, default=20.0, help="simulated seconds per wall second (20)")
    sim.add_argument(
        "--requests-per-day",
        type=float,
        nargs=2,
        default=(5.0, 30.0),
        metavar=("LOW", "HIGH"),
        help="requests per village per 8-hour day, uniform between (5 30)",
    )
    sim.add_argument(
        "--outages-per-day", type=float, default=0.3, help="village outages per village per day (0.3)"
    )
    sim.add_argument(
        "--outage-minutes",
        type=float,
        nargs=2,
        default=(5.0, 240.0),
        metavar=("SHORTEST", "LONGEST"),
        help="village outage length, simulated minutes, log-uniform (5 240)",
    )
    sim.add_argument("--cut", help="township to cut off (default: one at random)")
    sim.add_argument("--cut-at", type=float, help="simulated hour it is cut off (the day's last cut-minutes)")
    sim.add_argument("--cut-minutes", type=float, default=60.0, help="simulated minutes it stays cut (60)")
    sim.add_argument(
        "--cut-hold",
        type=float,
        default=90.0,
        help="wall seconds the cut lasts at least, so the township's retry backoff reaches its cap as "
        "it would in an hour (90)",
    )
    sim.add_argument(
        "--pull-minutes",
        type=float,
        default=60.0,
        help="villages pull every N simulated minutes; 0: long poll as village-agent run does (60)",
    )
    sim.add_argument(
        "--desk-minutes",
        type=float,
        default=30.0,
        help="windows act on what waits every N simulated minutes; 0: nobody acts (30)",
    )
    sim.add_argument(
        "--burst",
        type=int,
        default=100_000,
        help="ingest burst: requests (100,000; 0: none); hubfeed: events",
    )
    sim.add_argument("--idle", type=float, default=10.0, help="seconds measured idle before the day (10)")
    sim.add_argument("--baseline-cases", type=int, default=80, help="raw gRPC chain latency baseline (80)")
    sim.add_argument("--seed", type=int, default=1, help="random seed (1)")
    return parser.parse_args()


def _count_or_all(text: str) -> int | None:
    return None if text == "all" else int(text)


def district_options(args: argparse.Namespace) -> "Options":
    from bench.district import Options

    cut_at = args.cut_at if args.cut_at is not None else max(0.0, args.sim_hours - args.cut_minutes / 60)
    return Options(
        pg=args.pg,
        divisions=args.divisions,
        townships=args.townships,
        villages=args.villages,
        sim_hours=args.sim_hours,
        speed=args.speed,
        per_day=tuple(args.requests_per_day),
        outages_per_day=args.outages_per_day,
        outage_minutes=tuple(args.outage_minutes),
        cut=args.cut,
        cut_at_hours=cut_at,
        cut_minutes=args.cut_minutes,
        cut_hold=args.cut_hold,
        pull_minutes=args.pull_minutes,
        desk_minutes=args.desk_minutes,
        burst=args.burst,
        idle_seconds=args.idle,
        baseline_cases=args.baseline_cases,
        seed=args.seed,
    )


async def measure(args: argparse.Namespace, root: Path) -> None:
    """Run the chosen benchmarks, each in a folder of its own under root."""
    if args.which in ("drain", "all"):
        await drain(root / "drain", args.cases or 10_000, args.repeat)
    if args.which in ("relay", "all"):
        await relay(root / "relay", args.events, args.repeat)
    if args.which in ("latency", "all"):
        await latency(root / "latency", args.rate, args.seconds)
    if args.which == "district":
        from bench.district import district

        await district(district_options(args), root / "district")
    if args.which == "hubfeed":
        from bench.hubfeed import hub_feed

        await hub_feed(args.pg, args.divisions, args.townships, args.burst, root / "hubfeed")
    if args.which == "readside":
        from bench.readside import readside

        cases = args.cases or 1_000_000
        what_if = not args.no_what_if
        await readside(args.pg, cases, args.repeat, root / "readside", args.reuse, what_if, args.divisions)


def main() -> None:
    """Parse the options, run the benchmarks, then remove their nodes unless --keep (or the run
    failed)."""
    args = parse()
    configure_logging(logging.WARNING)
    os.environ.setdefault(PASSPHRASE_ENV, "bench passphrase")  # the villages' data keys
    print(f"servicenet bench: {os.cpu_count()} cores")
    root = args.keep or Path(tempfile.mkdtemp(prefix="servicenet-bench-"))
    try:
        asyncio.run(measure(args, root))
    except BaseException:
        # Keep the nodes and their servers' logs: they are what explains a failed run.
        print(f"servicenet bench: failed; its nodes and logs are kept in {root}", file=sys.stderr)
        raise
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
