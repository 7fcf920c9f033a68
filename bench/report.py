"""Printing a benchmark's figures beside its baseline's."""

import statistics
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Run:
    """Repeated timings of one transfer: what moved how much, and how long each time took."""

    label: str
    count: int
    seconds: tuple[float, ...]
    cpu: tuple[float, ...] = ()  # the sender's CPU seconds in each (this process's)

    @property
    def median(self) -> float:
        """The median of the timings, in seconds."""
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        """Per second, at the median time."""
        return self.count / self.median


def print_runs(title: str, unit: str, product: Run, baselines: list[Run]) -> float:
    """Print the product's run above its baselines (medians, then every repeat); returns the
    product's rate as a percentage of the fastest baseline's."""
    print(title)
    for run in (product, *baselines):
        each = " ".join(f"{s:.2f}" for s in run.seconds)
        spent = (
            f"   sender's CPU {1e6 * statistics.median(run.cpu) / run.count:.1f} ms a 1,000"
            if run.cpu
            else ""
        )
        print(f"  {run.label:<56} {run.median:6.2f} s {run.rate:9,.0f} {unit}/s   (runs: {each} s){spent}")
    fastest = max(baselines, key=lambda run: run.rate)
    share = 100 * product.rate / fastest.rate
    print(f"  product rate = {share:.0f} % of the fastest baseline ({fastest.label})")
    return share


def print_target(description: str, met: bool) -> None:
    """Print whether a target is met."""
    print(f"  target {description}: {'met' if met else 'MISSED'}")
