"""How often each node below may call a server: a token bucket per calling node (pure: the
clock is injected)."""

import time
from collections.abc import Callable

MAX_TRACKED = 10_000  # callers remembered at once (a district serves a few hundred nodes)


class CallBudget:
    """Each caller may make ``rate`` calls a second on average and ``burst`` in a row; a
    rate of 0 lets every call through."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (calls left, when)

    def allow(self, caller: str) -> bool:
        """Spend one call of ``caller``'s budget; False if it has none left."""
        if self.rate <= 0:
            return True
        now = self.clock()
        left, since = self._buckets.get(caller, (self.burst, now))
        left = min(self.burst, left + (now - since) * self.rate)
        if caller not in self._buckets and len(self._buckets) >= MAX_TRACKED:
            self._buckets.clear()  # made-up names by the thousand: everyone starts afresh
        allowed = left >= 1
        self._buckets[caller] = (left - 1 if allowed else left, now)
        return allowed
