"""A small HTTP/1.1 server on the node's own asyncio loop: ``/metrics`` on every node, and
whatever pages a tier adds (the district's dashboard, the village agent's intake app).

The standard library is enough for what it serves (a few GET pages, a login form, the village
intake app's forms with scans: see relay/multipart.py), so it adds no dependency. It is built
to stay up whatever a client sends: one request per connection, a bounded head and body (larger
only on the paths a server names for files), a time limit on reading and on answering, a
bounded number of connections at once; a bad request gets a 4xx, a failing page a 500, and
neither reaches the relay. ``/metrics`` needs no login: bind ``--http`` to an internal address
(or firewall it).
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, quote, unquote, urlsplit

import structlog

from casework import InvalidInput
from relay import metrics, multipart, scrape
from relay.node import Node

MAX_HEAD = 16 * 1024  # request line and headers
MAX_BODY = 16 * 1024  # a login form is a few dozen bytes
MAX_UPLOAD = 32 * 1024 * 1024  # a form with scans of materials, on the paths a server allows it
MAX_FIELDS = 20  # query or form fields
READ_SECONDS = 10.0  # to receive the whole request
ANSWER_SECONDS = 30.0  # to make the answer
MAX_CONNECTIONS = 64  # at once; more are answered 503 at once
METHODS = ("GET", "HEAD", "POST")

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str  # percent-decoded
    query: dict[str, str]  # the first value of each field
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    def form(self) -> dict[str, str]:
        """An application/x-www-form-urlencoded body; HTTPError 400 if it is not one."""
        try:
            return _fields(self.body.decode("utf-8", errors="strict"))
        except UnicodeDecodeError as exc:
            raise HTTPError(400, "the form is not UTF-8") from exc

    def parts(self) -> multipart.Parts:
        """A multipart/form-data body (a form with files); HTTPError 400 if it is not one."""
        try:
            return multipart.parse(self.headers.get("content-type", ""), self.body)
        except multipart.MultipartError as exc:
            raise HTTPError(400, str(exc)) from exc

    def cookie(self, name: str) -> str | None:
        jar: SimpleCookie = SimpleCookie()
        with contextlib.suppress(CookieError):
            jar.load(self.headers.get("cookie", ""))
        morsel = jar.get(name)
        return morsel.value if morsel is not None else None


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default=())


Handler = Callable[[Request], Awaitable[Response]]
Uploads = Callable[[str], bool]  # whether a path takes a body up to MAX_UPLOAD (files)


class HTTPError(Exception):
    """A request this server refuses, with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def text(status: int, message: str) -> Response:
    return Response(status, (message + "\n").encode())


def redirect(location: str, *headers: tuple[str, str]) -> Response:
    """303 See Other: after a form, or to the login page. The location is a path on this
    server; anything outside printable ASCII is percent-encoded."""
    return Response(303, b"", headers=(("Location", quote(location, safe="/?=&%#:")), *headers))


def node_routes(node: Node, pages: Handler | None = None) -> Handler:
    """``/metrics`` for every node; everything else goes to the tier's pages, if it has any."""

    async def handle(request: Request) -> Response:
        if request.path == "/metrics":
            if request.method == "POST":
                raise HTTPError(405, "GET /metrics")
            body = metrics.render(await scrape.collect(node)).encode()
            return Response(200, body, metrics.CONTENT_TYPE)
        if pages is None:
            raise HTTPError(404, "not found: this node serves /metrics only")
        return await pages(request)

    return handle


async def start_http(
    listen: str, handler: Handler, uploads: Uploads | None = None
) -> tuple[asyncio.Server, int]:
    """A listening server that answers each connection's request with ``handler``; returns
    the server and its port (useful with port 0). A POST to a path ``uploads`` accepts may
    carry a body up to MAX_UPLOAD; every other body stays within MAX_BODY."""
    host, port = _address(listen)
    slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _connection(reader, writer, handler, slots, uploads or _no_uploads)

    try:
        server = await asyncio.start_server(connected, host, port, limit=MAX_HEAD)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InvalidInput(
            f"cannot serve HTTP on {listen}: {reason}", "http_unusable", listen=listen, reason=reason
        ) from exc
    return server, int(server.sockets[0].getsockname()[1])


