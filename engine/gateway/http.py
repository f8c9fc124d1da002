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
import contextlib
import logging
import socket
import ssl
import struct
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote

import httptools
import msgspec

from engine.errors import InvalidRequest, TooLarge

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]
Answer = tuple[int, Headers, bytes]
Handler = Callable[["Request"], Awaitable[Answer]]

MAX_HEAD_BYTES = 64 * 1024  # request line and headers
MAX_PIPELINED = 32  # requests of one connection handled at once; more wait their turn
MAX_BUFFERED = 1 << 20  # answers a client has not read yet, before its connection is read no more
IDLE_TIMEOUT = 75.0  # a kept-alive connection with nothing in flight
STALL_TIMEOUT = 30.0  # a head, a body or the reading of answers that stops moving
HEAD_DEADLINE = 30.0  # a head must be whole this long after it began, however it trickles in
BODY_DEADLINE = 300.0  # and a body (4 MB at 14 KB/s)
STOP_GRACE = 25.0  # for requests in flight when the process is told to stop
LINGER = 2.0  # reading (and dropping) after a `connection: close` answer, so the client sees it

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_REFUSALS = {400: "bad_request", 431: "header_too_large"}  # codes of what cannot be parsed
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_NO_LENGTH = frozenset({204, 304})
_LINGER_OFF = struct.pack("ii", 1, 0)  # answers that carry no Content-Length (RFC 9110)


