"""HTTP/1.1 for the gateway: one `Connection` protocol per client connection, on the event loop.

Parsing is llhttp's (Node.js's parser, through httptools); the rest of what an ingestion
endpoint facing the internet needs is here: keep-alive and pipelining (answers go out in
request order), bodies with Content-Length or chunked, `Expect: 100-continue`, a bound on the
head and on the body, timeouts for idle and for stalled clients, and answers given before the
body was read (the rest of a body within the bound is read and dropped, keeping the connection;
past it, the answer says `connection: close` and the connection is closed after a linger).

A request is handed to the handler as soon as its head has arrived; the handler awaits the
body only if it wants it (`Request.body`). A server on granian spent more time handing each
request between threads than Sluice spends on it; here a request that arrives in one packet is
parsed, handled and answered without leaving the event loop's thread.
"""

import asyncio
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import cast
from urllib.parse import unquote

import httptools

from engine.errors import InvalidRequest, TooLarge

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]
Answer = tuple[int, Headers, bytes]
Handler = Callable[["Request"], Awaitable[Answer]]

MAX_HEAD_BYTES = 64 * 1024  # request line and headers
MAX_PIPELINED = 32  # requests of one connection in flight before it is read no further
IDLE_TIMEOUT = 75.0  # a kept-alive connection with nothing in flight
STALL_TIMEOUT = 30.0  # a head or body that stops arriving
STOP_GRACE = 25.0  # for requests in flight when the process is told to stop
LINGER = 2.0  # reading (and dropping) after a `connection: close` answer, so the client sees it

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Request:
    """One request: its head, and its body as it arrives."""

    __slots__ = (
        "_complete",
        "_connection",
        "_expects_continue",
        "_over",
        "_parts",
        "_size",
        "_waiter",
        "answer",
        "client",
        "headers",
        "keep_alive",
        "method",
        "path",
        "query_string",
        "scheme",
    )  # fmt: skip

    def __init__(
        self, connection: "Connection", method: str, target: bytes, headers: dict[str, str]
    ) -> None:
        url = httptools.parse_url(target)
        path = url.path.decode("latin-1")
        self.method = method
        self.path = unquote(path) if "%" in path else path
        self.query_string = url.query.decode("latin-1") if url.query else ""
        self.headers = headers
        self.client = connection.client
        self.scheme = connection.scheme
        self.keep_alive = True
        self.answer: bytes | None = None
        self._connection = connection
        self._parts: list[bytes] = []
        self._size = 0
        self._complete = False
        self._over = False  # past the connection's body bound: dropped
        self._waiter: asyncio.Future[None] | None = None
        self._expects_continue = headers.get("expect", "").lower() == "100-continue"

    @property
    def authority(self) -> str:
        return self.headers.get("host", "")

    async def body(self) -> bytes:
        """The whole body (not decoded); TooLarge past the connection's bound."""
        if not self._complete and not self._over:
            if self._expects_continue:  # the client waits for this before sending the body
                self._expects_continue = False
                self._connection.send(_CONTINUE)
            self._waiter = self._connection.loop.create_future()
            await self._waiter
        if self._over:
            raise TooLarge(f"the request is over the limit of {self._connection.max_body} bytes")
        return self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)

    @property
    def unread(self) -> bool:
        return not self._complete

    def _received(self, chunk: bytes) -> None:
        if self._over:
            return
        self._size += len(chunk)
        if self._size > self._connection.max_body:
            self._over = True
            self._parts.clear()
            self._wake()
        else:
            self._parts.append(chunk)

    def _completed(self) -> None:
        self._complete = True
        self._wake()

    def _lost(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(
                InvalidRequest("the client closed the connection before the body was complete")
            )

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _drops_the_rest(self) -> bool:
        """Answered before its body was read: can the rest be read and dropped (keeping the
        connection), rather than the connection closed?"""
        declared = self.headers.get("content-length", "")
        if self._over or self._expects_continue or not declared.isdigit():
            return False  # (a client waiting for 100 Continue sends no body at all)
        if int(declared) > self._connection.max_body:
            return False
        self._parts.clear()
        self._over = True  # (whatever else arrives is dropped)
        return True


class Connection(asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: "Server") -> None:
        self._server = server
        self.max_body = server.max_body
        self.scheme = server.scheme
        # (kept: in Python 3.11 each asyncio.get_running_loop() is a getpid() system call)
        self.loop = server.loop
        self.client = ""
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Request] = deque()  # in flight, in order
        self._receiving: Request | None = None  # head complete, body still arriving
        self._in_head = False
        self._head_bytes = 0
        self._target = b""
        self._headers: dict[str, str] = {}
        self._paused = False
        self._closing = False  # the last answer said `connection: close`
        self._ended = False  # the client sends no more
        self.seen = 0.0  # when data last arrived

    # -- the transport's side -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.client = f"{peer[0]}:{peer[1]}" if peer else ""
        self.seen = self._server.now()
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._transport = None
        if self._receiving is not None:
            self._receiving._lost()
        # Requests being handled run to their end (their events may already be committing).

    def data_received(self, data: bytes) -> None:
        self.seen = self._server.now()
        if self._closing:
            return  # lingering: dropped
        try:
            self._parser.feed_data(data)
            if self._in_head:  # (a head arriving in pieces: what came of it so far)
                self._count(len(data))
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported")
        except _HeadTooLarge:
            self._refuse(431, f"the request head is over {MAX_HEAD_BYTES} bytes")
        except httptools.HttpParserError as exc:
            self._refuse(400, f"malformed HTTP request: {exc}")

    def eof_received(self) -> bool:
        # A client that half-closes after its requests still gets their answers, then the
        # connection is closed.
        self._ended = True
        return bool(self._queue)

    # -- the parser's side ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._target = b""
        self._headers = {}

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        self._target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        known = self._headers.get(key)
        self._headers[key] = text if known is None else f"{known}, {text}"

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._parser.should_upgrade():
            return  # (refused once the parser stops at it)
        method = self._parser.get_method().decode("latin-1")
        request = Request(self, method, self._target, self._headers)
        request.keep_alive = self._parser.should_keep_alive()
        self._receiving = request
        self._queue.append(request)
        self.loop.create_task(self._serve(request))
        if len(self._queue) >= MAX_PIPELINED and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True

    def on_body(self, chunk: bytes) -> None:
        if self._receiving is not None:
            self._receiving._received(chunk)

    def on_message_complete(self) -> None:
        if self._receiving is not None:
            self._receiving._completed()
            self._receiving = None

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _HeadTooLarge

    # -- answers --------------------------------------------------------------------------

    async def _serve(self, request: Request) -> None:
        try:
            status, headers, body = await self._server.handler(request)
        except Exception:  # the handler answers its own errors; this is a last resort
            log.exception("unexpected error answering a %s request", request.method)
            status, headers, body = 500, [], b"internal error"
        if request.unread and not request._drops_the_rest():
            request.keep_alive = False
        if self._server.stopping:
            request.keep_alive = False
        request.answer = self._server.render(
            status, headers, b"" if request.method == "HEAD" else body, request.keep_alive
        )
        self._flush()

    def _flush(self) -> None:
        """Write the answers that are ready, in request order."""
        while self._queue and self._queue[0].answer is not None:
            request = self._queue.popleft()
            if self._transport is None or self._closing:
                continue
            self._transport.write(request.answer)  # type: ignore[arg-type]
            if not request.keep_alive:
                self._close_after_answer()
        if self._ended and not self._queue and self._transport is not None:
            self._transport.close()
        if self._paused and len(self._queue) < MAX_PIPELINED // 2 and self._transport:
            self._paused = False
            self._transport.resume_reading()

    def send(self, data: bytes) -> None:
        if self._transport is not None and not self._closing:
            self._transport.write(data)

    def _refuse(self, status: int, message: str) -> None:
        """An answer to what could not be parsed: after those before it, then close."""
        request = Request(self, "GET", b"/", {})
        request.keep_alive = False
        request.answer = self._server.render(
            status, [("content-type", "text/plain; charset=utf-8")], message.encode(), False
        )
        if self._receiving is not None:
            self._receiving._lost()
            self._receiving = None
        self._queue.append(request)
        self._flush()

    def _close_after_answer(self) -> None:
        """Stop reading requests; let the client read the answer before the connection goes
        (closing at once, with its upload unread, would reset the connection under it)."""
        self._closing = True
        transport = self._transport
        if transport is None:
            return
        if self._paused:
            transport.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(LINGER, transport.close)

    def expire(self, now: float) -> None:
        """Close the connection if its client has gone quiet for too long."""
        if self._transport is None or self._closing:
            return
        quiet = now - self.seen
        stalled = self._in_head or (self._receiving is not None and self._receiving.unread)
        if (stalled and quiet > STALL_TIMEOUT) or (not self._queue and quiet > IDLE_TIMEOUT):
            self._transport.close()

    def close_if_idle(self) -> None:
        if self._transport is not None and not self._queue and not self._in_head:
            self._transport.close()

    @property
    def busy(self) -> bool:
        return bool(self._queue)