def _address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or int(port) > 65535:
        raise InvalidInput(
            f"--http {listen!r}: give HOST:PORT, e.g. 127.0.0.1:8080", "http_address", listen=listen
        )
    return host, int(port)


async def _connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handler: Handler,
    slots: asyncio.Semaphore,
    uploads: Uploads,
) -> None:
    try:
        if slots.locked():
            await _write(writer, text(503, "busy: try again in a moment"), head_only=False)
            return
        async with slots:
            await _exchange(reader, writer, handler, uploads)
    except (ConnectionError, TimeoutError):
        pass  # the client went away; nothing to answer
    except Exception as exc:  # never let one connection end the node
        log.error("http.connection.failed", error=type(exc).__name__)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1)


def _no_uploads(path: str) -> bool:
    return False


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler, uploads: Uploads
) -> None:
    started = time.monotonic()
    try:
        request = await asyncio.wait_for(_read(reader, uploads), READ_SECONDS)
    except HTTPError as exc:
        await _write(writer, text(exc.status, str(exc)), head_only=False)
        return
    except (asyncio.IncompleteReadError, TimeoutError):
        return  # closed or too slow before a whole request came: drop it
    try:
        response = await asyncio.wait_for(handler(request), ANSWER_SECONDS)
    except HTTPError as exc:
        response = text(exc.status, str(exc))
    except Exception as exc:  # a failing page; logged without the request's content
        log.error("http.request.failed", path=request.path[:100], error=type(exc).__name__)
        response = text(500, "the page failed; see the node's log")
    await _write(writer, response, head_only=request.method == "HEAD")
    if request.path != "/metrics" or response.status >= 400:
        log.info(
            "http.request",
            method=request.method,
            path=request.path[:100],
            status=response.status,
            ms=round((time.monotonic() - started) * 1000),
        )


async def _read(reader: asyncio.StreamReader, uploads: Uploads) -> Request:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise HTTPError(431, "request head too large") from exc
    lines = head.decode("latin-1").split("\r\n")
    method, target = _request_line(lines[0])
    headers = _headers(lines[1:])
    parts = urlsplit(target)
    try:
        path = unquote(parts.path, errors="strict")
    except UnicodeDecodeError as exc:
        raise HTTPError(400, "the path is not UTF-8") from exc
    length = _length(headers, MAX_UPLOAD if method == "POST" and uploads(path) else MAX_BODY)
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, _fields(parts.query), headers, body)


def _request_line(line: str) -> tuple[str, str]:
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HTTPError(400, "bad request line")
    method, target, _ = parts
    if method not in METHODS:
        raise HTTPError(405, f"method not allowed: use {', '.join(METHODS)}")
    if not target.startswith("/"):
        raise HTTPError(400, "the target must be a path")
    return method, target


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HTTPError(400, "bad header line")
        key = name.lower()
        if key in headers and key in ("content-length", "host", "transfer-encoding"):
            raise HTTPError(400, f"repeated {name} header")
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return headers


def _length(headers: dict[str, str], limit: int) -> int:
    if "transfer-encoding" in headers:
        raise HTTPError(501, "chunked requests are not supported: send Content-Length")
    given = headers.get("content-length", "0")
    if not given.isdigit():
        raise HTTPError(400, "bad Content-Length")
    if int(given) > limit:
        raise HTTPError(413, f"request body larger than {limit} bytes")
    return int(given)


def _fields(encoded: str) -> dict[str, str]:
    try:
        parsed = parse_qs(encoded, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPError(400, "bad query or form fields") from exc
    return {key: values[0] for key, values in parsed.items()}


async def _write(writer: asyncio.StreamWriter, response: Response, head_only: bool) -> None:
    reason = HTTPStatus(response.status).phrase
    headers = [
        ("Content-Type", response.content_type),
        ("Content-Length", str(len(response.body))),
        ("Connection", "close"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        *response.headers,
    ]
    head = f"HTTP/1.1 {response.status} {reason}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    writer.write(head.encode("latin-1") + (b"" if head_only else response.body))
    await asyncio.wait_for(writer.drain(), READ_SECONDS)
