"""Run the relay benchmarks: ``python -m bench [drain|relay|latency|all] [options]``."""

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench.latency import latency
from bench.throughput import drain, relay
from relay.console import configure_logging

CHOICES = ("drain", "relay", "latency", "all")


def parse() -> argparse.Namespace:
    """The command line's options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("which", nargs="?", choices=CHOICES, default="all", help="what to measure")
    parser.add_argument("--cases", type=int, default=10_000, help="drain: village backlog (cases)")
    parser.add_argument("--events", type=int, default=30_000, help="relay: township outbox (events)")
    parser.add_argument("--repeat", type=int, default=3, help="drain, relay: timed runs of each (median)")
    parser.add_argument("--rate", type=float, default=8.0, help="latency: cases taken per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="latency: how long to take cases")
    parser.add_argument("--keep", type=Path, help="make the nodes in this new folder and keep them")
    return parser.parse_args()


async def measure(args: argparse.Namespace, root: Path) -> None:
    """Run the chosen benchmarks, each in a folder of its own under root."""
    if args.which in ("drain", "all"):
        await drain(root / "drain", args.cases, args.repeat)
    if args.which in ("relay", "all"):
        await relay(root / "relay", args.events, args.repeat)
    if args.which in ("latency", "all"):
        await latency(root / "latency", args.rate, args.seconds)


def main() -> None:
    """Parse the options, run the benchmarks, then remove their nodes unless --keep (or the run
    failed)."""
    args = parse()
    configure_logging(logging.WARNING)
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
