"""Connections to PostgreSQL: the per-process pool and one-off admin connections."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from engine.errors import DatabaseUnavailable

Pool = AsyncConnectionPool  # what callers outside the engine hold: they pass its connections in


def connection_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> AsyncConnectionPool:
    """A pool that is not yet open; callers `await pool.open()` inside their event loop.

    A short `timeout` makes a request fail fast with "database unavailable" instead of hanging
    while PostgreSQL is down. A short `reconnect_timeout` keeps the pool from backing off for
    minutes during an outage: each wait for a connection starts a fresh attempt, so service
    resumes as soon as PostgreSQL is back.
    """
    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=5.0,
        reconnect_timeout=2.0,
        open=False,
        kwargs={"application_name": "sluice", "client_encoding": "utf8"},
        reset=_transactional,
    )


async def _transactional(conn: psycopg.AsyncConnection[Any]) -> None:
    """A connection goes back to the pool as the next borrower expects it: in transactions."""
    if conn.autocommit:
        await conn.set_autocommit(False)


@asynccontextmanager
async def connection(url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """One connection for a short administrative task, committed when the block succeeds."""
    try:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"database unavailable: {exc}") from exc


@asynccontextmanager
async def borrowed(
    pool: AsyncConnectionPool, *, autocommit: bool = False
) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of `pool` for one piece of work, committed when the block succeeds (or,
    `autocommit`, statement by statement: for work that commits batch by batch itself);
    DatabaseUnavailable when PostgreSQL cannot be reached (or goes away meanwhile)."""
    try:
        async with pool.connection() as conn:
            if autocommit:
                await conn.set_autocommit(True)  # (the pool turns it off again)
            yield conn
    except (PoolTimeout, psycopg.OperationalError) as exc:
        reason = describe(exc) if isinstance(exc, psycopg.Error) else str(exc)
        raise DatabaseUnavailable(f"database unavailable: {reason}") from exc


def describe(exc: psycopg.Error) -> str:
    """A database error for a log line, without its CONTEXT (which can quote event data)."""
    primary = exc.diag.message_primary
    if primary is None and isinstance(exc, psycopg.OperationalError):
        primary = str(exc).strip()  # connection trouble: no row data in it
    return f"{type(exc).__name__}: {primary or '(see the database server log)'}"
