"""What ``/metrics`` shows, in the Prometheus text exposition format 0.0.4.

Two kinds of figures: counters the relay keeps in memory while the process runs (batches,
events, rejects, retries; they start again from zero at a restart, which Prometheus expects of a
counter), and gauges read from the node's database at each scrape (backlog, cursors, sync ages,
cases by status, dead letters, the heartbeats of the nodes below; see relay.scrape). The
counters belong to the process, which serves one node. Labels never carry personal data: only
division codes, statuses and directions.
"""

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LabelSet = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Family:
    """One metric: its name, type ("counter" or "gauge"), help text and samples."""

    name: str
    kind: str
    help: str
    samples: Sequence[tuple[LabelSet, float]]


@dataclass(slots=True)
class Metric:
    """A value per label set kept in memory since the process started: a counter only goes
    up (``inc``), a gauge holds the last value ``set``."""

    name: str
    kind: str
    help: str
    values: dict[LabelSet, float] = field(default_factory=dict)

    def inc(self, amount: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.values[key] = self.values.get(key, 0) + amount

    def set(self, value: float, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] = value

    def family(self) -> Family:
        return Family(self.name, self.kind, self.help, sorted(self.values.items()))


def _zeros(label: str, *values: str) -> dict[LabelSet, float]:
    """A counter's known label values, shown as 0 before anything happened."""
    return {((label, value),): 0 for value in values}


BATCHES = Metric(
    "servicenet_relay_batches_total",
    "counter",
    "Push batches: sent upstream and acknowledged (direction=sent), or received from a node below "
    "and applied (direction=received).",
    _zeros("direction", "received", "sent"),
)
EVENTS = Metric(
    "servicenet_relay_events_total",
    "counter",
    "Events moved: pushed upstream and acknowledged (direction=pushed), received from below "
    "(received), pulled from the upstream's feed (pulled).",
    _zeros("direction", "pulled", "pushed", "received"),
)
REJECTS = Metric(
    "servicenet_relay_rejects_total",
    "counter",
    "Events refused for good and kept as dead letters: refused here (direction=in) or by the "
    "upstream (direction=out).",
    _zeros("direction", "in", "out"),
)
RETRIES = Metric(
    "servicenet_relay_retries_total",
    "counter",
    "Transient failures talking to the upstream, each followed by a backoff and a retry, by the "
    "loop that retried (push, pull, sync).",
    _zeros("loop", "pull", "push", "sync"),
)
THROTTLED = Metric(
    "servicenet_relay_throttled_total",
    "counter",
    "Calls from nodes below refused with RESOURCE_EXHAUSTED for coming faster than "
    "peer_calls_per_second allows, by RPC.",
)
PULL_POSITION = Metric(
    "servicenet_relay_pull_position",
    "gauge",
    "At the last pull: this node's cursor in the upstream's feed (what=cursor) and the feed's "
    "head (what=head). The difference bounds the pull lag from above: the head counts events "
    "addressed to other nodes too.",
)
STARTED = time.time()
IN_MEMORY = (BATCHES, EVENTS, REJECTS, RETRIES, THROTTLED, PULL_POSITION)


def render(families: Iterable[Family]) -> str:
    """The text exposition format 0.0.4: HELP and TYPE, then one line per sample."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            lines.append(f"{family.name}{_labels(labels)} {_number(value)}")
    return "\n".join(lines) + "\n"


def _labels(labels: LabelSet) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape_value(value)}"' for key, value in labels) + "}"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))
