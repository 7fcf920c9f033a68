"""A bell rung after events are committed to this node's feed: long polls wait on it instead
of re-reading the feed every few milliseconds (bench/README.md, issue 4).

A waiter takes a ticket before it reads the feed and waits on that ticket: a commit between
the read and the wait has rung it already, so nothing is missed. This process rings it after
its own commits. On PostgreSQL a commit that adds to the feed also sends a notification
(``announce``), and ``CommitListener`` rings the bell of every server process on the same
database with it: a staff command line's decision wakes the server's waiting pulls at once.
Commits no notification reaches (SQLite's other processes, a listener reconnecting) are found
by the waiters' own re-reads, at least every ``SAFETY_SECONDS``. While a listener hears every
commit, the waiters re-read only every ``HEARD_SECONDS``: 30 townships' waiting pulls read the
hub's feed 30 times a second otherwise, for nothing (bench/README.md).
"""

import asyncio
import contextlib

import asyncpg
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

SAFETY_SECONDS = 1.0
HEARD_SECONDS = 10.0
CHANNEL = "servicenet_feed"
RECONNECT_SECONDS = 1.0

log = structlog.get_logger()


class Bell:
    def __init__(self) -> None:
        self._current = asyncio.Event()
        self.heard = False  # set while a CommitListener hears every commit to the feed

    def ticket(self) -> asyncio.Event:
        """Take before reading: it is set by the next ring."""
        return self._current

    def ring(self) -> None:
        """Wake everyone waiting on a ticket taken before now."""
        rung, self._current = self._current, asyncio.Event()
        rung.set()

    async def wait(self, ticket: asyncio.Event, seconds: float) -> None:
        """Until the ticket is rung, or at most ``seconds`` (and never past SAFETY_SECONDS, or
        HEARD_SECONDS while every commit is heard)."""
        most = HEARD_SECONDS if self.heard else SAFETY_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ticket.wait(), max(0.0, min(seconds, most)))


async def announce(conn: AsyncConnection) -> None:
    """Have every listening process ring its bell when this transaction commits (PostgreSQL;
    delivered once however often a transaction announces, and never if it rolls back)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"NOTIFY {CHANNEL}"))


class CommitListener:
    """Rings ``bell`` at every announced commit to the PostgreSQL database of ``engine``, on a
    connection of its own, reconnecting when it is lost (a database restart)."""

    def __init__(self, engine: AsyncEngine, bell: Bell) -> None:
        self.dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.bell = bell
        self.listening = asyncio.Event()  # set while notifications arrive

    async def listen_forever(self) -> None:
        while True:
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("relay.bell.unheard", error=type(exc).__name__, retry_in=RECONNECT_SECONDS)
            self.listening.clear()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, lambda *_: self.bell.ring())
            self.listening.set()
            self.bell.heard = True
            self.bell.ring()  # what committed while nobody listened
            await lost.wait()
        finally:
            self.bell.heard = False
            self.bell.ring()  # the waiters re-read, then wait as long as nothing is heard
            await conn.close(timeout=1.0)