class Request:
    """One request: its head, and its body as it arrives."""

    __slots__ = (
        "_complete", "_connection", "_continue", "_gone", "_over", "_parts", "_size",
        "_waiter", "answer", "client", "headers", "keep_alive", "method", "path",
        "query_string", "scheme", "started",
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
        self.started = connection.loop.time()
        self._connection = connection
        self._parts: list[bytes] = []
        self._size = 0
        self._complete = False
        self._over = False  # past the connection's body bound: dropped
        self._gone = ""  # why the body will not come (the connection ended, or it is malformed)
        self._waiter: asyncio.Future[None] | None = None
        # 100 Continue: awaited by the client, sent (in turn) once the body is wanted
        self._continue = headers.get("expect", "").lower() == "100-continue"

    @property
    def authority(self) -> str:
        return self.headers.get("host", "")

    async def body(self) -> bytes:
        """The whole body (not decoded); TooLarge past the connection's bound."""
        if not self._complete and not self._over and not self._gone:
            if self._continue:  # the client waits for this before sending the body
                self._connection.send_continue(self)
            self._waiter = self._connection.loop.create_future()
            await self._waiter
        if self._over:
            raise TooLarge(f"the request is over the limit of {self._connection.max_body} bytes")
        if self._gone:
            raise InvalidRequest(self._gone)
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

    def _lost(self, why: str) -> None:
        self._gone = why
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _drops_the_rest(self) -> bool:
        """Answered before its body was read: can the rest be read and dropped (keeping the
        connection), rather than the connection closed?"""
        declared = self.headers.get("content-length", "")
        if self._over or self._gone or self._continue or not declared.isdigit():
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
        self._queue: deque[Request] = deque()  # received, not yet answered, in order
        self._waiting: deque[Request] = deque()  # of those, not handled yet: waiting their turn
        self._running = 0  # handled now
        self._receiving: Request | None = None  # head complete, body still arriving
        self._in_head = False
        self._head_began = 0.0
        self._head_bytes = 0  # of the head being received: its complete parts
        self._head_raw = 0  # and as read
        self._heads_done = 0
        self._body_in_read = 0
        self._target = b""
        self._headers: dict[str, str] = {}
        self._reading = True
        self._writable = True  # the client reads what is written (else: stop reading it)
        self._closing = False  # the last answer said `connection: close`, or it failed
        self._broken = False  # a request could not be parsed: the rest is dropped
        self._ended = False  # the client sends no more
        self.seen = 0.0  # when data last arrived or an answer was written

    # -- the transport's side -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._transport.set_write_buffer_limits(high=MAX_BUFFERED)
        peer = transport.get_extra_info("peername")
        self.client = f"{peer[0]}:{peer[1]}" if peer else ""
        self.seen = self.loop.time()
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        self._transport = None
        self._closing = True
        self._waiting.clear()  # (never handled: their client is gone)
        for request in self._queue:  # (handlers already running go on: their events may be
            # committing)
            request._lost("the client closed the connection before the body was complete")
        self._receiving = None

    def pause_writing(self) -> None:
        self._writable = False
        self._read_or_not()

    def resume_writing(self) -> None:
        self._writable = True
        self.seen = self.loop.time()
        self._start_handlers()
        self._read_or_not()

    def data_received(self, data: bytes) -> None:
        self.seen = self.loop.time()
        if self._closing or self._broken:
            return  # lingering, or past a request that could not be parsed: dropped
        heads_before, self._body_in_read = self._heads_done, 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported")
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(431, f"the request head is over {MAX_HEAD_BYTES} bytes")
            else:
                self._refuse(400, f"malformed HTTP request: {exc}")
            return
        if self._in_head and self._heads_done == heads_before:
            # A head arriving in pieces (its parts are counted as they complete): with no head
            # completed in this read, all of it but a body's end before it is this head.
            self._head_raw += len(data) - self._body_in_read
            if self._head_raw > MAX_HEAD_BYTES:
                self._refuse(431, f"the request head is over {MAX_HEAD_BYTES} bytes")

    def eof_received(self) -> bool:
        # A client that half-closes after its requests still gets their answers, then the
        # connection is closed.
        self._ended = True
        return bool(self._queue)

    # -- the parser's side ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_began = self.loop.time()
        self._head_bytes = self._head_raw = 0
        self._target = b""
        self._headers = {}

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        self._target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            return  # a chunked body's trailer: never taken for a header of the request
        self._count(len(name) + len(value))
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        known = self._headers.get(key)
        self._headers[key] = text if known is None else f"{known}, {text}"

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._heads_done += 1
        if self._parser.should_upgrade():
            return  # (refused once the parser stops at it)
        method = self._parser.get_method().decode("latin-1")
        request = Request(self, method, self._target, self._headers)
        request.keep_alive = self._parser.should_keep_alive()
        self._receiving = request
        self._queue.append(request)
        self._waiting.append(request)
        self._start_handlers()
        self._read_or_not()

    def on_body(self, chunk: bytes) -> None:
        self._body_in_read += len(chunk)
        if self._receiving is not None:
            self._receiving._received(chunk)

    def on_message_complete(self) -> None:
        if self._receiving is not None:
            self._receiving._completed()
            self._receiving = None

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _HeadTooLarge  # (httptools hands it on as the context of its own error)

    # -- answers --------------------------------------------------------------------------

    def _start_handlers(self) -> None:
        """Handle the requests received, in order, at most MAX_PIPELINED at once."""
        while self._waiting and self._running < MAX_PIPELINED and self._writable:
            self._running += 1
            self._server.spawn(self._serve(self._waiting.popleft()))

    async def _serve(self, request: Request) -> None:
        try:
            status, headers, body = await self._server.handler(request)
        except Exception:  # the handler answers its own errors; this is a last resort
            log.exception("unexpected error answering a %s request", request.method)
            status, headers, body = 500, [], b"internal error"
        self._running -= 1
        if request.unread and not request._drops_the_rest():
            request.keep_alive = False
        if self._server.stopping:
            request.keep_alive = False
        try:
            request.answer = self._server.render(
                status, headers, body, request.keep_alive, head=request.method == "HEAD"
            )
        except Exception:  # (a header value that is not Latin-1): still an answer
            log.exception("cannot write the answer to a %s request", request.method)
            request.keep_alive = False
            request.answer = self._server.render(500, [], b"internal error", False)
        self._flush()

    def _flush(self) -> None:
        """Write the answers that are ready, in request order."""
        while self._queue and self._queue[0].answer is not None:
            request = self._queue.popleft()
            if self._transport is None or self._closing:
                continue
            self._transport.write(request.answer)  # type: ignore[arg-type]
            self.seen = self.loop.time()
            if not request.keep_alive:
                self._close_after_answer()
        if self._queue and self._queue[0]._continue and self._queue[0]._waiter is not None:
            self.send_continue(self._queue[0])  # (its turn has come)
        if self._ended and not self._queue and self._transport is not None:
            self._transport.close()
        self._start_handlers()
        self._read_or_not()

    def send_continue(self, request: Request) -> None:
        """`100 Continue` for `request`, once the answers before it are written."""
        if self._queue and self._queue[0] is request and request._continue:
            request._continue = False
            if self._transport is not None and not self._closing:
                self._transport.write(_CONTINUE)

    def _read_or_not(self) -> None:
        """Read on while the client reads its answers and few requests wait."""
        transport = self._transport
        if transport is None or self._closing:
            return
        reading = self._writable and len(self._queue) < MAX_PIPELINED
        if reading != self._reading:
            self._reading = reading
            if reading:
                transport.resume_reading()
            else:
                transport.pause_reading()

    def _refuse(self, status: int, message: str) -> None:
        """An answer to what could not be parsed (in the gateway's error shape, as the app's
        refusals), after those before it; then the connection is read no more and closed."""
        if self._receiving is not None:
            self._receiving._lost(message)
            self._receiving = None
        request = Request(self, "GET", b"/", {})
        request.keep_alive = False
        said = msgspec.json.encode({"code": _REFUSALS[status], "message": message})
        request.answer = self._server.render(
            status, [("content-type", "application/json")], said, False
        )
        self._broken = True  # (the parser is in its error state: nothing more is fed to it)
        self._queue.append(request)
        self._flush()

    def _close_after_answer(self) -> None:
        """Stop reading requests; let the client read the answer before the connection goes
        (closing at once, with its upload unread, would reset the connection under it)."""
        self._closing = True
        transport = self._transport
        if transport is None:
            return
        if not self._reading:
            self._reading = True
            transport.resume_reading()  # (what still comes is read and dropped)
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(LINGER, _drop, transport)

    def expire(self, now: float) -> None:
        """Drop the connection if its client has gone quiet, or slow, for too long."""
        transport = self._transport
        if transport is None or self._closing:
            return
        quiet = now - self.seen
        if not self._writable:  # the client does not read its answers
            if quiet > STALL_TIMEOUT:
                _drop(transport)
            return
        receiving = self._receiving
        if self._in_head:
            stalled = quiet > STALL_TIMEOUT or now - self._head_began > HEAD_DEADLINE
        elif receiving is not None and receiving.unread and self._reading:
            stalled = quiet > STALL_TIMEOUT or now - receiving.started > BODY_DEADLINE
        else:
            stalled = not self._queue and quiet > IDLE_TIMEOUT
        if stalled:
            _drop(transport)

    def close_if_idle(self) -> None:
        if self._transport is not None and not self._queue and not self._in_head:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            _drop(self._transport)

    @property
    def busy(self) -> bool:
        return bool(self._queue)


class _HeadTooLarge(Exception):
    pass


def _drop(transport: asyncio.Transport) -> None:
    """Close now, what is not sent yet discarded (a reset), not left for the kernel to trickle
    out to a client that does not read."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_OFF)
    transport.abort()


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
        self._tasks: set[asyncio.Task[None]] = set()  # (held: the loop keeps only weak ones)

    def protocol(self) -> Connection:
        return Connection(self)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start(self) -> None:
        self._tick()
        self._sweeper = self.loop.create_task(self._sweep(), name="http-sweeper")

    async def stop(self, grace: float) -> None:
        """Close idle connections, let those with requests in flight finish (up to `grace`
        seconds), then drop the rest."""
        self.stopping = True
        deadline = self.loop.time() + grace
        while self.loop.time() < deadline:
            for connection in list(self.connections):
                connection.close_if_idle()
            if not any(connection.busy for connection in self.connections):
                break
            await asyncio.sleep(0.05)
        for connection in list(self.connections):
            connection.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()

    def render(
        self, status: int, headers: Headers, body: bytes, keep_alive: bool, *, head: bool = False
    ) -> bytes:
        """The answer's bytes; for a HEAD request, the head a GET would get, without the body."""
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n{self._date}"]
        lines += [f"{name}: {value}\r\n" for name, value in headers]
        if not keep_alive:
            lines.append("connection: close\r\n")
        if status not in _NO_LENGTH:
            lines.append(f"content-length: {len(body)}\r\n")
        lines.append("\r\n")
        encoded = "".join(lines).encode("latin-1")
        return encoded if head or status in _NO_LENGTH else encoded + body

    def _tick(self) -> None:
        self._date = f"date: {formatdate(usegmt=True)}\r\n"

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._tick()
            now = self.loop.time()
            for connection in list(self.connections):
                connection.expire(now)


async def serve(
    handler: Handler,
    sock: socket.socket,
    *,
    max_body: int,
    backlog: int,
    until: asyncio.Event,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Answer on `sock` (bound and listening, maybe shared with other processes) until `until`
    is set; then let the requests in flight finish. With `tls`, the connections are HTTPS."""
    server = Server(handler, max_body=max_body, scheme="https" if tls else "http")
    server.start()
    loop = asyncio.get_running_loop()
    if tls is None:
        listener = await loop.create_server(server.protocol, sock=sock, backlog=backlog)
    else:
        listener = await loop.create_server(
            server.protocol, sock=sock, backlog=backlog, ssl=tls,
            ssl_handshake_timeout=STALL_TIMEOUT,
        )  # fmt: skip
    await until.wait()
    listener.close()  # (this process's copy of the socket: the others go on accepting)
    await server.stop(grace=STOP_GRACE)
