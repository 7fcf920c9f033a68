"""CPU time and memory of processes, read from /proc (Linux; no extra dependency)."""

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def memory(pid: int) -> tuple[int, int]:
    """A process's resident set size now and at its peak (VmHWM), in bytes; (0, 0) if gone."""
    found = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in found:
                    found[key] = int(value.split()[0]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return found["VmRSS"], found["VmHWM"]


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


@dataclass
class Span:
    """CPU used by a group of processes over a stretch of wall time."""

    cpu: float  # CPU seconds
    wall: float  # seconds

    @property
    def cores(self) -> float:
        """Average cores busy (1.0 = one core all the time)."""
        return self.cpu / self.wall if self.wall > 0 else 0.0


class Meter:
    """CPU seconds of a set of processes between ``start`` and ``stop``. Processes that
    appear later count from zero; processes that exit in between count what they used until
    their last reading (``sample`` keeps the readings fresh)."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.pids = set(pids)
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.started = 0.0

    def start(self) -> "Meter":
        self.started = time.perf_counter()
        self.first = {pid: cpu_seconds(pid) for pid in self.pids}
        self.last = dict(self.first)
        return self

    def sample(self, pids: Iterable[int] = ()) -> None:
        """Read every process again; ``pids`` adds new ones (counted from zero)."""
        for pid in pids:
            if pid not in self.pids:
                self.pids.add(pid)
                self.first[pid] = 0.0
        for pid in self.pids:
            now = cpu_seconds(pid)
            if now >= self.last.get(pid, 0.0):
                self.last[pid] = now

    def stop(self, pids: Iterable[int] = ()) -> Span:
        self.sample(pids)
        used = sum(self.last[pid] - self.first.get(pid, 0.0) for pid in self.pids)
        return Span(used, time.perf_counter() - self.started)


class MachineMeter:
    """How busy all the machine's CPUs were between ``start`` and ``stop`` (0..1)."""

    def start(self) -> "MachineMeter":
        self.busy, self.total = machine_jiffies()
        return self

    def stop(self) -> float:
        busy, total = machine_jiffies()
        return (busy - self.busy) / max(1, total - self.total)


def mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of a process and its children, living and reaped (cutime, cstime): for
    PostgreSQL's postmaster, every backend's CPU, including backends that came and went."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat(int(entry))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if int(entry) == root or int(fields[1]) == root:
            total += sum(int(value) for value in fields[11:15])
    return total / TICK


def parent_of(pid: int) -> int:
    return int(_stat(pid)[1])


class TreeMeter(Meter):
    """A Meter of a whole process tree (see tree_cpu_seconds)."""

    def __init__(self, root: int) -> None:
        super().__init__(())
        self.root = root
        self.before = 0.0

    def start(self) -> "TreeMeter":
        self.started = time.perf_counter()
        self.before = tree_cpu_seconds(self.root)
        return self

    def sample(self, pids: Iterable[int] = ()) -> None:
        return None

    def stop(self, pids: Iterable[int] = ()) -> Span:
        return Span(tree_cpu_seconds(self.root) - self.before, time.perf_counter() - self.started)
