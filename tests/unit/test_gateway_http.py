"""The gateway's HTTP/1.1 layer, spoken to over real sockets, byte by byte where it matters."""

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import pytest

from engine.errors import InvalidRequest, TooLarge
from engine.gateway import http
from engine.gateway.http import Answer, Request

MAX_BODY = 1000


class Echo:
    """A handler answering with what it was sent; `/slow/<ms>` waits first, `/nobody` answers
    without reading the body."""

    def __init__(self) -> None:
        self.finished: list[str] = []
        self.running = self.most_running = 0

    async def __call__(self, request: Request) -> Answer:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            return await self._answer(request)
        finally:
            self.running -= 1

    async def _answer(self, request: Request) -> Answer:
        if request.path.startswith("/slow/"):
            await asyncio.sleep(int(request.path.rsplit("/", 1)[1]) / 1000)
        if request.path == "/nobody":
            self.finished.append(request.path)
            return 401, [("content-type", "text/plain")], b"no"
        if request.path == "/huge":
            return 200, [], b"x" * 300_000
        if request.path == "/empty":
            return 204, [], b""
        try:
            body = await request.body()
        except TooLarge:
            return 413, [], b"too large"
        except InvalidRequest as exc:
            return 400, [], exc.message.encode()
        self.finished.append(request.path)
        text = f"{request.method} {request.path} {request.query_string} {body.decode()}"
        return 200, [("x-seen", request.headers.get("x-seen", ""))], text.encode()


@contextlib.asynccontextmanager
async def serving(handler: Echo) -> AsyncIterator[tuple[str, int]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    stop = asyncio.Event()
    task = asyncio.create_task(http.serve(handler, sock, max_body=MAX_BODY, backlog=16, until=stop))
    try:
        yield sock.getsockname()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        sock.close()


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = dict(line.lower().split(": ", 1) for line in head[1:] if line)
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    with_body = b"POST /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Seen: yes\r\nContent-Length: 5\r\n\r\nhello"
    async with serving(Echo()) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        for _ in range(3):
            writer.write(with_body)
            status, headers, body = await read_answer(reader)
            assert (status, body) == (200, b"POST /a x=1 hello")
            assert headers["x-seen"] == "yes"
            assert "date" in headers and "connection" not in headers
        writer.close()


async def test_pipelined_requests_are_answered_in_their_order() -> None:
    async with serving(Echo()) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            b"GET /slow/200 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /slow/0 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /slow/100 HTTP/1.1\r\nHost: h\r\n\r\n"
        )
        answers = [(await read_answer(reader))[2] for _ in range(3)]
        assert answers == [b"GET /slow/200  ", b"GET /slow/0  ", b"GET /slow/100  "]
        writer.close()


async def test_a_chunked_body_arriving_in_pieces_is_whole() -> None:
    async with serving(Echo()) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"\r\n2\r\nde\r\n0\r\n\r\n")
        assert (await read_answer(reader))[2] == b"POST /c  abcde"
        writer.close()


async def test_expect_continue_is_answered_when_the_body_is_wanted() -> None:
    async with serving(Echo()) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"abc")
        assert (await read_answer(reader))[:3:2] == (200, b"POST /e  abc")
        # Refused before the body: no 100, and the connection is closed after the answer.
        writer.write(
            b"POST /nobody HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        status, headers, _ = await read_answer(reader)
        assert (status, headers["connection"]) == (401, "close")
        assert await reader.read() == b""
        writer.close()


async def test_an_answer_before_the_body_drops_the_rest_and_keeps_the_connection() -> None:
    handler = Echo()
    async with serving(handler) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /nobody HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n01234")
        status, headers, body = await read_answer(reader)
        assert (status, body) == (401, b"no") and "connection" not in headers
        writer.write(b"56789" + b"POST /next HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok")
        assert (await read_answer(reader))[2] == b"POST /next  ok"
        writer.close()


async def test_a_body_past_the_bound_is_refused_and_the_connection_closed() -> None:
    async with serving(Echo()) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /big HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"%x\r\n%s\r\n" % (MAX_BODY + 1, b"x" * (MAX_BODY + 1)))
        status, headers, _ = await read_answer(reader)
        assert (status, headers["connection"]) == (413, "close")
        writer.write(b"more of the upload the client had started")  # read and dropped
        assert await reader.read() == b""
        writer.close()


@pytest.mark.parametrize(
    ("sent", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * (http.MAX_HEAD_BYTES + 1), 431),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: \xb2\r\n\r\nab", 400),  # (a digit to str)
        (b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 400),
    ],
)
async def test_what_cannot_be_parsed_gets_an_answer_and_a_closed_connection(
    sent: bytes, status: int
) -> None:
    async with serving(Echo()) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(sent)
        got, headers, body = await read_answer(reader)
        assert (got, headers["connection"]) == (status, "close")
        # in the gateway's error shape, as the app's own refusals
        assert headers["content-type"] == "application/json"
        assert json.loads(body)["code"] == {400: "bad_request", 431: "header_too_large"}[status]
        assert await reader.read() == b""
        writer.close()


