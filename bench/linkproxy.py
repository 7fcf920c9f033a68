"""TCP links that the district simulation can cut: ``python -m bench.linkproxy TARGET NAME...``.

One listening port per NAME (a township's uplink), each forwarding to TARGET (HOST:PORT, the
hub's gRPC server). Prints one JSON line {NAME: port} once listening, then reads commands on
stdin, one a line, and answers each with "ok" on stdout:

    cut NAME|all    close the link's connections (abort: the peer sees a reset) and refuse
                    new ones until mended, as a line that went down would
    mend NAME|all   accept and forward again
    quit

A separate process, so that forwarding costs the simulation's own event loop nothing.
"""

import asyncio
import json
import sys
from contextlib import suppress

CHUNK = 1 << 16


class Link:
    def __init__(self, name: str, target: tuple[str, int]) -> None:
        self.name = name
        self.target = target
        self.cut = False
        self.open: set[asyncio.StreamWriter] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.open.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for side in (writer, up_writer):
                self.open.discard(side)
                side.transport.abort()

    def sever(self) -> None:
        self.cut = True
        for writer in list(self.open):
            writer.transport.abort()
        self.open.clear()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


async def main(target: str, names: list[str]) -> None:
    host, _, port = target.rpartition(":")
    links = {name: Link(name, (host, int(port))) for name in names}
    ports = {}
    servers = []
    for name, link in links.items():
        server = await asyncio.start_server(link.serve, "127.0.0.1", 0)
        servers.append(server)
        ports[name] = server.sockets[0].getsockname()[1]
    print(json.dumps(ports), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        command, _, name = line.partition(" ")
        if command == "quit":
            break
        chosen = list(links.values()) if name == "all" else [links[name]]
        for link in chosen:
            if command == "cut":
                link.sever()
            elif command == "mend":
                link.cut = False
        print("ok", flush=True)
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
