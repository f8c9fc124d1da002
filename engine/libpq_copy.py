"""COPY … FROM STDIN straight on libpq, for the gateway's group commits.

psycopg's COPY (a cursor, a Copy object, its writer, a generator waited on per step) cost the
gateway about four times the CPU of the libpq calls underneath it: ~200 µs for a few kilobytes,
made a few hundred times a second in each process. This sends the same protocol messages with
the same libpq calls, waiting on the connection's socket in the event loop: the statement, then
the data and the end of the copy, then the result (two round trips). Errors are psycopg's own
(`psycopg.errors.error_from_result`), so `engine.db.translated` sees them as from any statement.
"""

import asyncio

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

from engine.db import Connection


async def copy_in(conn: Connection, statement: bytes, data: bytes) -> None:
    """Run `statement`, a COPY … FROM STDIN, with `data`: in the transaction psycopg has open
    on `conn`, or, with none, committed by itself. A connection left mid-protocol (cancelled, or
    its socket failing) is closed, so that its pool replaces it."""
    pgconn = conn.pgconn
    try:
        pgconn.send_query(statement)
        await _flushed(pgconn)
        result = await _result(pgconn)
        if result is None or result.status != pq.ExecStatus.COPY_IN:
            await _drained(pgconn)
            raise _error(result)
        while pgconn.put_copy_data(data) == 0:  # (0: libpq's buffer is full for now)
            await _ready(pgconn.socket, write=True)
        while pgconn.put_copy_end() == 0:
            await _ready(pgconn.socket, write=True)
        await _flushed(pgconn)
        result = await _result(pgconn)
        await _drained(pgconn)
    except psycopg.Error:
        if pgconn.transaction_status in (pq.TransactionStatus.ACTIVE, pq.TransactionStatus.UNKNOWN):
            await conn.close()
        raise
    except BaseException:
        await conn.close()
        raise
    if result is None or result.status != pq.ExecStatus.COMMAND_OK:
        raise _error(result)


def _error(result: pq.abc.PGresult | None) -> psycopg.Error:
    if result is None:
        return psycopg.OperationalError("the server sent no result for the COPY")
    return error_from_result(result)


async def _flushed(pgconn: pq.abc.PGconn) -> None:
    while pgconn.flush():
        await _ready(pgconn.socket, write=True)


async def _result(pgconn: pq.abc.PGconn) -> pq.abc.PGresult | None:
    """The next result, waiting for the server while libpq needs more of it."""
    pgconn.consume_input()
    while pgconn.is_busy():
        await _ready(pgconn.socket, write=False)
        pgconn.consume_input()
    return pgconn.get_result()


async def _drained(pgconn: pq.abc.PGconn) -> None:
    """Read the results left (up to the server's ReadyForQuery), so the connection is idle."""
    while await _result(pgconn) is not None:
        pass


async def _ready(fd: int, *, write: bool) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)
