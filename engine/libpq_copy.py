"""COPY … FROM STDIN straight on libpq, for the gateway's group commits.

psycopg's COPY (a cursor, a Copy object, its writer, a generator waited on per step) cost the
gateway about four times the CPU of the libpq calls underneath it: ~200 µs for a few kilobytes,
made a few hundred times a second in each process. This sends the same protocol messages with
the same libpq calls, waiting on the connection's socket in the event loop: the statement, then
the data and the end of the copy, then the result (two round trips). Errors are psycopg's own
(`psycopg.errors.error_from_result`), so `engine.db.translated` sees them as from any statement.
"""

import asyncio
from collections.abc import Coroutine
from typing import Any

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

from engine.db import Connection

_CANCEL_WAIT = 2.0  # for PostgreSQL to confirm a cancel


async def copy_in(
    conn: Connection, statement: bytes, data: bytes, *, deadline: float | None = None
) -> None:
    """Run `statement`, a COPY … FROM STDIN, with `data`: in the transaction psycopg has open
    on `conn`, or, with none, committed by itself. A connection left mid-protocol (cancelled, or
    its socket failing) is closed, so that its pool replaces it.

    Not done by `deadline` (the event loop's clock), the COPY is cancelled on the server, and
    OperationalError says whether it was made anyway (just before) or not; if PostgreSQL does
    not answer even that, the connection is closed and the error says it is not known."""
    pgconn = conn.pgconn
    assert pgconn.nonblocking, "an async psycopg connection is in libpq's non-blocking mode"
    try:
        try:
            pgconn.send_query(statement)
            await _flushed(pgconn)
            result = await _until(deadline, _result(pgconn))
            if result is None or result.status != pq.ExecStatus.COPY_IN:
                await _drained(pgconn)
                raise _error(result)
            while pgconn.put_copy_data(data) == 0:  # (0: libpq's buffer is full for now)
                await _ready(pgconn, write=True)
            while pgconn.put_copy_end() == 0:
                await _ready(pgconn, write=True)
            await _flushed(pgconn)
            result = await _until(deadline, _result(pgconn))
        except TimeoutError:
            result = await _cancelled(conn)
    except psycopg.Error:
        if pgconn.transaction_status in (pq.TransactionStatus.ACTIVE, pq.TransactionStatus.UNKNOWN):
            await conn.close()
        raise
    except BaseException:
        await conn.close()
        raise
    if result is None or result.status != pq.ExecStatus.COMMAND_OK:
        await _drained_or_closed(conn)
        raise _error(result)
    # Done: outside a transaction, committed (PostgreSQL says so only after the commit). The
    # connection going away now must not make the caller think otherwise, and write again.
    await _drained_or_closed(conn)


async def _until(
    deadline: float | None, result: Coroutine[Any, Any, pq.abc.PGresult | None]
) -> pq.abc.PGresult | None:
    if deadline is None:
        return await result
    return await asyncio.wait_for(result, max(0.0, deadline - asyncio.get_running_loop().time()))


async def _cancelled(conn: Connection) -> pq.abc.PGresult | None:
    """Past the deadline: cancel the COPY, and learn whether it was made (its result, if the
    cancel came too late) or not (OperationalError)."""
    pgconn = conn.pgconn
    await conn.cancel_safe(timeout=_CANCEL_WAIT)
    try:
        result = await asyncio.wait_for(_result(pgconn), _CANCEL_WAIT)
        if result is not None and result.status == pq.ExecStatus.COPY_IN:  # (not yet begun)
            pgconn.put_copy_end(b"cancelled: too slow")
            await _flushed(pgconn)
            result = await asyncio.wait_for(_result(pgconn), _CANCEL_WAIT)
    except TimeoutError:
        await conn.close()
        raise psycopg.OperationalError(
            "the COPY was too slow, and PostgreSQL did not answer its cancel: whether it was "
            "made is not known"
        ) from None
    if result is not None and result.status == pq.ExecStatus.COMMAND_OK:
        return result  # made, just before the cancel
    await _drained_or_closed(conn)
    raise psycopg.OperationalError("the COPY was too slow: cancelled, not made")


def _error(result: pq.abc.PGresult | None) -> psycopg.Error:
    if result is None:
        return psycopg.OperationalError("the server sent no result for the COPY")
    return error_from_result(result)


async def _drained_or_closed(conn: Connection) -> None:
    try:
        await _drained(conn.pgconn)
    except (psycopg.Error, OSError):
        await conn.close()


async def _flushed(pgconn: pq.abc.PGconn) -> None:
    """Everything sent; while waiting to write, what the server sends meanwhile is read (as
    libpq asks: it could otherwise stop reading us)."""
    while pgconn.flush():
        await _ready(pgconn, write=True)


async def _result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult | None:
    """The next result, waiting for the server while libpq needs more of it."""
    pgconn.consume_input()
    while pgconn.is_busy():
        await _ready(pgconn, write=False)
    return pgconn.get_result()


async def _drained(pgconn: pq.abc.PGconn) -> None:
    """Read the results left (up to the server's ReadyForQuery), so the connection is idle."""
    while await _result(pgconn) is not None:
        pass


async def _ready(pgconn: pq.abc.PGconn, *, write: bool) -> None:
    """Until the socket can be read (or, `write`, either written or read: then what came is
    taken in)."""
    loop = asyncio.get_running_loop()
    fd = pgconn.socket
    ready: asyncio.Future[bool] = loop.create_future()

    def wake(readable: bool) -> None:
        if not ready.done():
            ready.set_result(readable)

    loop.add_reader(fd, wake, True)
    if write:
        loop.add_writer(fd, wake, False)
    try:
        if await ready:
            pgconn.consume_input()
    finally:
        loop.remove_reader(fd)
        if write:
            loop.remove_writer(fd)
