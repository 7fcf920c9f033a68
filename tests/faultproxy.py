"""A fault-injecting TCP proxy for end-to-end tests of a link that breaks mid-batch.

It listens on a loopback port and forwards every connection it accepts to a target address.
Traffic passes untouched until the test arms a fault; a fault fires once, after a given number
of further bytes has gone toward the target (client -> target, where the pushed batches go), so
it lands in the middle of a request, and then the proxy passes traffic again:

- ``reset_after(n)``: every open connection is reset (RST to both sides);
- ``stall_after(n, seconds, directions)``: forwarding stops in the given directions for
  ``seconds``, the connections staying open; then everything held back is delivered;
- ``passthrough()``: disarm what is armed and end a stall now.

The proxy runs its own asyncio loop in a daemon thread; the test drives it from its thread.
"""

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

UP, DOWN = "up", "down"  # toward the target; back toward the client
CHUNK = 16 * 1024


@dataclass
class _Fault:
    kind: str  # "reset" or "stall"
    remaining: int  # bytes toward the target still to pass before it fires
    seconds: float = 0.0
    directions: tuple[str, ...] = (UP, DOWN)


class _Link:
    """One proxied connection: the client's side and the target's side."""

    def __init__(self, client: asyncio.StreamWriter, target: asyncio.StreamWriter) -> None:
        self.writers = (client, target)
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            for writer in self.writers:
                writer.close()

    def reset(self) -> None:
        """Drop both connections with a TCP reset (no orderly FIN)."""
        self.closed = True
        for writer in self.writers:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()


class FaultProxy:
    """``with FaultProxy("127.0.0.1:50061") as proxy:`` then point a client at proxy.address."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = 0
        self.connections = 0  # accepted so far
        self.resets = 0  # reset faults fired
        self.stalls = 0  # stall faults fired
        self._fault: _Fault | None = None
        self._stall = 0  # which stall the gates are closed for: only its own timer reopens them
        self._fired = threading.Event()
        self._ready = threading.Event()
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> "FaultProxy":
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)

    def reset_after(self, nbytes: int) -> None:
        """Reset every open connection once ``nbytes`` more bytes have gone toward the target."""
        self._arm(_Fault("reset", max(1, nbytes)))

    def stall_after(self, nbytes: int, seconds: float, directions: tuple[str, ...] = (UP, DOWN)) -> None:
        """Stop forwarding in ``directions`` for ``seconds`` once ``nbytes`` more bytes have gone
        toward the target; connections stay open and nothing is lost."""
        self._arm(_Fault("stall", max(1, nbytes), seconds, directions))

    def passthrough(self) -> None:
        """Disarm any armed fault and end a stall at once: traffic passes untouched."""
        self._fired.clear()
        self._loop.call_soon_threadsafe(self._disarm)

    def wait_fired(self, timeout: float) -> bool:
        """Block until the armed fault has fired; False if it did not within ``timeout``."""
        return self._fired.wait(timeout)

    def _disarm(self) -> None:
        self._fault = None
        self._stall += 1
        for gate in self._gates.values():
            gate.set()

    def _arm(self, fault: _Fault) -> None:
        self._fired.clear()
        self._loop.call_soon_threadsafe(setattr, self, "_fault", fault)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._gates = {UP: asyncio.Event(), DOWN: asyncio.Event()}
        for gate in self._gates.values():
            gate.set()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        self._ready.set()
        async with server:
            await self._stopping.wait()
        for link in list(self._links):
            link.reset()
        self._disarm()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            try:
                target_reader, target_writer = await asyncio.open_connection(*self.target)
            except OSError:
                writer.transport.abort()
                return
            link = _Link(writer, target_writer)
            self._links.add(link)
            self.connections += 1
            try:
                await asyncio.gather(
                    self._pump(link, reader, target_writer, UP),
                    self._pump(link, target_reader, writer, DOWN),
                )
            finally:
                self._links.discard(link)
                link.close()
        finally:
            self._handlers.discard(task)

    async def _pump(
        self, link: _Link, source: asyncio.StreamReader, sink: asyncio.StreamWriter, direction: str
    ) -> None:
        """Copy one direction of a link until either side ends it; the faults fire here."""
        try:
            while not link.closed:
                data = await source.read(CHUNK)
                if not data:
                    break
                for piece in self._pieces(data, direction):
                    if link.closed:
                        return
                    await self._send(sink, piece, direction)
        except OSError:  # reset by a peer or by a fault
            pass
        finally:
            link.close()

    def _pieces(self, data: bytes, direction: str) -> Iterator[bytes]:
        """The chunk to forward, split where an armed fault fires (it fires in between)."""
        fault = self._fault
        if direction != UP or fault is None:
            yield data
            return
        if len(data) < fault.remaining:
            fault.remaining -= len(data)
            yield data
            return
        head, rest = data[: fault.remaining], data[fault.remaining :]
        self._fault = None
        yield head
        self._fire(fault)
        if rest:
            yield rest

    def _fire(self, fault: _Fault) -> None:
        if fault.kind == "reset":
            self.resets += 1
            for link in list(self._links):
                link.reset()
        else:
            self.stalls += 1
            self._stall += 1
            for direction in fault.directions:
                self._gates[direction].clear()
            self._loop.call_later(fault.seconds, self._resume, self._stall)
        self._fired.set()

    def _resume(self, stall: int) -> None:
        if stall == self._stall:
            for gate in self._gates.values():
                gate.set()

    async def _send(self, sink: asyncio.StreamWriter, data: bytes, direction: str) -> None:
        await self._gates[direction].wait()
        sink.write(data)
        await sink.drain()
