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

A ring names the pullers whose feeds the commit may add to (a village and its township: the
feeds an event reaches), and wakes only their waiting pulls: every decision at the hub woke all
30 townships' pulls to read their feeds, and the hub's CPU grew over a simulated day with the
cases decided there (bench/README.md).
"""

import asyncio
import contextlib
from collections.abc import Iterable

import asyncpg
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

SAFETY_SECONDS = 1.0
HEARD_SECONDS = 10.0
CHANNEL = "servicenet_feed"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
MOST_NAMED = 7000  # characters of pullers a notification names (PostgreSQL's limit is 8000)
RECONNECT_SECONDS = 1.0

log = structlog.get_logger()


class Bell:
    def __init__(self) -> None:
        self._tickets: dict[str, asyncio.Event] = {}  # puller -> its waiters' ticket
        self.heard = False  # set while a CommitListener hears every commit to the feed

    def ticket(self, puller: str) -> asyncio.Event:
        """Take before reading ``puller``'s feed: it is set by the next ring naming it."""
        return self._tickets.setdefault(puller, asyncio.Event())

    def ring(self, pullers: Iterable[str] | None = None) -> None:
        """Wake those waiting on a ticket taken before now: ``pullers``' waiters, or everyone."""
        named = list(self._tickets) if pullers is None else pullers
        for puller in named:
            if (rung := self._tickets.pop(puller, None)) is not None:
                rung.set()

    async def wait(self, ticket: asyncio.Event, seconds: float) -> None:
        """Until the ticket is rung, or at most ``seconds`` (and never past SAFETY_SECONDS, or
        HEARD_SECONDS while every commit is heard)."""
        most = HEARD_SECONDS if self.heard else SAFETY_SECONDS
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ticket.wait(), max(0.0, min(seconds, most)))


def pullers_of(village_codes: Iterable[str]) -> set[str]:
    """The pullers whose feeds events of these villages reach: each village and its township."""
    return {code for village in village_codes for code in (village, village[:9])}


async def announce(conn: AsyncConnection, pullers: set[str]) -> None:
    """Have every listening process ring its bell for ``pullers`` when this transaction commits
    (PostgreSQL; never if it rolls back). Too many to name: everyone's."""
    if conn.dialect.name == "postgresql":
        named = ",".join(sorted(pullers))
        payload = named if len(named) <= MOST_NAMED else ""
        await conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


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
            await conn.add_listener(CHANNEL, lambda *note: self.bell.ring(_named(note[-1])))
            self.listening.set()
            self.bell.heard = True
            self.bell.ring()  # what committed while nobody listened
            await lost.wait()
        finally:
            self.bell.heard = False
            self.bell.ring()  # the waiters re-read, then wait as long as nothing is heard
            await conn.close(timeout=1.0)


def _named(payload: str) -> list[str] | None:
    """The pullers a notification names; None (everyone) if it names none."""
    return payload.split(",") if payload else None