async def test_head_answers_carry_no_body_and_http_1_0_is_closed_after() -> None:
    async with serving(Echo()) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\nGET /g HTTP/1.0\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"content-length: 9" in head  # (a GET's length; the body itself is not sent)
        status, headers, body = await read_answer(reader)
        assert (status, headers["connection"], body) == (200, "close", b"GET /g  ")
        assert await reader.read() == b""
        writer.close()


async def test_a_client_that_stalls_is_disconnected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "STALL_TIMEOUT", 0.1)
    async with serving(Echo()) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
        with pytest.raises(ConnectionResetError):  # (dropped: nothing of it is worth sending)
            await asyncio.wait_for(reader.read(), 5)
        writer.close()


async def test_a_request_whose_client_left_still_runs_to_its_end() -> None:
    handler = Echo()
    async with serving(handler) as (host, port):
        _reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /slow/200 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        await asyncio.sleep(0.3)
    assert handler.finished == ["/slow/200"]


async def test_stopping_finishes_requests_in_flight_and_closes_idle_connections() -> None:
    handler = Echo()
    async with serving(handler) as (host, port):
        idle_reader, idle_writer = await asyncio.open_connection(host, port)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /slow/300 HTTP/1.1\r\nHost: h\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
    # (leaving the block stopped the server; it waited for the slow request)
    status, headers, _ = await read_answer(reader)
    assert (status, headers["connection"]) == (200, "close")
    assert await idle_reader.read() == b""
    idle_writer.close()
    writer.close()


async def test_a_client_that_half_closes_still_gets_its_answers() -> None:
    async with serving(Echo()) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /slow/100 HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
        writer.write_eof()
        assert [(await read_answer(reader))[2] for _ in range(2)] == [
            b"GET /slow/100  ",
            b"GET /b  ",
        ]
        assert await reader.read() == b""
        writer.close()


async def test_a_flood_of_pipelined_requests_is_handled_a_few_at_a_time_in_order() -> None:
    handler = Echo()
    async with serving(handler) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"".join(b"GET /slow/1?n=%d HTTP/1.1\r\nHost: h\r\n\r\n" % i
                              for i in range(2000)))  # fmt: skip
        answers = [(await read_answer(reader))[2] for _ in range(2000)]
        writer.close()
    assert answers == [b"GET /slow/1 n=%d " % i for i in range(2000)]
    assert handler.most_running == http.MAX_PIPELINED


async def test_trailers_do_not_become_headers_and_a_head_may_come_in_pieces() -> None:
    async with serving(Echo()) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            b"POST /t HTTP/1.1\r\nHost: h\r\nX-Seen: head\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nX-Seen: trailer\r\n\r\n"
        )
        status, headers, body = await read_answer(reader)
        assert (status, headers["x-seen"], body) == (200, "head", b"POST /t  ab")
        big = b"a" * 40_000  # two reads of 40 KB each: 80 KB of data, a head of 40 KB
        writer.write(b"GET /p HTTP/1.1\r\nHost: h\r\nX-Big: " + big[:20_000])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(big[20_000:] + b"\r\n\r\n")
        assert (await read_answer(reader))[0] == 200
        writer.close()


async def test_a_broken_body_ends_the_request_and_the_connection_at_once() -> None:
    async with serving(Echo()) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        status, headers, body = await asyncio.wait_for(read_answer(reader), 5)
        assert (status, headers["connection"]) == (400, "close")
        assert body.startswith(b"malformed HTTP request") and b"chunk size" in body
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


async def test_100_continue_waits_for_the_answers_before_it() -> None:
    async with serving(Echo()) as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /slow/200 HTTP/1.1\r\nHost: h\r\n\r\n"
                     b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
                     b"Expect: 100-continue\r\n\r\n")  # fmt: skip
        assert (await read_answer(reader))[2] == b"GET /slow/200  "
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"z")
        assert (await read_answer(reader))[2] == b"POST /e  z"
        writer.write(b"GET /empty HTTP/1.1\r\nHost: h\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 204 No Content") and b"content-length" not in head
        writer.close()


async def test_a_client_that_reads_no_answers_is_read_no_more_then_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http, "STALL_TIMEOUT", 0.2)
    async with serving(Echo()) as (host, port):
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /huge HTTP/1.1\r\nHost: h\r\n\r\n" * 200)  # 60 MB of answers
        await asyncio.sleep(3)  # (not reading)
        sock.setblocking(False)
        received = 0
        with contextlib.suppress(ConnectionResetError):
            while chunk := await asyncio.get_running_loop().sock_recv(sock, 1 << 20):
                received += len(chunk)
        sock.close()
    assert 0 < received < 200 * 300_000 / 4  # cut off long before all were written
