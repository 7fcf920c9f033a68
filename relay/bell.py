"""A bell rung after this process commits events to its node's feed: long polls wait on it
instead of re-reading the feed every few milliseconds (bench/README.md, issue 4).

A waiter takes a ticket before it reads the feed and waits on that ticket: a commit between
the read and the wait has rung it already, so nothing is missed. Commits by other processes
(a staff command line) ring nothing; waiters re-read at least every ``SAFETY_SECONDS``.
"""

import asyncio
import contextlib

SAFETY_SECONDS = 1.0


class Bell:
    def __init__(self) -> None:
        self._current = asyncio.Event()

    def ticket(self) -> asyncio.Event:
        """Take before reading: it is set by the next ring."""
        return self._current

    def ring(self) -> None:
        """Wake everyone waiting on a ticket taken before now."""
        rung, self._current = self._current, asyncio.Event()
        rung.set()

    async def wait(self, ticket: asyncio.Event, seconds: float) -> None:
        """Until the ticket is rung, or at most ``seconds`` (and never past SAFETY_SECONDS)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ticket.wait(), max(0.0, min(seconds, SAFETY_SECONDS)))