class _HeadTooLarge(Exception):
    pass


class Server:
    """The connections of one process, their handler and their shared clock."""

    def __init__(self, handler: Handler, *, max_body: int, scheme: str = "http") -> None:
        self.handler = handler
        self.max_body = max_body
        self.scheme = scheme
        self.connections: set[Connection] = set()
        self.stopping = False
        self.loop = asyncio.get_running_loop()
        self._date = ""
        self._sweeper: asyncio.Task[None] | None = None

    def now(self) -> float:
        return self.loop.time()

    def protocol(self) -> Connection:
        return Connection(self)

    def start(self) -> None:
        self._tick()
        self._sweeper = self.loop.create_task(self._sweep(), name="http-sweeper")

    async def stop(self, grace: float) -> None:
        """Close idle connections, let those with requests in flight finish (up to `grace`
        seconds), then close the rest."""
        self.stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        deadline = self.now() + grace
        while self.now() < deadline:
            for connection in list(self.connections):
                connection.close_if_idle()
            if not any(connection.busy for connection in self.connections):
                break
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            if connection._transport is not None:
                connection._transport.close()

    def render(self, status: int, headers: Headers, body: bytes, keep_alive: bool) -> bytes:
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n{self._date}"]
        head += [f"{name}: {value}\r\n" for name, value in headers]
        if not keep_alive:
            head.append("connection: close\r\n")
        head.append(f"content-length: {len(body)}\r\n\r\n")
        return "".join(head).encode("latin-1") + body

    def _tick(self) -> None:
        self._date = f"date: {formatdate(usegmt=True)}\r\n"

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._tick()
            now = self.now()
            for connection in list(self.connections):
                connection.expire(now)


async def serve(
    handler: Handler, sock: socket.socket, *, max_body: int, backlog: int, until: asyncio.Event
) -> None:
    """Answer on `sock` (bound and listening, maybe shared with other processes) until `until`
    is set; then let the requests in flight finish."""
    server = Server(handler, max_body=max_body)
    server.start()
    listener = await asyncio.get_running_loop().create_server(
        server.protocol, sock=sock, backlog=backlog
    )
    await until.wait()
    listener.close()  # (this process's copy of the socket: the others go on accepting)
    await server.stop(grace=STOP_GRACE)
